import test from 'ava';
import { AgentError, cpuDelta, parseProcStat, readProcStat, type CpuTimes } from '@loadfeed/agent';
import { fixtureProc, fixtureText } from './fixture-tree.js';

test('parseProcStat reads the real capture: aggregate line, online CPUs, procs gauges', (t) => {
  const stat = parseProcStat(fixtureText('proc/stat'));
  // cpu  8296 0 4685 127733 204 0 270 0 0 0
  t.deepEqual(stat.cpu, { user: 8296, nice: 0, system: 4685, idle: 127733, iowait: 204, irq: 0, softirq: 270, steal: 0, guest: 0, guestNice: 0 });
  t.is(stat.onlineCpus, 2);
  t.is(stat.procsRunning, 2);
  t.is(stat.procsBlocked, 0);
});

test('readProcStat reads <procRoot>/stat', async (t) => {
  t.is((await readProcStat(fixtureProc)).onlineCpus, 2);
});

test('parseProcStat accepts an old kernel line with only user nice system idle', (t) => {
  const stat = parseProcStat('cpu  10 1 5 100\ncpu0 10 1 5 100\n');
  t.is(stat.cpu.idle, 100);
  t.is(stat.cpu.steal, 0);
  t.is(stat.procsRunning, null);
});

const malformed: readonly { name: string; text: string; message: RegExp }[] = [
  { name: 'empty', text: '', message: /\/proc\/stat: empty file/ },
  { name: 'no aggregate line', text: 'cpu0 1 2 3 4\n', message: /no aggregate "cpu" line/ },
  { name: 'no cpuN lines', text: 'cpu  1 2 3 4\n', message: /no "cpuN" lines/ },
  { name: 'truncated cpu line', text: 'cpu  1 2 3\ncpu0 1 2 3 4\n', message: /truncated line "cpu {2}1 2 3"/ },
  { name: 'non-numeric counter', text: 'cpu  1 2 x3 4\ncpu0 1 2 3 4\n', message: /bad value "x3" in line "cpu {2}1 2 x3 4"/ },
  { name: 'non-numeric procs_running', text: 'cpu  1 2 3 4\ncpu0 1 2 3 4\nprocs_running two\n', message: /bad value "two"/ },
  { name: 'truncated procs_blocked', text: 'cpu  1 2 3 4\ncpu0 1 2 3 4\nprocs_blocked\n', message: /truncated line "procs_blocked"/ },
];
for (const { name, text, message } of malformed) {
  test(`parseProcStat rejects malformed input: ${name}`, (t) => {
    const err = t.throws(() => parseProcStat(text), { instanceOf: AgentError, message });
    t.is(err?.code, 'AGENT_PROC_PARSE');
  });
}

const times = (over: Partial<CpuTimes>): CpuTimes => ({
  user: 1000, nice: 0, system: 500, idle: 8000, iowait: 100, irq: 0, softirq: 50, steal: 0, guest: 0, guestNice: 0, ...over,
});

test('cpuDelta: busy share of the window; iowait is idle, steal and softirq are busy, guest is not added again', (t) => {
  const prev = times({});
  // 1 s on 2 CPUs = 200 ticks: user +60 (of which guest +40), softirq +10, steal +10, idle +100, iowait +20.
  const cur = times({ user: 1060, guest: 40, softirq: 60, steal: 10, idle: 8100, iowait: 120 });
  t.is(cpuDelta(prev, cur, 1000, 2), 80 / 200);
});

const untrusted: readonly { name: string; cur: Partial<CpuTimes>; windowMs: number }[] = [
  { name: 'a counter went backwards (hotplug, VM restore)', cur: { user: 1100, idle: 7990 }, windowMs: 1000 },
  { name: 'iowait went backwards', cur: { user: 1100, iowait: 99 }, windowMs: 1000 },
  { name: 'the total jumped far beyond the window', cur: { idle: 8000 + 2 * 100 * 10 }, windowMs: 1000 },
  { name: 'no tick elapsed', cur: {}, windowMs: 5 },
];
for (const { name, cur, windowMs } of untrusted) {
  test(`cpuDelta returns null when ${name}`, (t) => {
    t.is(cpuDelta(times({}), times(cur), windowMs, 2), null);
  });
}

test('cpuDelta allows tick jitter: 1.5× the window is still a measurement', (t) => {
  t.is(cpuDelta(times({}), times({ idle: 8000 + 300 }), 1000, 2), 0);
});
