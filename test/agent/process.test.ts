import test from 'ava';
import {
  AgentError,
  createProcessTreeReader,
  createSampler,
  parseChildren,
  parsePidStat,
  parsePidStatusRss,
  processCpuUtilization,
  processTreeTicks,
  type PidStat,
  type ProcessTreeUsage,
} from '@loadfeed/agent';
import { copyFixtureTree, fixtureProc, fixtureText } from './fixture-tree.js';
import { startBusyChild } from './busy-child.js';

// The captured tree: 4637 (root, comm "svc) (x y") → 4639 (busy loop), 4640 (subshell) → 4641 (sleep).
// 10018 is an unrelated sleep.
const TREE = [4637, 4639, 4640, 4641];
const rssKb = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB$/m.exec(fixtureText(`proc/${pid}/status`))?.[1]);

test('parsePidStat counts fields after the LAST ")": a comm with a space and parentheses (real capture)', (t) => {
  t.deepEqual(parsePidStat(fixtureText('proc/4639/stat')), { pid: 4639, comm: 'svc) (x y', ppid: 4637, utime: 110, stime: 0, starttime: 70513 });
  t.like(parsePidStat(fixtureText('proc/4637/stat')), { comm: 'svc) (x y', ppid: 4632, utime: 1, starttime: 70512 });
  t.like(parsePidStat(fixtureText('proc/4641/stat')), { comm: 'sleep', ppid: 4640 });
});

test('parsePidStatusRss reads VmRSS in bytes; kernel threads have none', (t) => {
  t.is(parsePidStatusRss(fixtureText('proc/4639/status')), rssKb(4639) * 1024);
  t.is(parsePidStatusRss('Name:\tkthreadd\nState:\tS (sleeping)\nPPid:\t0\n'), null);
});

test('parseChildren reads the kernel format "pid pid "', (t) => {
  t.deepEqual(parseChildren('4639 4640 '), [4639, 4640]);
  t.deepEqual(parseChildren(''), []);
});

const STAT_TAIL = 'S 1 1 1 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 1 0 555 0 0';
const malformed: readonly { name: string; parse: () => unknown; message: RegExp }[] = [
  { name: 'stat empty', parse: () => parsePidStat(''), message: /no "\(comm\)"/ },
  { name: 'stat bad line', parse: () => parsePidStat('hello world\n'), message: /no "\(comm\)" in "hello world"/ },
  { name: 'stat truncated after comm', parse: () => parsePidStat('12 (a) S 1 1\n'), message: /truncated line "12 \(a\) S 1 1"/ },
  { name: 'stat non-numeric utime', parse: () => parsePidStat(`12 (a) ${STAT_TAIL.replace(' 7 3 ', ' x7 3 ')}\n`), message: /bad value "x7"/ },
  { name: 'stat non-numeric pid', parse: () => parsePidStat(`x12 (a) ${STAT_TAIL}\n`), message: /bad value "x12"/ },
  { name: 'status empty', parse: () => parsePidStatusRss(''), message: /empty file/ },
  { name: 'status VmRSS truncated', parse: () => parsePidStatusRss('VmRSS:\t1234\n'), message: /expected kB in line "VmRSS:\\t1234"/ },
  { name: 'status VmRSS non-numeric', parse: () => parsePidStatusRss('VmRSS:\tbig kB\n'), message: /bad value "big"/ },
  { name: 'children non-numeric', parse: () => parseChildren('12 x '), message: /bad value "x"/ },
];
for (const { name, parse, message } of malformed) {
  test(`process parsers reject malformed input: ${name}`, (t) => {
    const err = t.throws(parse, { instanceOf: AgentError, message });
    t.is(err?.code, 'AGENT_PROC_PARSE');
  });
}

test('parsePidStat accepts a well-formed synthetic line (the malformed cases above differ by one token)', (t) => {
  t.like(parsePidStat(`12 (a) ${STAT_TAIL}\n`), { pid: 12, utime: 7, stime: 3, starttime: 555 });
});

test('tree by ppid (no children files on this kernel): the root and every descendant, nothing else', async (t) => {
  const reader = await createProcessTreeReader(4637, fixtureProc);
  const tree = await reader.read();
  t.deepEqual([...tree.processes.keys()].sort(), TREE);
  t.is(await reader.rssBytes(tree), TREE.reduce((sum, pid) => sum + rssKb(pid) * 1024, 0));
});

test('tree by children files when they exist (they define the tree; a vanished child is skipped)', async (t) => {
  const copy = await copyFixtureTree();
  t.teardown(() => copy.cleanup());
  // 4637 lists 4640 and a child (4999) that exited meanwhile, but not 4639: only the files decide.
  await copy.write('proc/4637/task/4637/children', '4640 4999 ');
  await copy.write('proc/4640/task/4640/children', '4641 ');
  await copy.write('proc/4641/task/4641/children', '');
  const tree = await (await createProcessTreeReader(4637, copy.procRoot)).read();
  t.deepEqual([...tree.processes.keys()].sort(), [4637, 4640, 4641]);
});

test('the root pid missing is AGENT_SCOPE_GONE, at start and later', async (t) => {
  await t.throwsAsync(createProcessTreeReader(4242, fixtureProc), { instanceOf: AgentError, message: /process 4242 has exited/ });
  const copy = await copyFixtureTree();
  t.teardown(() => copy.cleanup());
  const reader = await createProcessTreeReader(4637, copy.procRoot);
  await copy.remove('proc/4637');
  const err = await t.throwsAsync(reader.read(), { instanceOf: AgentError });
  t.is(err?.code, 'AGENT_SCOPE_GONE');
});

const usage = (...stats: Partial<PidStat>[]): ProcessTreeUsage => ({
  processes: new Map(stats.map((s) => [s.pid ?? 0, { pid: 0, comm: 'x', ppid: 1, utime: 0, stime: 0, starttime: 1, ...s }])),
});

test('processTreeTicks: per-process deltas; new processes count fully, exited ones are skipped, pid reuse is a new process', (t) => {
  const prev = usage({ pid: 1, utime: 100, stime: 50 }, { pid: 2, utime: 10 }, { pid: 3, utime: 500, starttime: 7 });
  const cur = usage(
    { pid: 1, utime: 130, stime: 60 }, // +40
    // pid 2 exited: skipped
    { pid: 3, utime: 5, starttime: 9 }, // reused pid: +5, not -495
    { pid: 4, utime: 20, stime: 2 }, // new: +22
  );
  t.is(processTreeTicks(prev, cur), 40 + 5 + 22);
  t.is(processCpuUtilization(150, 1000, 0.5), 3); // 1.5 cores used of a declared half core
});

test('live: a busy child and its grandchild, measured against the CPU they report; then a vanished grandchild, then the root gone', async (t) => {
  // The child burns 0.4 s of CPU at 50 % of a core, its grandchild 0.8 s at 100 %
  // (CPU time: a loaded machine stretches the burn, not the amounts).
  const child = await startBusyChild(800, 50, true);
  t.teardown(() => child.end());
  t.not(child.grandchildPid, null);
  const cores = 2;
  const sampler = await createSampler({
    scope: { kind: 'process', pid: child.pid, cores, memoryBytes: 1024 ** 3 },
    procRoot: '/proc',
    sysRoot: '/sys',
    services: [],
    onError: (e) => t.fail(e.message),
  });
  t.teardown(() => sampler.close());
  t.deepEqual(sampler.capacity, { cores, memoryBytes: 1024 ** 3 });

  const report = await child.run();
  const reading = await sampler.sample();
  const measuredSeconds = reading.cpuUtilization * (reading.windowMs / 1000) * cores;
  t.log(`reported ${report.cpuSeconds.toFixed(3)} s (grandchild ${report.grandchildCpuSeconds.toFixed(3)} s), measured ${measuredSeconds.toFixed(3)} s over ${reading.windowMs} ms`);
  // Tick accounting is 10 ms per process, plus the children's own protocol work.
  t.true(Math.abs(measuredSeconds - report.cpuSeconds) < 0.06 + 0.1 * report.cpuSeconds, 'measured as reported');
  // The grandchild's CPU (two thirds of the total) is in the figure.
  t.true(report.grandchildCpuSeconds > 0.7, 'the grandchild burned its share');
  t.true(measuredSeconds - (report.cpuSeconds - report.grandchildCpuSeconds) > 0.5 * report.grandchildCpuSeconds, 'the grandchild is in the figure');
  t.true(Math.abs(reading.memUtilization * 1024 ** 3 - report.rssBytes) < 0.2 * report.rssBytes, `memory ${reading.memUtilization * 1024 ** 3} B, reported ${report.rssBytes} B`);
  t.is(reading.psiCpuSome, null);
  t.is(reading.cpuThrottled, null);
  t.not(reading.load1, null, 'host-wide figures are filled in process scope');

  // The grandchild gone, the tree is idle: its departure adds nothing (no
  // negative delta, no second count of its ticks). In CPU seconds, not as a
  // utilisation: the windows' lengths depend on the machine's load.
  await child.endGrandchild();
  const afterGrandchild = await sampler.sample();
  const afterSeconds = afterGrandchild.cpuUtilization * (afterGrandchild.windowMs / 1000) * cores;
  t.true(afterSeconds >= 0 && afterSeconds < 0.1, `${afterSeconds.toFixed(3)} s over ${afterGrandchild.windowMs} ms after the grandchild exited`);

  await child.end();
  const err = await t.throwsAsync(sampler.sample(), { instanceOf: AgentError });
  t.is(err?.code, 'AGENT_SCOPE_GONE');
});

test('process scope capacity defaults memory to the host MemTotal; bad declarations are config errors', async (t) => {
  const sampler = await createSampler({ scope: { kind: 'process', pid: 4637, cores: 0.5, memoryBytes: null }, procRoot: fixtureProc, sysRoot: '/nonexistent', services: [] });
  t.teardown(() => sampler.close());
  const memTotal = Number(/^MemTotal:\s+(\d+) kB$/m.exec(fixtureText('proc/meminfo'))?.[1]) * 1024;
  t.deepEqual(sampler.capacity, { cores: 0.5, memoryBytes: memTotal });
  const r = await sampler.sample();
  t.is(r.memUtilization, TREE.reduce((sum, pid) => sum + rssKb(pid) * 1024, 0) / memTotal);
  t.true(Math.abs((r.cpuStep * r.windowMs * 0.5) / 10 - 1) <= 0.5 / (r.windowMs - 0.5), `a clock tick is ${r.cpuStep} of 0.5 core over ${r.windowMs} ms`);
  for (const scope of [
    { kind: 'process', pid: 4637, cores: 0, memoryBytes: null },
    { kind: 'process', pid: -1, cores: 1, memoryBytes: null },
    { kind: 'process', pid: 4637, cores: 1, memoryBytes: 0 },
  ] as const) {
    const err = await t.throwsAsync(createSampler({ scope, procRoot: fixtureProc, sysRoot: '/nonexistent', services: [] }), { instanceOf: AgentError });
    t.is(err?.code, 'AGENT_CONFIG_INVALID');
  }
});
