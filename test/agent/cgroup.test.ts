import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { realEngineGate, ROOT } from '../helpers/real-engine.js';
import {
  AgentError,
  cfsQuotaCores,
  cgroupCpuUtilization,
  createSampler,
  locateCgroup,
  openCgroup,
  parseCgroupCpuStat,
  parseCgroupInteger,
  parseCgroupMax,
  parseCpuMax,
  parseMountinfo,
  parseProcCgroup,
  CgroupCpuSource,
  readCgroupLimits,
  readCgroupMemory,
  readCgroupPressure,
  throttledFraction,
  type AgentErrorCode,
  type CgroupCpu,
  type CgroupDirs,
  type Reading,
} from '@loadfeed/agent';
import { copyFixtureTree, fixtureProc, fixtureSys, fixtureText } from './fixture-tree.js';
import { startBusyChild } from './busy-child.js';

const cg = (relative: string): string => path.join(fixtureSys, 'fs/cgroup', relative);

/**
 * CPU seconds a reading says the scope used. Reading.windowMs is rounded to
 * whole ms, so on the few-ms windows of fixture tests the result carries a
 * relative error of up to 0.5 ms / windowMs, which `within` allows for.
 */
const usedSeconds = (r: Reading, cores: number): number => r.cpuUtilization * (r.windowMs / 1000) * cores;
const within = (r: Reading, actual: number, expected: number): boolean => Math.abs(actual - expected) <= (expected * 0.5) / (r.windowMs - 0.5) + 1e-9;
const memTotal = Number(/^MemTotal:\s+(\d+) kB$/m.exec(fixtureText('proc/meminfo'))?.[1]) * 1024;

// ---- parsers -------------------------------------------------------------------

/** One read of a cgroup's CPU source. */
function cpuOnce(dirs: CgroupDirs): CgroupCpu {
  const source = new CgroupCpuSource(dirs);
  try {
    return source.read();
  } finally {
    source.close();
  }
}

test('parseMountinfo finds the v1 controller mounts and the cgroup2 mount (real capture)', (t) => {
  const mounts = parseMountinfo(fixtureText('proc/self/mountinfo'));
  t.like(mounts.find((m) => m.superOptions.includes('cpuacct')), { mountPoint: '/sys/fs/cgroup/cpuacct', fsType: 'cgroup', root: '/' });
  t.like(mounts.find((m) => m.fsType === 'cgroup2'), { mountPoint: '/sys/fs/cgroup/unified' });
  t.deepEqual(mounts.find((m) => m.mountPoint === '/sys/fs/cgroup/systemd')?.superOptions, ['rw', 'name=systemd']);
});

test('parseMountinfo: optional fields before "-" and octal escapes in paths', (t) => {
  const [m] = parseMountinfo('40 30 0:37 /docker/a\\040b /sys/fs/cgroup rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate\n');
  t.deepEqual(m, { root: '/docker/a b', mountPoint: '/sys/fs/cgroup', fsType: 'cgroup2', superOptions: ['rw', 'nsdelegate'] });
});

test('parseProcCgroup reads v1 controller lines and the v2 "0::" line (real capture)', (t) => {
  const entries = parseProcCgroup(fixtureText('proc/self/cgroup'));
  t.deepEqual(entries.find((e) => e.controllers.includes('memory')), { hierarchyId: 4, controllers: ['memory'], path: '/loadfeed-fixture' });
  t.deepEqual(entries.find((e) => e.hierarchyId === 0), { hierarchyId: 0, controllers: [], path: '/loadfeed-fixture' });
  t.deepEqual(parseProcCgroup('2:cpu,cpuacct:/a:b\n')[0], { hierarchyId: 2, controllers: ['cpu', 'cpuacct'], path: '/a:b' });
});

test('cgroup file parsers on the real v1 and v2 captures', (t) => {
  t.deepEqual(parseCgroupCpuStat(fixtureText('sys/fs/cgroup/cpu/loadfeed-fixture/cpu.stat'), 'cpu.stat'), { usageUsec: null, nrPeriods: 24, nrThrottled: 23 });
  // v2 without the cpu controller (this hybrid host): core fields only.
  t.deepEqual(parseCgroupCpuStat(fixtureText('sys/fs/cgroup/unified/loadfeed-fixture/cpu.stat'), 'cpu.stat'), { usageUsec: 1234758, nrPeriods: null, nrThrottled: null });
  t.deepEqual(parseCgroupCpuStat(fixtureText('sys/fs/cgroup/unified/loadfeed-v2-quota/cpu.stat'), 'cpu.stat'), { usageUsec: 1234758, nrPeriods: 24, nrThrottled: 23 });
  t.is(parseCgroupInteger(fixtureText('sys/fs/cgroup/cpuacct/loadfeed-fixture/cpuacct.usage'), 'cpuacct.usage'), 1234758236);
  t.is(parseCgroupInteger(fixtureText('sys/fs/cgroup/cpu/cpu.cfs_quota_us'), 'cpu.cfs_quota_us'), -1);
  t.is(parseCpuMax('50000 100000\n', 'cpu.max'), 0.5);
  t.is(parseCpuMax('max 100000\n', 'cpu.max'), null);
  t.is(parseCgroupMax('max\n', 'memory.max'), null);
  t.is(parseCgroupMax('268435456\n', 'memory.max'), 268435456);
  t.is(cfsQuotaCores(-1, 100000), null);
  t.is(cfsQuotaCores(150000, 100000), 1.5);
});

const malformed: readonly { name: string; parse: () => unknown; message: RegExp }[] = [
  { name: 'mountinfo empty', parse: () => parseMountinfo(''), message: /mountinfo: empty file/ },
  { name: 'mountinfo truncated (no " - ")', parse: () => parseMountinfo('31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime\n'), message: /truncated line/ },
  { name: 'cgroup empty', parse: () => parseProcCgroup(''), message: /\/proc\/self\/cgroup: empty file/ },
  { name: 'cgroup bad line', parse: () => parseProcCgroup('memory\n'), message: /truncated line "memory"/ },
  { name: 'cgroup non-numeric id', parse: () => parseProcCgroup('x:memory:/\n'), message: /bad value "x"/ },
  { name: 'cgroup relative path', parse: () => parseProcCgroup('4:memory:docker\n'), message: /bad path "docker"/ },
  { name: 'cpu.stat empty', parse: () => parseCgroupCpuStat('', 'cpu.stat'), message: /cpu\.stat: empty file/ },
  { name: 'cpu.stat truncated', parse: () => parseCgroupCpuStat('nr_periods 3\nnr_throttled\n', 'cpu.stat'), message: /truncated line "nr_throttled"/ },
  { name: 'cpu.stat non-numeric', parse: () => parseCgroupCpuStat('usage_usec 12e3\n', 'cpu.stat'), message: /bad value "12e3"/ },
  { name: 'cpu.max truncated', parse: () => parseCpuMax('50000\n', 'cpu.max'), message: /truncated line "50000"/ },
  { name: 'cpu.max non-numeric', parse: () => parseCpuMax('half 100000\n', 'cpu.max'), message: /bad value "half"/ },
  { name: 'cpu.max zero period', parse: () => parseCpuMax('50000 0\n', 'cpu.max'), message: /bad period/ },
  { name: 'memory.max two values', parse: () => parseCgroupMax('1 2\n', 'memory.max'), message: /expected one value/ },
  { name: 'integer file empty', parse: () => parseCgroupInteger('', 'cpuacct.usage'), message: /cpuacct\.usage: empty file/ },
  { name: 'integer file non-numeric', parse: () => parseCgroupInteger('lots\n', 'cpuacct.usage'), message: /bad value "lots"/ },
];
for (const { name, parse, message } of malformed) {
  test(`cgroup parsers reject malformed input: ${name}`, (t) => {
    const err = t.throws(parse, { instanceOf: AgentError, message });
    t.is(err?.code, 'AGENT_PROC_PARSE');
  });
}

// ---- locating the cgroup ------------------------------------------------------------

test('locateCgroup maps "self" per hierarchy and moves /sys mount points under sysRoot', (t) => {
  const mounts = parseMountinfo(fixtureText('proc/self/mountinfo'));
  const self = parseProcCgroup('4:memory:/mem/a\n2:cpuacct:/acct/b\n1:cpu:/cpu/c\n0::/v2/d\n');
  t.deepEqual(locateCgroup(mounts, self, 'self', '/host/sys'), {
    v1: { cpuacct: '/host/sys/fs/cgroup/cpuacct/acct/b', cpu: '/host/sys/fs/cgroup/cpu/cpu/c', memory: '/host/sys/fs/cgroup/memory/mem/a' },
    v2: '/host/sys/fs/cgroup/unified/v2/d',
  });
  t.is(locateCgroup(mounts, [], '/system.slice/nginx.service', '/sys').v2, '/sys/fs/cgroup/unified/system.slice/nginx.service');
});

test('locateCgroup: a bind-mounted subtree (container) strips the mount root from the path', (t) => {
  const mounts = parseMountinfo('50 40 0:37 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n');
  t.is(locateCgroup(mounts, parseProcCgroup('0::/docker/abc\n'), 'self', '/sys').v2, '/sys/fs/cgroup');
  t.is(locateCgroup(mounts, parseProcCgroup('0::/docker/abc/worker\n'), 'self', '/sys').v2, '/sys/fs/cgroup/worker');
  t.deepEqual(locateCgroup(mounts, [], '/x', '/sys').v1, { cpuacct: null, cpu: null, memory: null });
});

const opened: readonly { path: string; expect: CgroupDirs }[] = [
  {
    path: 'self', // /proc/self/cgroup: the /loadfeed-fixture cgroups; the v2 one has no cpu controller on this host
    expect: { version: 1, cpuacct: cg('cpuacct/loadfeed-fixture'), cpu: cg('cpu/loadfeed-fixture'), memory: cg('memory/loadfeed-fixture') },
  },
  { path: '/', expect: { version: 1, cpuacct: cg('cpuacct'), cpu: cg('cpu'), memory: cg('memory') } },
  { path: '/loadfeed-v2-quota', expect: { version: 2, dir: cg('unified/loadfeed-v2-quota') } },
];
for (const { path: cgroupPath, expect } of opened) {
  test(`openCgroup(${JSON.stringify(cgroupPath)}) picks cgroup v${expect.version} on the hybrid fixture host`, async (t) => {
    t.deepEqual(await openCgroup(cgroupPath, fixtureProc, fixtureSys), expect);
  });
}

test('openCgroup on a unified host whose cgroup lacks the cpu controller uses v2 core stats', async (t) => {
  const copy = await copyFixtureTree();
  t.teardown(() => copy.cleanup());
  await copy.write('proc/self/mountinfo', '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n');
  const dirs = await openCgroup('/loadfeed-fixture', copy.procRoot, copy.sysRoot);
  t.deepEqual(dirs, { version: 2, dir: path.join(copy.sysRoot, 'fs/cgroup/unified/loadfeed-fixture') });
  t.deepEqual(cpuOnce(dirs), { usageUsec: 1234758, nrPeriods: null, nrThrottled: null });
  t.deepEqual(await readCgroupLimits(dirs), { quotaCores: null, memoryLimitBytes: null });
});

const openErrors: readonly { name: string; path: string; mountinfo?: string; code: AgentErrorCode; message: RegExp }[] = [
  { name: 'a cgroup that does not exist', path: '/nope', code: 'AGENT_SCOPE_GONE', message: /cgroup \/nope not found/ },
  { name: 'a relative path', path: 'system.slice', code: 'AGENT_CONFIG_INVALID', message: /must be "self" or start with "\/"/ },
  { name: 'no cgroup mounts', path: '/', mountinfo: '26 1 254:0 / / rw - ext4 /dev/vda rw\n', code: 'AGENT_CONFIG_INVALID', message: /no cgroup2 mount and no cgroup v1 cpuacct mount/ },
];
for (const { name, path: cgroupPath, mountinfo, code, message } of openErrors) {
  test(`openCgroup rejects ${name}`, async (t) => {
    const copy = await copyFixtureTree();
    t.teardown(() => copy.cleanup());
    if (mountinfo !== undefined) await copy.write('proc/self/mountinfo', mountinfo);
    const err = await t.throwsAsync(openCgroup(cgroupPath, copy.procRoot, copy.sysRoot), { instanceOf: AgentError, message });
    t.is(err?.code, code);
  });
}

// ---- readers on the fixture trees -------------------------------------------------------

test('v1 readers: usage from cpuacct (ns → µs), throttling from cpu.stat, quota, memory, no PSI', async (t) => {
  const dirs = await openCgroup('self', fixtureProc, fixtureSys);
  t.deepEqual(cpuOnce(dirs), { usageUsec: 1234758.236, nrPeriods: 24, nrThrottled: 23 });
  t.deepEqual(await readCgroupLimits(dirs), { quotaCores: 0.5, memoryLimitBytes: 268435456 });
  t.is(await readCgroupMemory(dirs), 1224704);
  t.is(await readCgroupPressure(dirs, 'cpu'), null);
});

test('v1 root cgroup: no quota (-1) and the page-counter maximum as limit', async (t) => {
  const dirs = await openCgroup('/', fixtureProc, fixtureSys);
  t.deepEqual(await readCgroupLimits(dirs), { quotaCores: null, memoryLimitBytes: 9223372036854771712 });
});

test('v2 readers: cpu.stat, cpu.max, memory.current, memory.max, *.pressure', async (t) => {
  const quota = await openCgroup('/loadfeed-v2-quota', fixtureProc, fixtureSys);
  t.deepEqual(cpuOnce(quota), { usageUsec: 1234758, nrPeriods: 24, nrThrottled: 23 });
  t.deepEqual(await readCgroupLimits(quota), { quotaCores: 0.5, memoryLimitBytes: 268435456 });
  t.is(await readCgroupMemory(quota), 1224704);
  t.deepEqual(await readCgroupPressure(quota, 'cpu'), { someAvg10: 0.0869, fullAvg10: 0.0869 });
  const noQuota = await openCgroup('/loadfeed-v2-noquota', fixtureProc, fixtureSys);
  t.deepEqual(await readCgroupLimits(noQuota), { quotaCores: null, memoryLimitBytes: null });
});

// ---- deltas ------------------------------------------------------------------------------

const cpu = (usageUsec: number, nrPeriods: number | null, nrThrottled: number | null): CgroupCpu => ({ usageUsec, nrPeriods, nrThrottled });

test('cgroupCpuUtilization: usage delta / (window × quota cores); null when the counter went backwards', (t) => {
  t.is(cgroupCpuUtilization(1_000_000, 1_250_000, 1000, 0.5), 0.5);
  t.is(cgroupCpuUtilization(0, 4_000_000, 1000, 2), 2);
  t.is(cgroupCpuUtilization(1_250_000, 1_000_000, 1000, 0.5), null);
});

test('throttledFraction: Δnr_throttled / Δnr_periods; null without periods, counters or when they went backwards', (t) => {
  t.is(throttledFraction(cpu(0, 0, 0), cpu(0, 24, 23)), 23 / 24);
  t.is(throttledFraction(cpu(0, 10, 2), cpu(0, 20, 2)), 0);
  t.is(throttledFraction(cpu(0, 10, 2), cpu(0, 10, 2)), null);
  t.is(throttledFraction(cpu(0, null, null), cpu(0, null, null)), null);
  t.is(throttledFraction(cpu(0, 10, 5), cpu(0, 20, 4)), null);
});

// ---- the sampler in cgroup scope, on editable fixture copies -------------------------------

test('sampler, cgroup v1 with quota: capacity from the quota and limit, CPU and throttling over the window, host-wide figures', async (t) => {
  const copy = await copyFixtureTree();
  t.teardown(() => copy.cleanup());
  const errors: AgentError[] = [];
  const sampler = await createSampler({ scope: { kind: 'cgroup', path: 'self' }, procRoot: copy.procRoot, sysRoot: copy.sysRoot, services: [], onError: (e) => errors.push(e) });
  t.teardown(() => sampler.close());
  t.deepEqual(sampler.capacity, { cores: 0.5, memoryBytes: 268435456 });
  // 200 ms of CPU and 10 periods, 4 of them throttled, since the baseline.
  await copy.write('sys/fs/cgroup/cpuacct/loadfeed-fixture/cpuacct.usage', `${1234758236 + 200_000_000}\n`);
  await copy.write('sys/fs/cgroup/cpu/loadfeed-fixture/cpu.stat', 'nr_periods 34\nnr_throttled 27\nthrottled_time 1200000000\nnr_bursts 0\nburst_time 0\n');
  await copy.write('sys/fs/cgroup/memory/loadfeed-fixture/memory.usage_in_bytes', `${64 * 1024 * 1024}\n`);
  const r = await sampler.sample();
  t.true(within(r, usedSeconds(r, 0.5), 0.2), `${usedSeconds(r, 0.5)} s over ${r.windowMs} ms`);
  t.is(r.cpuThrottled, 0.4);
  t.is(r.memUtilization, 0.25);
  t.deepEqual([r.psiCpuSome, r.psiMemorySome, r.psiIoSome], [null, null, null]);
  t.is(r.load1, 0.19);
  t.is(r.runnable, 2);
  t.not(r.tcpInuse, null);
  t.not(r.tcpEstablished, null);
  t.deepEqual(errors, []);

  // The cgroup is removed: its CPU source is gone.
  await copy.remove('sys/fs/cgroup/cpuacct/loadfeed-fixture');
  const err = await t.throwsAsync(sampler.sample(), { instanceOf: AgentError, message: /cgroup self .* is gone/ });
  t.is(err?.code, 'AGENT_SCOPE_GONE');
});

test('sampler, cgroup v2: quota capacity, PSI from the cgroup files; no quota → host cores and MemTotal', async (t) => {
  const copy = await copyFixtureTree();
  t.teardown(() => copy.cleanup());
  const quota = await createSampler({ scope: { kind: 'cgroup', path: '/loadfeed-v2-quota' }, procRoot: copy.procRoot, sysRoot: copy.sysRoot, services: [] });
  t.teardown(() => quota.close());
  t.deepEqual(quota.capacity, { cores: 0.5, memoryBytes: 268435456 });
  await copy.write('sys/fs/cgroup/unified/loadfeed-v2-quota/cpu.stat', 'usage_usec 1334758\nuser_usec 1330762\nsystem_usec 3995\nnice_usec 0\nnr_periods 28\nnr_throttled 23\nthrottled_usec 1143355\nnr_bursts 0\nburst_usec 0\n');
  const r = await quota.sample();
  t.true(within(r, usedSeconds(r, 0.5), 0.1), `${usedSeconds(r, 0.5)} s over ${r.windowMs} ms`);
  t.is(r.cpuThrottled, 0);
  t.is(r.memUtilization, 1224704 / 268435456);
  t.deepEqual([r.psiCpuSome, r.psiMemorySome, r.psiIoSome], [0.0869, 0, 0]);

  const noQuota = await createSampler({ scope: { kind: 'cgroup', path: '/loadfeed-v2-noquota' }, procRoot: copy.procRoot, sysRoot: copy.sysRoot, services: [] });
  t.teardown(() => noQuota.close());
  t.deepEqual(noQuota.capacity, { cores: 2, memoryBytes: memTotal });
  t.is((await noQuota.sample()).cpuThrottled, null, 'no CFS period elapsed');
});

test('sampler, cgroup: a usage counter that goes backwards repeats the previous utilisation and resets the baseline', async (t) => {
  const copy = await copyFixtureTree();
  t.teardown(() => copy.cleanup());
  const file = 'sys/fs/cgroup/cpuacct/loadfeed-fixture/cpuacct.usage';
  const sampler = await createSampler({ scope: { kind: 'cgroup', path: 'self' }, procRoot: copy.procRoot, sysRoot: copy.sysRoot, services: [] });
  t.teardown(() => sampler.close());
  await copy.write(file, `${1234758236 + 100_000_000}\n`);
  const first = await sampler.sample();
  t.true(first.cpuUtilization > 0);
  await copy.write(file, '5000000\n');
  t.is((await sampler.sample()).cpuUtilization, first.cpuUtilization);
  await copy.write(file, `${5000000 + 50_000_000}\n`); // measured from the reset baseline
  const third = await sampler.sample();
  t.true(within(third, usedSeconds(third, 0.5), 0.05), `${usedSeconds(third, 0.5)} s over ${third.windowMs} ms`);
});

// ---- the real kernel: a v1 cgroup with a quota, gated on being able to create one -------------

const V1_CPU = '/sys/fs/cgroup/cpu';
const V1_CPUACCT = '/sys/fs/cgroup/cpuacct';
const cgroupV1 = realEngineGate('cgroup v1', [
  ROOT,
  {
    what: 'cgroup v1 cpu and cpuacct controllers',
    howTo: 'a host with the v1 (hybrid) hierarchy, e.g. systemd.unified_cgroup_hierarchy=0 on the kernel command line',
    probe: () =>
      existsSync(path.join(V1_CPU, 'cpu.cfs_quota_us')) && existsSync(path.join(V1_CPUACCT, 'cpuacct.usage')) ? undefined : `no ${V1_CPU}/cpu.cfs_quota_us or ${V1_CPUACCT}/cpuacct.usage`,
  },
]);

cgroupV1.test('live v1: a busy child in a half-core cgroup is measured against its own CPU account and is throttled', async (t) => {
  const name = `loadfeed-test-${process.pid}`;
  const dirs = [path.join(V1_CPU, name), path.join(V1_CPUACCT, name)];
  const child = await startBusyChild(1000, 100, false);
  t.teardown(async () => {
    await child.end();
    for (const dir of dirs) await rmdir(dir).catch(() => {});
  });
  for (const dir of dirs) await mkdir(dir);
  await writeFile(path.join(V1_CPU, name, 'cpu.cfs_period_us'), '100000');
  await writeFile(path.join(V1_CPU, name, 'cpu.cfs_quota_us'), '50000');
  for (const dir of dirs) await writeFile(path.join(dir, 'cgroup.procs'), String(child.pid));

  const sampler = await createSampler({ scope: { kind: 'cgroup', path: `/${name}` }, procRoot: '/proc', sysRoot: '/sys', services: [], onError: (e) => t.fail(e.message) });
  t.teardown(() => sampler.close());
  t.is(sampler.capacity.cores, 0.5);
  const report = await child.run();
  const r = await sampler.sample();
  const measuredSeconds = usedSeconds(r, sampler.capacity.cores);
  t.log(`reported ${report.cpuSeconds.toFixed(3)} s, measured ${measuredSeconds.toFixed(3)} s over ${r.windowMs} ms, throttled ${r.cpuThrottled}`);
  t.true(Math.abs(measuredSeconds - report.cpuSeconds) < 0.03 + 0.05 * report.cpuSeconds);
  // The quota held the child to about half a core.
  const windowSeconds = r.windowMs / 1000;
  t.true(report.cpuSeconds < 0.5 * windowSeconds * 1.2);
  t.true(r.cpuThrottled !== null && r.cpuThrottled >= 0 && r.cpuThrottled <= 1);
  // A child that got its whole quota wanted more and was throttled; on a
  // host busy with other tests it may not even get half a core.
  if (report.cpuSeconds > 0.45 * windowSeconds) t.true((r.cpuThrottled ?? 0) > 0.2);
});
