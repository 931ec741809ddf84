// The systemd units in deploy/systemd/, checked by systemd itself:
// `systemd-analyze verify` against a scratch root (--root) that holds the
// host's own unit files (so sysinit.target and friends resolve), our units and
// drop-ins where an administrator puts them, and an executable at every
// ExecStart path. verify fails on a missing binary but only warns about an
// unknown key, so any output at all is a failure here; two negative controls
// prove that both kinds of mistake are caught. `systemd-analyze security
// --offline` scores the sandboxing, and the units' text is checked for the
// promises docs/install.md makes (users, capabilities, address families).
import test from 'ava';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig } from '@loadfeed/agent';
import { binary, findExecutable, realEngineGate } from '../helpers/real-engine.js';
import { DEPLOY_DIR, REPO_ROOT, runCommand } from './repo.js';

const UNITS = path.join(DEPLOY_DIR, 'systemd');
/** Exposure levels of `systemd-analyze security` (0 = locked down, 10 = unprotected); ×10 for --threshold. */
const MAX_EXPOSURE = { agent: 2.0, poller: 2.5 };
const HOST_UNIT_DIR = '/usr/lib/systemd/system';

const gate = realEngineGate('systemd unit', [binary('systemd-analyze', 'systemd')]);

type UnitFile = Map<string, string[]>;

/** `Section.Key` → every value assigned, in order (comments and blank lines dropped). */
function parseUnit(text: string): UnitFile {
  const out: UnitFile = new Map();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1] !== undefined) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`not a key=value line: ${line}`);
    const key = `${section}.${line.slice(0, eq).trim()}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return out;
}

const unit = async (name: string): Promise<UnitFile> => parseUnit(await readFile(path.join(UNITS, name), 'utf8'));
const words = (u: UnitFile, key: string): string[] => (u.get(key) ?? []).flatMap((v) => v.split(/\s+/).filter((w) => w !== ''));
const last = (u: UnitFile, key: string): string | undefined => u.get(key)?.at(-1);

interface Root {
  readonly dir: string;
  readonly unitDir: string;
  verify(...units: string[]): Promise<{ code: number | null; output: string }>;
  exposure(unitName: string): Promise<{ level: number; output: string }>;
}

/**
 * A scratch root with the host's units, ours in /etc/systemd/system, the named
 * drop-ins (`unit.d/file.conf`), and the bins in `binDir`: /usr/local/bin is
 * where `npm install -g` puts them with Debian's npm, /usr/bin with NodeSource's.
 */
async function makeRoot(dropIns: readonly string[], binDir = '/usr/local/bin'): Promise<Root> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lf-systemd-'));
  const unitDir = path.join(dir, 'etc', 'systemd', 'system');
  await mkdir(unitDir, { recursive: true });
  await cp(HOST_UNIT_DIR, path.join(dir, HOST_UNIT_DIR), { recursive: true, verbatimSymlinks: true });
  for (const name of ['loadfeed-agent.service', 'loadfeed-poller.service']) await cp(path.join(UNITS, name), path.join(unitDir, name));
  for (const d of dropIns) {
    await mkdir(path.join(unitDir, path.dirname(d)), { recursive: true });
    await cp(path.join(UNITS, d), path.join(unitDir, d));
  }
  // Their content does not matter to verify.
  await mkdir(path.join(dir, binDir), { recursive: true });
  for (const b of ['loadfeed-agent', 'loadfeed-poller']) {
    await writeFile(path.join(dir, binDir, b), '#!/bin/sh\nexit 0\n');
    await chmod(path.join(dir, binDir, b), 0o755);
  }
  // ExecReload's /bin/kill: the real one, as on any Debian host (procps).
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await cp('/bin/kill', path.join(dir, 'bin', 'kill'));
  const analyze = findExecutable('systemd-analyze') ?? 'systemd-analyze';
  return {
    dir,
    unitDir,
    verify: async (...units) => {
      const r = await runCommand(analyze, ['verify', '--man=no', `--root=${dir}`, ...units], { timeoutMs: 60_000 });
      return { code: r.code, output: (r.stdout + r.stderr).trim() };
    },
    exposure: async (unitName) => {
      const r = await runCommand(analyze, ['security', '--offline=yes', `--root=${dir}`, '--no-pager', unitName], { timeoutMs: 60_000 });
      const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout + r.stderr);
      return { level: m?.[1] === undefined ? Number.NaN : Number(m[1]), output: r.stdout + r.stderr };
    },
  };
}

const POLLER_KERNEL = 'loadfeed-poller.service.d/kernel-engine.conf';
const POLLER_FASTPATH = 'loadfeed-poller.service.d/fastpath-only.conf';
const TLS = ['loadfeed-agent.service.d/tls.conf', 'loadfeed-poller.service.d/tls.conf'];

for (const dropIns of [[], [POLLER_KERNEL], [POLLER_FASTPATH], [...TLS, POLLER_KERNEL]]) {
  const what = dropIns.length === 0 ? 'as shipped' : `with ${dropIns.join(', ')}`;
  gate.test(`systemd-analyze verify accepts the agent and poller units ${what}, without a single warning`, async (t) => {
    const root = await makeRoot(dropIns);
    t.teardown(() => rm(root.dir, { recursive: true, force: true }));
    const r = await root.verify('loadfeed-agent.service', 'loadfeed-poller.service');
    t.is(r.code, 0, r.output);
    t.is(r.output, '', 'verify printed something');
  });
}

gate.test('ExecStart finds the bins where npm install -g puts them with NodeSource\'s npm too (/usr/bin)', async (t) => {
  const root = await makeRoot([], '/usr/bin');
  t.teardown(() => rm(root.dir, { recursive: true, force: true }));
  const r = await root.verify('loadfeed-agent.service', 'loadfeed-poller.service');
  t.is(r.code, 0, r.output);
  t.is(r.output, '', 'verify printed something');
});

gate.test('verify is real: a missing ExecStart binary fails, an unknown key is reported', async (t) => {
  const root = await makeRoot([]);
  t.teardown(() => rm(root.dir, { recursive: true, force: true }));
  const agent = await readFile(path.join(UNITS, 'loadfeed-agent.service'), 'utf8');
  await writeFile(path.join(root.unitDir, 'typo-bin.service'), agent.replace('ExecStart=loadfeed-agent', 'ExecStart=loadfeed-agnet'));
  await writeFile(path.join(root.unitDir, 'typo-key.service'), agent.replace('ProtectHome=yes', 'ProtectHomes=yes'));
  const missing = await root.verify('typo-bin.service');
  t.not(missing.code, 0);
  t.regex(missing.output, /loadfeed-agnet.*(No such file|not executable)/);
  const unknown = await root.verify('typo-key.service');
  t.regex(unknown.output, /Unknown key .*ProtectHomes/);
});

gate.test('systemd-analyze security rates both units OK (exposure at most 2.0 for the agent, 2.5 for the poller)', async (t) => {
  for (const dropIns of [[], [...TLS, POLLER_KERNEL]]) {
    const root = await makeRoot(dropIns);
    t.teardown(() => rm(root.dir, { recursive: true, force: true }));
    const agent = await root.exposure('loadfeed-agent.service');
    t.true(agent.level <= MAX_EXPOSURE.agent, `agent exposure ${agent.level}:\n${agent.output}`);
    const poller = await root.exposure('loadfeed-poller.service');
    t.true(poller.level <= MAX_EXPOSURE.poller, `poller (${dropIns.join(', ') || 'as shipped'}) exposure ${poller.level}:\n${poller.output}`);
    t.log(`exposure ${dropIns.length === 0 ? 'as shipped' : dropIns.join(', ')}: agent ${agent.level}, poller ${poller.level}`);
  }
});

test('the agent unit: dynamic user, no capabilities, read-only system, SOCK_DIAG allowed, environment file', async (t) => {
  const u = await unit('loadfeed-agent.service');
  t.is(last(u, 'Service.DynamicUser'), 'yes');
  t.deepEqual(u.get('Service.CapabilityBoundingSet'), [''], 'empty bounding set');
  t.deepEqual(u.get('Service.AmbientCapabilities'), [''], 'no ambient capabilities');
  t.is(last(u, 'Service.NoNewPrivileges'), 'yes');
  t.is(last(u, 'Service.ProtectSystem'), 'strict');
  t.is(last(u, 'Service.ProtectHome'), 'yes');
  t.is(last(u, 'Service.PrivateTmp'), 'yes');
  t.deepEqual(words(u, 'Service.RestrictAddressFamilies').sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
  t.is(last(u, 'Service.EnvironmentFile'), '-/etc/default/loadfeed-agent');
  t.is(last(u, 'Service.ExecStart'), 'loadfeed-agent', 'a bare name: systemd searches /usr/local/bin, then /usr/bin');
  t.is(last(u, 'Service.RuntimeDirectory'), 'loadfeed', 'the default status socket directory, /run/loadfeed');
  t.is(last(u, 'Service.Restart'), 'on-failure');
  t.is(last(u, 'Install.WantedBy'), 'multi-user.target');
});

test('the poller unit: reload is SIGHUP; CAP_NET_BIND_SERVICE only, CAP_NET_ADMIN only with the kernel-engine drop-in, none with fastpath-only', async (t) => {
  const u = await unit('loadfeed-poller.service');
  t.is(last(u, 'Service.DynamicUser'), 'yes');
  t.is(last(u, 'Service.ExecReload'), '/bin/kill -HUP $MAINPID');
  t.is(last(u, 'Service.Restart'), 'on-failure');
  t.is(last(u, 'Service.NoNewPrivileges'), 'yes');
  t.is(last(u, 'Service.ProtectSystem'), 'strict');
  t.is(last(u, 'Service.ProtectHome'), 'yes');
  t.is(last(u, 'Service.PrivateTmp'), 'yes');
  t.is(last(u, 'Service.EnvironmentFile'), '-/etc/default/loadfeed-poller');
  t.regex(last(u, 'Service.ExecStart') ?? '', /^loadfeed-poller --policy \$\{LOADFEED_POLICY\} --listen \$\{LOADFEED_LISTEN\} \$LOADFEED_POLLER_OPTS$/);
  t.deepEqual(words(u, 'Service.CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE']);
  t.deepEqual(words(u, 'Service.AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
  t.deepEqual(words(u, 'Service.RestrictAddressFamilies').sort(), ['AF_INET', 'AF_INET6', 'AF_UNIX']);

  const kernel = parseUnit(await readFile(path.join(UNITS, 'loadfeed-poller.service.d', 'kernel-engine.conf'), 'utf8'));
  t.deepEqual(kernel.get('Service.CapabilityBoundingSet'), ['CAP_NET_ADMIN'], 'adds CAP_NET_ADMIN and nothing else');
  t.deepEqual(kernel.get('Service.AmbientCapabilities'), ['CAP_NET_ADMIN']);
  t.deepEqual(kernel.get('Service.RestrictAddressFamilies'), ['AF_NETLINK']);

  const fastpath = parseUnit(await readFile(path.join(UNITS, 'loadfeed-poller.service.d', 'fastpath-only.conf'), 'utf8'));
  t.deepEqual(fastpath.get('Service.CapabilityBoundingSet'), [''], 'resets to no capability');
  t.deepEqual(fastpath.get('Service.AmbientCapabilities'), ['']);
});

test('the example environment files name only variables the programs read, and the agent accepts its values', async (t) => {
  const agentHelp = await runCommand(
    process.execPath,
    [path.join(REPO_ROOT, 'agent', 'build', 'src', 'bin', 'loadfeed-agent.js'), '--help'],
    { timeoutMs: 30_000 },
  );
  t.is(agentHelp.code, 0, agentHelp.stderr);
  const envFile = async (name: string): Promise<Record<string, string>> => {
    const env: Record<string, string> = {};
    for (const line of (await readFile(path.join(UNITS, name), 'utf8')).split('\n')) {
      // Commented-out examples count too: they must be valid once uncommented.
      const m = /^#?(LOADFEED_[A-Z_]+)=(.*)$/.exec(line.trim());
      if (m?.[1] !== undefined && m[2] !== undefined) env[m[1]] = m[2];
    }
    return env;
  };
  const agentEnv = await envFile('loadfeed-agent.env');
  t.true(Object.keys(agentEnv).length >= 5);
  // Named in --help, or at least read by the compiled configuration code.
  const configJs = await readFile(path.join(REPO_ROOT, 'agent', 'build', 'src', 'config.js'), 'utf8');
  for (const name of Object.keys(agentEnv)) {
    t.true(agentHelp.stdout.includes(`(${name}`) || configJs.includes(`'${name}'`), `${name} is not read by loadfeed-agent`);
  }
  const { config } = loadAgentConfig([], agentEnv);
  t.deepEqual(config?.pollers, ['director1.example.net:7415', 'director2.example.net:7415']);
  t.deepEqual(config?.services.map((s) => s.port), [80, 443]);

  const pollerUnit = await readFile(path.join(UNITS, 'loadfeed-poller.service'), 'utf8');
  for (const name of Object.keys(await envFile('loadfeed-poller.env'))) t.true(pollerUnit.includes(`\${${name}}`) || pollerUnit.includes(`$${name}`), `${name} is not used by the unit`);
});

test('TLS drop-ins hand root-only files over as credentials, and every flag the units pass exists', async (t) => {
  const agentTls = parseUnit(await readFile(path.join(UNITS, 'loadfeed-agent.service.d', 'tls.conf'), 'utf8'));
  t.deepEqual(agentTls.get('Service.LoadCredential')?.map((c) => c.split(':')[1]), ['/etc/loadfeed/tls/ca.pem', '/etc/loadfeed/tls/agent.pem', '/etc/loadfeed/tls/agent.key']);
  t.deepEqual(words(agentTls, 'Service.Environment').sort(), [
    'LOADFEED_TLS_CA=%d/tls-ca.pem',
    'LOADFEED_TLS_CERT=%d/tls-cert.pem',
    'LOADFEED_TLS_KEY=%d/tls-key.pem',
  ]);
  const pollerTls = parseUnit(await readFile(path.join(UNITS, 'loadfeed-poller.service.d', 'tls.conf'), 'utf8'));
  t.is(pollerTls.get('Service.ExecStart')?.[0], '', 'ExecStart is reset before it is replaced');
  t.is(pollerTls.get('Service.LoadCredential')?.length, 3);

  const help = await runCommand(process.execPath, [path.join(REPO_ROOT, 'poller', 'build', 'src', 'bin', 'loadfeed-poller.js'), '--help'], { timeoutMs: 30_000 });
  t.is(help.code, 0, help.stderr);
  const execStarts = [
    ...((await unit('loadfeed-poller.service')).get('Service.ExecStart') ?? []),
    ...(pollerTls.get('Service.ExecStart') ?? []),
  ];
  const flags = new Set(execStarts.flatMap((line) => line.match(/--[a-z-]+/g) ?? []));
  t.true(flags.size >= 5, [...flags].join(' '));
  for (const flag of flags) t.true(help.stdout.includes(`${flag} `), `${flag} is not in loadfeed-poller --help`);
});
