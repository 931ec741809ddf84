// What an operator gets from `npm install -g`: `npm run pack` (scripts/pack.mjs,
// over the build `npm test` just made) makes one tarball per role, whose
// contents are checked; packing again gives the same bytes. Each tarball is
// installed with `npm install -g` into its own empty prefix (a real server
// gets the agent, a director the poller) and, for the other way a site may
// install, both into one project. Third-party dependencies come from the npm
// registry (or npm's cache); the @loadfeed scope points at a stand-in registry
// that answers 404 to everything, so our own code can come only from the
// tarballs. Then the installed bins run, alone and together (an installed
// agent streaming to an installed poller).
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { WAIT_DEFAULT_MS, waitFor } from '../helpers/wait.js';
import { REPO_ROOT, runCommand } from './repo.js';

/** npm install of ~60 packages from a warm cache takes ~15 s here; a cold one up to 2 min. */
const INSTALL_TIMEOUT_MS = 240_000;
/** Packages that belong to development only and must not reach an installed tree. */
const DEV_ONLY = ['typescript', 'ava', '@ava', 'eslint', '@eslint', 'typescript-eslint', 'fast-check', 'protobufjs-cli', 'madge', 'esbuild'];
/** Each role's tarball and the bins it must put on PATH. */
const ROLES = [
  { name: '@loadfeed/agent', tarball: 'loadfeed-agent-', bins: ['loadfeed-agent'] },
  { name: '@loadfeed/poller', tarball: 'loadfeed-poller-', bins: ['loadfeed', 'loadfeed-poller'] },
] as const;
type Role = (typeof ROLES)[number]['name'];

interface Packed {
  readonly name: string;
  readonly version: string;
  readonly file: string;
  readonly files: readonly string[];
  readonly integrity: string;
}

/** Environment for npm without the npm_* variables of the `npm test` that runs us. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** scripts/pack.mjs into `destination`: one parsed line per tarball. */
async function pack(destination: string): Promise<Packed[]> {
  const packed = await runCommand(process.execPath, [path.join(REPO_ROOT, 'scripts', 'pack.mjs'), destination], {
    cwd: REPO_ROOT,
    env: cleanEnv(),
    timeoutMs: 120_000,
  });
  if (packed.code !== 0) throw new Error(`scripts/pack.mjs failed:\n${packed.stderr}`);
  return packed.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Packed);
}

// Shared by the tests below: one scratch directory, the tarballs (packed
// twice), and a registry for the @loadfeed scope that has nothing (every
// request logged).
let dir = '';
let tarballs: Packed[] = [];
let again: Packed[] = [];
let registry: Server | null = null;
const asked: string[] = [];

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lf-pack-'));
  tarballs = await pack(path.join(dir, 'tarballs'));
  again = await pack(path.join(dir, 'again'));
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

const tarballOf = (name: Role): Packed => {
  const p = tarballs.find((x) => x.name === name);
  if (p === undefined) throw new Error(`no tarball for ${name}`);
  return p;
};

/** npm install of `files` into `prefix`: as global packages (`-g`), or as one project. */
async function install(t: ExecutionContext, prefix: string, global: boolean, files: readonly string[]): Promise<void> {
  const scopeRegistry = `http://127.0.0.1:${(registry?.address() as AddressInfo).port}/`;
  const started = performance.now();
  const r = await runCommand(
    'npm',
    [
      'install', ...(global ? ['--global'] : []), '--prefix', prefix,
      '--prefer-offline', '--no-audit', '--no-fund', '--no-update-notifier',
      `--@loadfeed:registry=${scopeRegistry}`,
      ...files,
    ],
    { cwd: dir, env: cleanEnv(), timeoutMs: INSTALL_TIMEOUT_MS },
  );
  if (r.code !== 0) throw new Error(`npm install ${global ? '-g ' : ''}failed:\n${r.stderr}`);
  t.log(`npm install ${global ? '-g ' : ''}${files.map((f) => path.basename(f)).join(' ')}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  t.deepEqual(asked, [], 'nothing of the @loadfeed scope was asked of a registry');
}

const globalPrefixes = new Map<Role, Promise<string>>();
/** `npm install -g --prefix <empty dir> <role's tarball>`, made once per role for the tests that need it. */
function globalInstall(t: ExecutionContext, role: Role): Promise<string> {
  let prefix = globalPrefixes.get(role);
  if (prefix === undefined) {
    prefix = (async () => {
      const p = path.join(dir, `global-${role.split('/')[1] ?? role}`);
      await install(t, p, true, [tarballOf(role).file]);
      return p;
    })();
    globalPrefixes.set(role, prefix);
  }
  return prefix;
}

test.serial('one tarball per role: bundled bins, the dashboard assets, and only registry packages as dependencies', async (t) => {
  t.deepEqual(tarballs.map((p) => p.name).sort(), ROLES.map((r) => r.name));
  for (const role of ROLES) {
    const p = tarballOf(role.name);
    t.true(path.basename(p.file).startsWith(role.tarball), p.file);
    const bad = p.files.filter((f) => /\.map$|\.tsbuildinfo$|(^|\/)test\/|\.test\.|\.ts$|^src\/|^build\//.test(f) || f.startsWith('node_modules/'));
    t.deepEqual(bad, [], `${p.name} ships files it should not`);
    for (const bin of role.bins) t.true(p.files.includes(`bin/${bin}.js`), `${p.name}: bin/${bin}.js`);
    const manifest = JSON.parse(await tarEntry(p.file, 'package/package.json')) as { dependencies: Record<string, string>; bin: Record<string, string>; scripts?: unknown };
    t.deepEqual(Object.keys(manifest.bin).sort(), [...role.bins].sort());
    t.deepEqual(Object.keys(manifest.dependencies).filter((d) => d.startsWith('@loadfeed/')), [], `${p.name} depends on no other @loadfeed package`);
    t.truthy(manifest.dependencies['@grpc/grpc-js'], `${p.name} depends on @grpc/grpc-js itself`);
    t.is(manifest.scripts, undefined, 'no install scripts of ours');
  }
  t.true(tarballOf('@loadfeed/poller').files.includes('assets/dashboard.html'), 'dashboard assets');
});

test.serial('npm run pack is reproducible: packing the same build again gives the same bytes', async (t) => {
  t.deepEqual(
    again.map((p) => [path.basename(p.file), p.integrity]),
    tarballs.map((p) => [path.basename(p.file), p.integrity]),
  );
  for (const p of tarballs) {
    const second = again.find((x) => x.name === p.name)?.file ?? '';
    t.true((await readFile(p.file)).equals(await readFile(second)), `${path.basename(p.file)} differs between two packs`);
  }
});

for (const role of ROLES) {
  test.serial(`${role.name} installs alone with npm install -g into an empty prefix: its bins on PATH, one @grpc/grpc-js, runtime dependencies only`, async (t) => {
    t.timeout(INSTALL_TIMEOUT_MS + 60_000);
    const prefix = await globalInstall(t, role.name);
    const lib = path.join(prefix, 'lib', 'node_modules');
    t.deepEqual(await readdir(path.join(lib, '@loadfeed')), [role.name.split('/')[1]]);
    const everything = (await walkPackages(lib)).map((p) => `/${path.relative(lib, p)}`);
    t.deepEqual(everything.filter((p) => p.includes('/node_modules/@loadfeed/')), [], 'no other @loadfeed package');
    t.deepEqual(everything.filter((p) => p.endsWith('/@grpc/grpc-js')).length, 1, `one @grpc/grpc-js: ${everything.filter((p) => p.endsWith('/@grpc/grpc-js')).join(', ')}`);
    const dev = everything.filter((p) => DEV_ONLY.some((d) => p === `/${d}` || p.endsWith(`/node_modules/${d}`)));
    t.deepEqual(dev, [], 'development-only packages installed');
    t.deepEqual((await readdir(path.join(prefix, 'bin'))).sort(), [...role.bins].sort());
  });
}

test.serial('the installed bins run: help, one sample (SOCK_DIAG through the installed netlink addon), a policy check', async (t) => {
  t.timeout(2 * INSTALL_TIMEOUT_MS + 60_000);
  const agentBin = path.join(await globalInstall(t, '@loadfeed/agent'), 'bin');
  const pollerBin = path.join(await globalInstall(t, '@loadfeed/poller'), 'bin');
  const run = (bin: string, args: string[]) => runCommand(bin, args, { cwd: dir, env: cleanEnv(), timeoutMs: 30_000 });

  const agentHelp = await run(path.join(agentBin, 'loadfeed-agent'), ['--help']);
  t.is(agentHelp.code, 0, agentHelp.stderr);
  t.regex(agentHelp.stdout, /^Usage: loadfeed-agent/);

  const oneSample = await run(path.join(agentBin, 'loadfeed-agent'), ['--once', '--json', '--interval', '200ms', '--node-id', 'packed-1', '--service', 'ssh:22']);
  t.is(oneSample.code, 0, oneSample.stderr);
  const sample = JSON.parse(oneSample.stdout) as Record<string, unknown>;
  t.is(sample['nodeId'], 'packed-1');
  t.is(sample['scope'], 'host');
  const capacity = sample['capacity'] as { cores: number; memoryBytes: number };
  t.true(capacity.cores > 0 && capacity.memoryBytes > 0, JSON.stringify(capacity));
  const cpu = sample['cpuUtilization'];
  t.true(typeof cpu === 'number' && cpu >= 0 && cpu <= 1, `cpuUtilization ${String(cpu)}`);
  const services = sample['services'] as { name: string; established: number | null }[];
  t.is(services[0]?.name, 'ssh');
  t.is(typeof services[0]?.established, 'number', 'per-service count via SOCK_DIAG (netlink addon installed)');

  const cliHelp = await run(path.join(pollerBin, 'loadfeed'), ['--help']);
  t.is(cliHelp.code, 0, cliHelp.stderr);
  t.regex(cliHelp.stdout, /^Usage: loadfeed COMMAND/);
  const pollerHelp = await run(path.join(pollerBin, 'loadfeed-poller'), ['--help']);
  t.is(pollerHelp.code, 0, pollerHelp.stderr);
  t.regex(pollerHelp.stdout, /^Usage: loadfeed-poller --policy FILE/);
  const check = await run(path.join(pollerBin, 'loadfeed'), ['policy', 'check', path.join(REPO_ROOT, 'deploy', 'examples', 'policies', 'web-fastpath.yaml')]);
  t.is(check.code, 0, `${check.stdout}${check.stderr}`);
});

test.serial('an agent installed with npm install -g streams to a poller installed with npm install -g, over mutual TLS with certificates from the installed loadfeed certs', async (t) => {
  t.timeout(2 * INSTALL_TIMEOUT_MS + 60_000);
  const agentBin = path.join(await globalInstall(t, '@loadfeed/agent'), 'bin');
  const pollerBin = path.join(await globalInstall(t, '@loadfeed/poller'), 'bin');
  // PATH holds node and nothing else, so no openssl can be found.
  const onlyNode = await mkdtemp(path.join(dir, 'only-node-'));
  await symlink(process.execPath, path.join(onlyNode, 'node'));
  const pki = path.join(dir, 'pki');
  const certs = await runCommand(path.join(pollerBin, 'loadfeed'), ['certs', '--out', pki, '--node', 'packed-1'], {
    cwd: dir,
    env: cleanEnv({ PATH: onlyNode }),
    timeoutMs: 30_000,
  });
  t.is(certs.code, 0, certs.stderr);
  t.deepEqual((await readdir(pki)).sort(), ['ca.key', 'ca.pem', 'packed-1.key', 'packed-1.pem', 'poller.key', 'poller.pem']);
  await streamsTogether(t, pollerBin, agentBin, pki);
});

test.serial('both tarballs installed as one project (npm install --prefix DIR): one @grpc/grpc-js, and the agent streams to the poller', async (t) => {
  t.timeout(INSTALL_TIMEOUT_MS + 60_000);
  const prefix = path.join(dir, 'project');
  await install(t, prefix, false, tarballs.map((p) => p.file));
  const grpcCopies = (await walkPackages(path.join(prefix, 'node_modules'))).filter((p) => p.endsWith('/@grpc/grpc-js'));
  t.is(grpcCopies.length, 1, `one @grpc/grpc-js: ${grpcCopies.join(', ')}`);
  const bin = path.join(prefix, 'node_modules', '.bin');
  await streamsTogether(t, bin, bin);
});

/** One file of a tarball, as text (tar is in every Debian base system). */
async function tarEntry(file: string, entry: string): Promise<string> {
  const r = await runCommand('tar', ['-xzOf', file, entry], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`tar -xzOf ${file} ${entry}: ${r.stderr}`);
  return r.stdout;
}

/**
 * The installed poller and agent together on loopback: a sample becomes a
 * weight; the status server serves uPlot from the installed tree. With `pki`
 * (a `loadfeed certs` directory naming node packed-1), over mutual TLS.
 */
async function streamsTogether(t: ExecutionContext, pollerBin: string, agentBin: string, pki?: string): Promise<void> {
  const pem = (name: string): string => path.join(pki ?? '', name);
  const pollerTls = pki === undefined ? [] : ['--tls-cert', pem('poller.pem'), '--tls-key', pem('poller.key'), '--tls-client-ca', pem('ca.pem')];
  const agentTls = pki === undefined ? [] : ['--tls-ca', pem('ca.pem'), '--tls-cert', pem('packed-1.pem'), '--tls-key', pem('packed-1.key')];
  const work = await mkdtemp(path.join(dir, 'run-'));
  const policy = path.join(work, 'policy.yaml');
  await writeFile(
    policy,
    'apiVersion: loadfeed/v1\nagents: { interval: 200ms }\nservices:\n  - name: web\n    engine: memory\n' +
      '    address: tcp 127.0.0.1:18080\n    servers:\n      - { node: packed-1, address: "127.0.0.1:18081" }\n',
  );
  let log = '';
  const poller = spawn(path.join(pollerBin, 'loadfeed-poller'), ['--policy', policy, '--listen', '127.0.0.1:0', '--status', '127.0.0.1:0', ...pollerTls], {
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
  await waitFor('the installed poller to start', () => /"msg":"poller started"/.test(log)).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${log}`);
  });
  const startLine = JSON.parse(log.split('\n').find((l) => l.includes('"poller started"')) ?? '{}') as { port?: number; status?: string };
  t.truthy(startLine.port, 'gRPC port in the start line');
  t.truthy(startLine.status, 'status URL in the start line');

  const agent = spawn(path.join(agentBin, 'loadfeed-agent'), ['--poller', `${pki === undefined ? '127.0.0.1' : 'localhost'}:${startLine.port ?? 0}`, '--node-id', 'packed-1', '--interval', '200ms', ...agentTls], {
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
  const deadline = performance.now() + WAIT_DEFAULT_MS;
  let weight = await weightOf();
  while (weight === 0) {
    if (performance.now() > deadline || agent.exitCode !== null) throw new Error(`no weight for the packed agent\n${log}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    weight = await weightOf();
  }
  t.true(weight > 0, 'the installed agent streamed to the installed poller');
  t.is((await fetch(new URL('assets/uPlot.iife.min.js', statusUrl))).status, 200, 'uPlot served from the installed tree');
  t.is((await fetch(new URL('healthz', statusUrl))).status, 200);
  const status = (await (await fetch(new URL('status', statusUrl))).json()) as { poller: { version: string } };
  t.is(status.poller.version, tarballOf('@loadfeed/poller').version, 'the bundle found its own package.json');
  // A reload parses in a worker thread started from source text: it must find yaml from the installed bundle.
  await writeFile(policy, `${await readFile(policy, 'utf8')}# reloaded\n`);
  await waitFor('the installed poller to reload', () => /"msg":"policy reloaded"/.test(log) || /"msg":"policy refused/.test(log)).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${log}`);
  });
  t.regex(log, /"msg":"policy reloaded"/, log);
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
