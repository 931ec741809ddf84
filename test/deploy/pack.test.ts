// What a real server gets from `npm install -g`: the published workspaces are
// packed (scripts/pack.mjs, over the build `npm test` just made), the tarballs'
// contents checked, and then installed together into an empty global prefix.
// Third-party dependencies come from the npm registry (or npm's cache); the
// @loadfeed scope points at a stand-in registry that answers 404 to
// everything, so our own packages can come only from the tarballs. Then the
// installed bins run.
import test from 'ava';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, runCommand } from './repo.js';

/** npm install of ~130 packages from a warm cache takes ~30 s here; a cold one up to 2 min. */
const INSTALL_TIMEOUT_MS = 240_000;
/** Packages that belong to development only and must not reach an installed tree. */
const DEV_ONLY = ['typescript', 'ava', '@ava', 'eslint', '@eslint', 'typescript-eslint', 'fast-check', 'protobufjs-cli', 'madge'];

interface Packed {
  readonly name: string;
  readonly version: string;
  readonly file: string;
  readonly files: readonly string[];
}

/** Environment for npm without the npm_* variables of the `npm test` that runs us. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

test.serial('packed agent and poller install into an empty global prefix with working bins and runtime dependencies only', async (t) => {
  t.timeout(INSTALL_TIMEOUT_MS + 60_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lf-pack-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  // 1. Pack.
  const packed = await runCommand(process.execPath, [path.join(REPO_ROOT, 'scripts', 'pack.mjs'), path.join(dir, 'tarballs')], {
    cwd: REPO_ROOT,
    env: cleanEnv(),
    timeoutMs: 60_000,
  });
  t.is(packed.code, 0, packed.stderr);
  const tarballs = packed.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Packed);
  t.deepEqual(tarballs.map((p) => p.name).sort(), ['@loadfeed/agent', '@loadfeed/kernel-bridge', '@loadfeed/poller', '@loadfeed/proto']);

  // 2. What is inside: build output and generated code, no tests, sources,
  // source maps or build state.
  const byName = new Map(tarballs.map((p) => [p.name, p]));
  for (const p of tarballs) {
    const bad = p.files.filter(
      (f) => /\.map$|\.tsbuildinfo$|(^|\/)test\/|\.test\.|(^|\/)src\/.*(?<!\.d)\.ts$|^src\//.test(f) || f.startsWith('node_modules/'),
    );
    t.deepEqual(bad, [], `${p.name} ships files it should not`);
    t.true(p.files.includes('package.json'), `${p.name}: package.json`);
    t.true(p.files.includes('build/src/index.js'), `${p.name}: build/src/index.js`);
    t.true(p.files.includes('build/src/index.d.ts'), `${p.name}: build/src/index.d.ts`);
  }
  const files = (name: string): readonly string[] => byName.get(name)?.files ?? [];
  t.true(files('@loadfeed/proto').includes('build/gen/loadfeed.js'), 'generated protobuf code');
  t.true(files('@loadfeed/proto').includes('build/gen/loadfeed.d.ts'), 'generated protobuf types');
  t.true(files('@loadfeed/agent').includes('build/src/bin/loadfeed-agent.js'));
  t.true(files('@loadfeed/poller').includes('build/src/bin/loadfeed-poller.js'));
  t.true(files('@loadfeed/poller').includes('build/src/bin/loadfeed.js'));

  // 3. Install, with the @loadfeed scope answered by a registry that has nothing.
  const asked: string[] = [];
  const registry = createServer((req, res) => {
    asked.push(`${req.method ?? '?'} ${req.url ?? '?'}`);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
  });
  registry.listen(0, '127.0.0.1');
  await once(registry, 'listening');
  t.teardown(() => new Promise<void>((resolve) => registry.close(() => resolve())));
  const scopeRegistry = `http://127.0.0.1:${(registry.address() as AddressInfo).port}/`;

  const prefix = path.join(dir, 'prefix');
  const started = performance.now();
  const install = await runCommand(
    'npm',
    [
      'install', '--global', '--prefix', prefix,
      '--prefer-offline', '--no-audit', '--no-fund', '--no-update-notifier',
      `--@loadfeed:registry=${scopeRegistry}`,
      ...tarballs.map((p) => p.file),
    ],
    { cwd: dir, env: cleanEnv(), timeoutMs: INSTALL_TIMEOUT_MS },
  );
  t.is(install.code, 0, `npm install -g failed:\n${install.stderr}`);
  t.log(`npm install -g of 4 tarballs: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  t.deepEqual(asked.filter((a) => a.endsWith('.tgz')), [], 'no @loadfeed tarball was asked of a registry');

  // Each @loadfeed package once, at the top (the tarballs), none nested.
  const lib = path.join(prefix, 'lib', 'node_modules');
  t.deepEqual((await readdir(path.join(lib, '@loadfeed'))).sort(), ['agent', 'kernel-bridge', 'poller', 'proto']);
  const everything = (await walkPackages(lib)).map((p) => `/${path.relative(lib, p)}`);
  t.deepEqual(everything.filter((p) => p.includes('/node_modules/@loadfeed/')), [], 'nested copies of @loadfeed packages');
  const dev = everything.filter((p) => DEV_ONLY.some((d) => p === `/${d}` || p.endsWith(`/node_modules/${d}`)));
  t.deepEqual(dev, [], 'development-only packages installed');
  const version = JSON.parse(await readFile(path.join(lib, '@loadfeed', 'agent', 'package.json'), 'utf8')) as { version: string };
  t.is(byName.get('@loadfeed/agent')?.version, version.version);

  // 4. The bins.
  const bin = (name: string): string => path.join(prefix, 'bin', name);
  const run = (name: string, args: string[]) => runCommand(bin(name), args, { cwd: dir, env: cleanEnv(), timeoutMs: 30_000 });

  const agentHelp = await run('loadfeed-agent', ['--help']);
  t.is(agentHelp.code, 0, agentHelp.stderr);
  t.regex(agentHelp.stdout, /^Usage: loadfeed-agent/);

  const oneSample = await run('loadfeed-agent', ['--once', '--json', '--interval', '200ms', '--node-id', 'packed-1', '--service', 'ssh:22']);
  t.is(oneSample.code, 0, oneSample.stderr);
  const sample = JSON.parse(oneSample.stdout) as Record<string, unknown>;
  t.is(sample['nodeId'], 'packed-1');
  t.is(sample['scope'], 'host');
  const capacity = sample['capacity'] as { cores: number; memoryBytes: number };
  t.true(capacity.cores > 0 && capacity.memoryBytes > 0, JSON.stringify(capacity));
  t.true(typeof sample['timestampMs'] === 'number' && Math.abs((sample['timestampMs'] as number) - Date.now()) < 60_000);
  const cpu = sample['cpuUtilization'];
  t.true(typeof cpu === 'number' && cpu >= 0 && cpu <= 1, `cpuUtilization ${String(cpu)}`);
  const mem = sample['memUtilization'];
  t.true(typeof mem === 'number' && mem > 0 && mem <= 1, `memUtilization ${String(mem)}`);
  // SOCK_DIAG through the netlink addon that came with the install.
  const services = sample['services'] as { name: string; established: number | null }[];
  t.is(services.length, 1);
  t.is(services[0]?.name, 'ssh');
  t.is(typeof services[0]?.established, 'number', 'per-service count via SOCK_DIAG (netlink addon installed)');

  const cliHelp = await run('loadfeed', ['--help']);
  t.is(cliHelp.code, 0, cliHelp.stderr);
  t.regex(cliHelp.stdout, /^Usage: loadfeed COMMAND/);
  const pollerHelp = await run('loadfeed-poller', ['--help']);
  t.is(pollerHelp.code, 0, pollerHelp.stderr);
  t.regex(pollerHelp.stdout, /^Usage: loadfeed-poller --policy FILE/);
  // The policy compiler's runtime dependencies (zod, yaml) came along.
  const check = await run('loadfeed', ['policy', 'check', path.join(REPO_ROOT, 'deploy', 'examples', 'policies', 'web-fastpath.yaml')]);
  t.is(check.code, 0, `${check.stdout}${check.stderr}`);
});

/** Every installed package directory under `dir` (`…/node_modules/name` or `…/node_modules/@scope/name`). */
async function walkPackages(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (nodeModules: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(nodeModules, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      const full = path.join(nodeModules, e.name);
      if (e.name.startsWith('@')) {
        for (const s of await readdir(full, { withFileTypes: true })) {
          if (!s.isDirectory()) continue;
          out.push(path.join(full, s.name));
          await visit(path.join(full, s.name, 'node_modules'));
        }
      } else {
        out.push(full);
        await visit(path.join(full, 'node_modules'));
      }
    }
  };
  await visit(dir);
  return out;
}
