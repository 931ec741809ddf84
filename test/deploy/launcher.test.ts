// The daemons' launcher lines carry their V8 options (see the bins'
// comments): executed directly, each bin must start with them and without
// warnings, and its container ENTRYPOINT must pass node the same options.
import test from 'ava';
import { spawn } from 'node:child_process';
import { lstatSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { binPath, launcherOptions } from '../helpers/launcher.js';
import { REPO_ROOT, runCommand } from './repo.js';


const BINS = [
  { name: 'loadfeed-agent', pkg: '@loadfeed/agent', dockerfile: 'agent.Dockerfile', option: '--lite-mode' },
  { name: 'loadfeed-poller', pkg: '@loadfeed/poller', dockerfile: 'poller.Dockerfile', option: '--max-semi-space-size=32' },
];

for (const bin of BINS) {
  const file = binPath(bin.pkg, bin.name);

  test(`${bin.name}: executed directly (systemd, npm global, npx), the bin starts with its V8 options and prints nothing to stderr`, async (t) => {
    t.true(launcherOptions(file).includes(bin.option));
    const child = spawn(file, ['--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    t.is(code, 0);
    t.regex(stdout, new RegExp(`^Usage: ${bin.name}`));
    // V8 warns on stderr when options conflict (--lite-mode without --no-expose-wasm does).
    t.is(stderr, '');
  });

  test(`${bin.name}: the container ENTRYPOINT passes node the same options as the launcher line`, (t) => {
    const dockerfile = readFileSync(path.join(REPO_ROOT, 'deploy/container', bin.dockerfile), 'utf8');
    const line = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] ?? 'null';
    const entrypoint = JSON.parse(line) as string[];
    t.deepEqual(entrypoint.slice(0, -1), ['node', ...launcherOptions(file)]);
    t.is(entrypoint.at(-1), `/app/${bin.pkg.split('/')[1]}/build/src/bin/${bin.name}.js`);
  });
}

// npm links a workspace's bins at install time and skips one whose file does
// not exist yet; bins pointing into build/ left `npx loadfeed` with nothing to
// run after `npm ci`. The bins are committed launchers, so they are linked.
for (const [pkg, name] of [['@loadfeed/poller', 'loadfeed'], ['@loadfeed/poller', 'loadfeed-poller'], ['@loadfeed/agent', 'loadfeed-agent']] as const) {
  test(`npx ${name} runs at the repository root: npm linked the workspace's committed launcher`, async (t) => {
    const link = path.join(REPO_ROOT, 'node_modules', '.bin', name);
    t.true(lstatSync(link).isSymbolicLink(), `${link} is npm's link`);
    t.is(realpathSync(link), realpathSync(binPath(pkg, name)));
    t.false(path.relative(REPO_ROOT, realpathSync(link)).includes('build'), 'the linked file is in the repository, not build output');
    const r = await runCommand('npx', ['--no-install', name, '--help'], { cwd: REPO_ROOT, timeoutMs: 60_000 });
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, new RegExp(`^Usage: ${name}\\b`));
  });
}
