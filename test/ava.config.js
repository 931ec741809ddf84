// Tests are compiled by `tsc -b` (npm test runs the build first); ava runs
// the JavaScript, and @ava/typescript maps `ava agent/x.test.ts` to it.
export default {
  files: ['**/*.test.ts', '!build/**', '!node_modules/**'],
  typescript: {
    rewritePaths: {
      'agent/': 'build/agent/',
      'poller/': 'build/poller/',
      'proto/': 'build/proto/',
      'kernel-bridge/': 'build/kernel-bridge/',
      'e2e/': 'build/e2e/',
      'fuzz/': 'build/fuzz/',
      'deploy/': 'build/deploy/',
      'ha/': 'build/ha/',
      'status/': 'build/status/',
      'top/': 'build/top/',
      'dashboard/': 'build/dashboard/',
      'bench/': 'build/bench/',
    },
    compile: false,
  },
  timeout: '60s',
  workerThreads: false,
};
