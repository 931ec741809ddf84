import test from 'ava';
import { AgentError, cpuDelta, parseProcStat, readProcStat, scanProcStatCpu, type CpuTimes } from '@loadfeed/agent';
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

const bytesOf = (text: string): Buffer => Buffer.from(text);
const scanned = (text: string) => scanProcStatCpu(bytesOf(text), Buffer.byteLength(text));

test('scanProcStatCpu reads the same CPU times and online CPUs from the bytes as parseProcStat from the text (real capture)', (t) => {
  const text = fixtureText('proc/stat');
  const { cpu, onlineCpus } = parseProcStat(text);
  t.deepEqual(scanned(text), { cpu, onlineCpus });
  // A buffer longer than the file (the agent's reused read buffer): only `length` bytes count.
  const padded = Buffer.alloc(8192, 0x39);
  padded.write(text);
  t.deepEqual(scanProcStatCpu(padded, Buffer.byteLength(text)), { cpu, onlineCpus });
});

test('scanProcStatCpu: an older kernel\'s 4 to 9 fields, and fields a newer kernel adds, as parseProcStat reads them', (t) => {
  for (const cpuLine of ['cpu  1 2 3 4', 'cpu  1 2 3 4 5 6 7', 'cpu  1 2 3 4 5 6 7 8 9 10 11 12']) {
    const text = `${cpuLine}\ncpu0 1 2 3 4\ncpu1 1 2 3 4\nintr 5 6\n`;
    const { cpu, onlineCpus } = parseProcStat(text);
    t.deepEqual(scanned(text), { cpu, onlineCpus }, cpuLine);
  }
});

test('scanProcStatCpu leaves what is not the kernel\'s plain form to parseProcStat (null), which names the fault', (t) => {
  const cases: readonly [string, RegExp | null][] = [
    ['', /empty file/],
    ['intr 1\ncpu  1 2 3 4\ncpu0 1 2 3 4\n', null], // aggregate line not first: the text parser still finds it
    ['cpu  1 x 3 4\ncpu0 1 2 3 4\n', /bad value "x"/],
    ['cpu  1 -2 3 4\ncpu0 1 2 3 4\n', null], // a sign: the text parser's integer rule decides
    ['cpu  1 2 3\ncpu0 1 2 3\n', /truncated line/],
    ['cpu  1 2 3 4\nintr 1\n', /no "cpuN" lines/],
    ['cpu0 1 2 3 4\n', /no aggregate "cpu" line/],
  ];
  for (const [text, error] of cases) {
    t.is(scanned(text), null, JSON.stringify(text));
    if (error === null) t.notThrows(() => parseProcStat(text));
    else t.throws(() => parseProcStat(text), { instanceOf: AgentError, message: error });
  }
});

test('scanProcStatCpu on mangled captures: the bytes read as the text does, or null (fuzz, fixed seed)', (t) => {
  const text = fixtureText('proc/stat');
  let seed = 21;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const alphabet = ' \n0123456789cpux-';
  let agreed = 0;
  for (let i = 0; i < 2000; i++) {
    const chars = [...text.slice(0, 200)];
    for (let k = 0; k < 3; k++) chars[Math.floor(random() * chars.length)] = alphabet[Math.floor(random() * alphabet.length)] ?? ' ';
    const mangled = chars.join('') + text.slice(200);
    const fast = scanned(mangled);
    if (fast === null) continue;
    const { cpu, onlineCpus } = parseProcStat(mangled);
    t.deepEqual(fast, { cpu, onlineCpus }, JSON.stringify(mangled.slice(0, 200)));
    agreed++;
  }
  t.true(agreed > 100, `${agreed} of 2000 mangled captures read by the byte scanner`);
});
