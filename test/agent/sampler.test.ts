import test from 'ava';
import { once } from 'node:events';
import { AgentError, createSampler, parseMeminfo, parsePressure, parseSnmp, ReportGate, type CpuWindow, type Reading } from '@loadfeed/agent';
import { copyFixtureTree, fixtureText, type TreeCopy } from './fixture-tree.js';

// Host scope on an editable copy of the captured tree: each test writes the
// counters it wants the next sample to see.
const STAT = fixtureText('proc/stat');
const BASE = (/^cpu {2}(.*)$/m.exec(STAT)?.[1] ?? '').split(' ').map(Number); // user nice system idle iowait irq softirq steal guest guest_nice
const mem = parseMeminfo(fixtureText('proc/meminfo'));
const snmp = parseSnmp(fixtureText('proc/net/snmp'));

/** /proc/stat with the aggregate line's user and idle moved by the given ticks from the capture. */
function procStat(userDelta: number, idleDelta: number): string {
  const cpu = [...BASE];
  cpu[0] = (cpu[0] ?? 0) + userDelta;
  cpu[3] = (cpu[3] ?? 0) + idleDelta;
  return STAT.replace(/^cpu {2}.*$/m, `cpu  ${cpu.join(' ')}`);
}

/** /proc/net/snmp with PassiveOpens moved by `more` from the capture. */
function snmpWithPassiveOpens(more: number): string {
  const snmpText = fixtureText('proc/net/snmp');
  const header = snmpText.split('\n').find((l) => l.startsWith('Tcp:')) ?? '';
  const at = header.split(' ').indexOf('PassiveOpens');
  return snmpText.replace(/^(Tcp: \d.*)$/m, (line) => line.split(' ').map((v, i) => (i === at ? String(Number(v) + more) : v)).join(' '));
}

async function hostSampler(t: { teardown(fn: () => unknown): void }, copy: TreeCopy, errors: AgentError[] = []) {
  const sampler = await createSampler({ scope: { kind: 'host' }, procRoot: copy.procRoot, sysRoot: copy.sysRoot, services: [], onError: (e) => errors.push(e) });
  t.teardown(() => sampler.close());
  return sampler;
}

async function tree(t: { teardown(fn: () => unknown): void }): Promise<TreeCopy> {
  const copy = await copyFixtureTree();
  t.teardown(() => copy.cleanup());
  return copy;
}

test('host scope: capacity is the online CPUs and MemTotal; the first sample already has a delta', async (t) => {
  const copy = await tree(t);
  const errors: AgentError[] = [];
  const sampler = await hostSampler(t, copy, errors);
  t.deepEqual(sampler.capacity, { cores: 2, memoryBytes: mem.memTotalBytes });
  await copy.write('proc/stat', procStat(30, 70));
  const r = await sampler.sample();
  t.like(r, {
    cpuUtilization: 0.3,
    memUtilization: (mem.memTotalBytes - mem.memAvailableBytes) / mem.memTotalBytes,
    load1: 0.19,
    runnable: 2,
    psiCpuSome: parsePressure(fixtureText('proc/pressure/cpu')).someAvg10,
    psiMemorySome: 0,
    psiIoSome: 0,
    cpuThrottled: null,
    tcpEstablished: snmp.currEstab,
    tcpAcceptsPerSecond: 0,
    services: [],
  });
  t.true(r.windowMs >= 1);
  // windowMs is rounded to the ms, cpuStep is not: the exact window is at least windowMs - 0.5.
  t.true(Math.abs((r.cpuStep * r.windowMs * 2) / 10 - 1) <= 0.5 / (r.windowMs - 0.5), `one 10 ms clock tick over ${r.windowMs} ms of 2 cores: ${r.cpuStep}`);
  t.deepEqual(errors, []);
});

test('host scope: counters going backwards or jumping repeat the previous utilisation and reset the baseline', async (t) => {
  const copy = await tree(t);
  const sampler = await hostSampler(t, copy);
  await copy.write('proc/stat', procStat(30, 70));
  t.is((await sampler.sample()).cpuUtilization, 0.3);
  await copy.write('proc/stat', procStat(20, 80)); // user went backwards
  t.is((await sampler.sample()).cpuUtilization, 0.3);
  await copy.write('proc/stat', procStat(30, 170)); // measured from the reset baseline: +10 busy, +90 idle
  t.is((await sampler.sample()).cpuUtilization, 0.1);
  await copy.write('proc/stat', procStat(30 + 50_000, 170)); // 500 s of CPU in a few ms
  t.is((await sampler.sample()).cpuUtilization, 0.1);
  await copy.write('proc/stat', procStat(30 + 50_000 + 50, 170 + 50));
  t.is((await sampler.sample()).cpuUtilization, 0.5);
});

test('host scope: the first untrusted delta reports 0, not a guess', async (t) => {
  const copy = await tree(t);
  const sampler = await hostSampler(t, copy);
  await copy.write('proc/stat', procStat(-5, 100));
  t.is((await sampler.sample()).cpuUtilization, 0);
});

test('host scope: PSI absent (no /proc/pressure) is null and not an error', async (t) => {
  const copy = await tree(t);
  await copy.remove('proc/pressure');
  const errors: AgentError[] = [];
  const sampler = await hostSampler(t, copy, errors);
  const r = await sampler.sample();
  t.deepEqual([r.psiCpuSome, r.psiMemorySome, r.psiIoSome], [null, null, null]);
  t.deepEqual(errors, []);
});

test('a failing metric degrades to null and is reported once per run of failures; the rest of the sample stands', async (t) => {
  const copy = await tree(t);
  const errors: AgentError[] = [];
  const sampler = await hostSampler(t, copy, errors);
  await copy.write('proc/loadavg', 'garbage\n');
  await copy.write('proc/stat', procStat(30, 70));
  const broken = await sampler.sample();
  t.like(broken, { load1: null, runnable: null, cpuUtilization: 0.3 });
  t.not(broken.tcpInuse, null);
  t.like(await sampler.sample(), { load1: null, runnable: null });
  t.is(errors.length, 1);
  t.is(errors[0]?.code, 'AGENT_PROC_PARSE');
  t.regex(errors[0]?.message ?? '', /loadavg: bad value "garbage"/);
  await copy.write('proc/loadavg', fixtureText('proc/loadavg'));
  t.like(await sampler.sample(), { load1: 0.19, runnable: 2 });
  await copy.write('proc/net/snmp', 'Ip: 1\n');
  await copy.write('proc/loadavg', '');
  const again = await sampler.sample();
  t.like(again, { load1: null, tcpEstablished: null, tcpAcceptsPerSecond: null });
  t.deepEqual(
    errors.map((e) => e.message.replace(/: .*/s, '').replace(/^.*\/proc\//, '')).sort(),
    ['loadavg', 'loadavg', 'net/snmp'],
    'a new run of failures of loadavg, and net/snmp, each heard once',
  );
});

test('an unreadable meminfo keeps the previous memory utilisation', async (t) => {
  const copy = await tree(t);
  const errors: AgentError[] = [];
  const sampler = await hostSampler(t, copy, errors);
  const before = (await sampler.sample()).memUtilization;
  await copy.write('proc/meminfo', 'MemTotal: 100 kB\n');
  t.is((await sampler.sample()).memUtilization, before);
  t.is(errors.length, 1);
});

test('accepts per second come from the PassiveOpens delta over the window', async (t) => {
  const copy = await tree(t);
  let now = 0; // the sampler's clock: the window is exactly 1.5 s however busy the machine
  const sampler = await createSampler({ scope: { kind: 'host' }, procRoot: copy.procRoot, sysRoot: copy.sysRoot, services: [], clock: () => now, onError: (e) => t.fail(e.message) });
  t.teardown(() => sampler.close());
  await copy.write('proc/net/snmp', snmpWithPassiveOpens(12));
  now += 1500;
  const r: Reading = await sampler.sample();
  t.like(r, { windowMs: 1500, tcpAcceptsPerSecond: 8 });
});

test('a host /proc/stat the agent cannot read any more fails the sample with a typed error', async (t) => {
  const copy = await tree(t);
  const sampler = await hostSampler(t, copy);
  // Held open: /proc/stat never goes away, so what can happen to it is text the agent cannot read.
  await copy.write('proc/stat', 'cpu  1 x 3 4\ncpu0 1 2 3 4\n');
  const err = await t.throwsAsync(sampler.sample(), { instanceOf: AgentError, message: /stat: bad value "x"/ });
  t.is(err?.code, 'AGENT_PROC_PARSE');
});

test('without onError, a degraded metric becomes one process warning', async (t) => {
  const copy = await tree(t);
  const sampler = await createSampler({ scope: { kind: 'host' }, procRoot: copy.procRoot, sysRoot: copy.sysRoot, services: [] });
  t.teardown(() => sampler.close());
  await copy.write('proc/loadavg', 'garbage\n');
  const warned = once(process, 'warning') as Promise<[Error]>;
  await sampler.sample();
  const [warning] = await warned;
  t.true(warning instanceof AgentError);
  t.is(warning.name, 'AgentError');
});

test('a broken scope at start fails createSampler with a typed error', async (t) => {
  const copy = await tree(t);
  await copy.write('proc/stat', 'cpu  1 2\n');
  const err = await t.throwsAsync(createSampler({ scope: { kind: 'host' }, procRoot: copy.procRoot, sysRoot: copy.sysRoot, services: [] }), { instanceOf: AgentError });
  t.is(err?.code, 'AGENT_PROC_PARSE');
});

test('a watch window reads the scope\'s CPU source alone; the report reads the rest', async (t) => {
  const copy = await tree(t);
  const errors: AgentError[] = [];
  const sampler = await hostSampler(t, copy, errors);
  // The report's files are held open since the baseline sample: garbage in them, not their removal, is what it sees.
  for (const file of ['proc/meminfo', 'proc/loadavg', 'proc/net/sockstat', 'proc/net/snmp']) await copy.write(file, 'garbage\n');
  await copy.write('proc/stat', procStat(30, 70));
  const watched = await sampler.watch();
  t.is(watched.cpuUtilization, 0.3);
  t.deepEqual(errors, [], 'the watch read nothing but /proc/stat');
  t.like(await sampler.report(watched), { cpuUtilization: 0.3, load1: null, tcpInuse: null, tcpEstablished: null });
  for (const file of [/meminfo/, /loadavg/, /sockstat/, /snmp/]) t.true(errors.some((e) => file.test(e.message)), `${file} read by the report: ${errors.map((e) => e.message).join('; ')}`);
});

test('the gate\'s merged watch windows are the whole interval\'s CPU; an early report carries every figure, accepts since the previous report', async (t) => {
  const copy = await tree(t);
  let now = 0;
  const sampler = await createSampler({ scope: { kind: 'host' }, procRoot: copy.procRoot, sysRoot: copy.sysRoot, services: [], clock: () => now, onError: (e) => t.fail(e.message) });
  t.teardown(() => sampler.close());
  const gate = new ReportGate(0.25);
  let busy = 0;
  let idle = 0;
  // 2 cores: a 250 ms window is 50 clock ticks.
  const watchWindow = async (busyTicks: number): Promise<CpuWindow | null> => {
    now += 250;
    busy += busyTicks;
    idle += 50 - busyTicks;
    await copy.write('proc/stat', procStat(busy, idle));
    return gate.offer(await sampler.watch(), 1000);
  };
  // The first interval's windows go one by one (the first at once), each reported.
  for (const ticks of [15, 15, 15, 15]) {
    const first = await watchWindow(ticks);
    if (!first) return t.fail('the first interval is reported window by window');
    t.is(first.windowMs, 250);
    await sampler.report(first);
  }
  await copy.write('proc/net/snmp', snmpWithPassiveOpens(12));
  const interval = [await watchWindow(10), await watchWindow(20), await watchWindow(15), await watchWindow(15)];
  t.deepEqual(interval.slice(0, 3), [null, null, null]);
  const merged = interval[3];
  if (!merged) return t.fail('the fourth window closes the interval');
  t.is(merged.windowMs, 1000);
  t.true(Math.abs(merged.cpuUtilization - 60 / 200) < 1e-12, `60 of 200 ticks busy: ${merged.cpuUtilization}`);
  t.like(await sampler.report(merged), { cpuUtilization: merged.cpuUtilization, windowMs: 1000, tcpAcceptsPerSecond: 12 });

  await copy.write('proc/net/snmp', snmpWithPassiveOpens(12 + 5));
  const early = await watchWindow(50);
  if (!early) return t.fail('0.3 → 1 is a marked change');
  const reading = await sampler.report(early);
  t.like(reading, {
    cpuUtilization: 1,
    windowMs: 250,
    tcpAcceptsPerSecond: 20, // 5 accepts in the 250 ms since the interval's report
    memUtilization: (mem.memTotalBytes - mem.memAvailableBytes) / mem.memTotalBytes,
    load1: 0.19,
    runnable: 2,
    psiCpuSome: parsePressure(fixtureText('proc/pressure/cpu')).someAvg10,
    tcpEstablished: snmp.currEstab,
  });
  t.not(reading.tcpInuse, null);
});
