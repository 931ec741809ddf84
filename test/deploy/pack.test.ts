// What a real server gets from `npm install -g`: the published workspaces are
// packed (scripts/pack.mjs, over the build `npm test` just made), the tarballs'
// contents checked, and then installed together into an empty global prefix.
// Third-party dependencies come from the npm registry (or npm's cache); the
// @loadfeed scope points at a stand-in registry that answers 404 to
// everything, so our own packages can come only from the tarballs. Then the
// installed bins run, alone and together (an installed agent streaming to an
// installed poller).
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../helpers/wait.js';
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

// Shared by the tests below: one scratch directory, the tarballs, and a
// registry for the @loadfeed scope that has nothing (every request logged).
let dir = '';
let tarballs: Packed[] = [];
let registry: Server | null = null;
const asked: string[] = [];

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lf-pack-'));
  const packed = await runCommand(process.execPath, [path.join(REPO_ROOT, 'scripts', 'pack.mjs'), path.join(dir, 'tarballs')], {
    cwd: REPO_ROOT,
    env: cleanEnv(),
    timeoutMs: 60_000,
  });
  if (packed.code !== 0) throw new Error(`scripts/pack.mjs failed:\n${packed.stderr}`);
  tarballs = packed.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Packed);
  registry = createServer((req, res) => {
    asked.push(`${req.method ?? '?'} ${req.url ?? '?'}`);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
  });
  registry.listen(0, '127.0.0.1');
  await once(registry, 'listening');
});

test.after.always(async () => {
  await new Promise<void>((resolve) => (registry ? registry.close(() => resolve()) : resolve()));
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** npm install of every tarball into `prefix`: as global packages (`-g`), or as one project. */
async function install(t: ExecutionContext, prefix: string, global: boolean): Promise<void> {
  const scopeRegistry = `http://127.0.0.1:${(registry?.address() as AddressInfo).port}/`;
  const started = performance.now();
  const r = await runCommand(
    'npm',
    [
      'install', ...(global ? ['--global'] : []), '--prefix', prefix,
      '--prefer-offline', '--no-audit', '--no-fund', '--no-update-notifier',
      `--@loadfeed:registry=${scopeRegistry}`,
      ...tarballs.map((p) => p.file),
    ],
    { cwd: dir, env: cleanEnv(), timeoutMs: INSTALL_TIMEOUT_MS },
  );
  if (r.code !== 0) throw new Error(`npm install ${global ? '-g ' : ''}failed:\n${r.stderr}`);
  t.log(`npm install ${global ? '-g ' : ''}of ${tarballs.length} tarballs: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  t.deepEqual(asked.filter((a) => a.endsWith('.tgz')), [], 'no @loadfeed tarball was asked of a registry');
}

let globalPrefix: Promise<string> | null = null;
/** The -g install, made once for the tests that need it. */
function globalInstall(t: ExecutionContext): Promise<string> {
  globalPrefix ??= (async () => {
    const prefix = path.join(dir, 'global');
    await install(t, prefix, true);
    return prefix;
  })();
  return globalPrefix;
}

test.serial('tarballs hold build output and generated code: no tests, sources, source maps or build state', (t) => {
  t.deepEqual(tarballs.map((p) => p.name).sort(), ['@loadfeed/agent', '@loadfeed/kernel-bridge', '@loadfeed/poller', '@loadfeed/proto']);
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
});

test.serial('packed agent and poller install into an empty global prefix with working bins and runtime dependencies only', async (t) => {
  t.timeout(INSTALL_TIMEOUT_MS + 60_000);
  const prefix = await globalInstall(t);

  // Each @loadfeed package once, at the top (the tarballs), none nested.
  const lib = path.join(prefix, 'lib', 'node_modules');
  t.deepEqual((await readdir(path.join(lib, '@loadfeed'))).sort(), ['agent', 'kernel-bridge', 'poller', 'proto']);
  const everything = (await walkPackages(lib)).map((p) => `/${path.relative(lib, p)}`);
  t.deepEqual(everything.filter((p) => p.includes('/node_modules/@loadfeed/')), [], 'nested copies of @loadfeed packages');
  const dev = everything.filter((p) => DEV_ONLY.some((d) => p === `/${d}` || p.endsWith(`/node_modules/${d}`)));
  t.deepEqual(dev, [], 'development-only packages installed');
  const version = JSON.parse(await readFile(path.join(lib, '@loadfeed', 'agent', 'package.json'), 'utf8')) as { version: string };
  t.is(tarballs.find((p) => p.name === '@loadfeed/agent')?.version, version.version);

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

// Regression: installed as separate global packages, @loadfeed/agent and
// @loadfeed/proto each got their own copy of @grpc/grpc-js, and proto's
// client refused the agent's credentials ("Channel credentials must be a
// ChannelCredentials object"). The agent now builds them with the copy proto
// exports.
test.serial('a globally installed agent streams to a globally installed poller', async (t) => {
  t.timeout(INSTALL_TIMEOUT_MS + 60_000);
  const prefix = await globalInstall(t);
  await streamsTogether(t, path.join(prefix, 'bin'));
});

test.serial('installed as one project (npm install --prefix DIR), the agent streams to the poller and the dashboard is served', async (t) => {
  t.timeout(INSTALL_TIMEOUT_MS + 60_000);
  const prefix = path.join(dir, 'project');
  await install(t, prefix, false);
  const grpcCopies = (await walkPackages(path.join(prefix, 'node_modules'))).filter((p) => p.endsWith('/@grpc/grpc-js'));
  t.is(grpcCopies.length, 1, `one @grpc/grpc-js: ${grpcCopies.join(', ')}`);
  await streamsTogether(t, path.join(prefix, 'node_modules', '.bin'));
});

/** The installed poller and agent together on loopback: a sample becomes a weight; the status server serves uPlot from the installed tree. */
async function streamsTogether(t: ExecutionContext, binDir: string): Promise<void> {
  const work = await mkdtemp(path.join(dir, 'run-'));
  const policy = path.join(work, 'policy.yaml');
  await writeFile(
    policy,
    'apiVersion: loadfeed/v1\nagents: { interval: 200ms }\nservices:\n  - name: web\n    engine: memory\n' +
      '    address: tcp 127.0.0.1:18080\n    servers:\n      - { node: packed-1, address: "127.0.0.1:18081" }\n',
  );
  let log = '';
  const poller = spawn(path.join(binDir, 'loadfeed-poller'), ['--policy', policy, '--listen', '127.0.0.1:0', '--status', '127.0.0.1:0'], {
    cwd: work,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    poller.kill('SIGKILL');
  });
  for (const s of [poller.stdout, poller.stderr]) {
    s.on('data', (c: Buffer) => {
      log += c.toString('utf8');
    });
  }
  await waitFor('the installed poller to start', () => /"msg":"poller started"/.test(log), 20_000).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${log}`);
  });
  const startLine = JSON.parse(log.split('\n').find((l) => l.includes('"poller started"')) ?? '{}') as { port?: number; status?: string };
  t.truthy(startLine.port, 'gRPC port in the start line');
  t.truthy(startLine.status, 'status URL in the start line');

  const agent = spawn(path.join(binDir, 'loadfeed-agent'), ['--poller', `127.0.0.1:${startLine.port ?? 0}`, '--node-id', 'packed-1', '--interval', '200ms'], {
    cwd: work,
    env: cleanEnv({ LOADFEED_STATUS_SOCKET: 'off' }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => {
    agent.kill('SIGKILL');
  });
  agent.stderr.on('data', (c: Buffer) => {
    log += `agent: ${c.toString('utf8')}`;
  });

  const statusUrl = startLine.status ?? '';
  const weightOf = async (): Promise<number> => {
    const doc = (await (await fetch(new URL('status', statusUrl))).json()) as { services: { servers: { node: string | null; weight: number }[] }[] };
    return doc.services[0]?.servers.find((x) => x.node === 'packed-1')?.weight ?? 0;
  };
  const deadline = performance.now() + 15_000;
  let weight = await weightOf();
  while (weight === 0) {
    if (performance.now() > deadline || agent.exitCode !== null) throw new Error(`no weight for the packed agent\n${log}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    weight = await weightOf();
  }
  t.true(weight > 0, 'the installed agent streamed to the installed poller');
  t.is((await fetch(new URL('assets/uPlot.iife.min.js', statusUrl))).status, 200, 'uPlot served from the installed tree');
  t.is((await fetch(new URL('healthz', statusUrl))).status, 200);
}

/** Every installed package directory under `dir` (`…/node_modules/name` or `…/node_modules/@scope/name`). */
async function walkPackages(root: string): Promise<string[]> {
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
  await visit(root);
  return out;
}
