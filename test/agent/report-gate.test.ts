import test from 'ava';
import { mergeWindows, ReportGate, type CpuWindow } from '@loadfeed/agent';

const reading = (cpu: number, windowMs: number, more: Partial<CpuWindow> = {}): CpuWindow => ({
  cpuUtilization: cpu,
  cpuThrottled: null,
  windowMs,
  cpuStep: 0,
  ...more,
});

test('a steady load is reported once per interval, the watch windows merged over the whole interval', (t) => {
  const gate = new ReportGate(0.25);
  t.is(gate.watchMs(1000, 100), 250);
  const sent = [0.5, 0.6, 0.4, 0.5, 0.55, 0.45, 0.5, 0.5].map((cpu, i) => gate.offer(reading(cpu, 250, { cpuThrottled: i / 10 }), 1000));
  t.deepEqual(sent.map((r) => r === null), [true, true, true, false, true, true, true, false]);
  t.is(sent[3]?.windowMs, 1000);
  t.is(sent[3]?.cpuUtilization, 0.5);
  t.is(sent[3]?.cpuThrottled, 0.15);
});

test('a marked change since the last report is reported at once, alone, and the rest of its interval window by window; then merging resumes', (t) => {
  const gate = new ReportGate(0.25);
  for (let i = 0; i < 4; i++) gate.offer(reading(0.5, 250), 1000); // first report: cpu 0.5
  t.is(gate.offer(reading(0.6, 250), 1000), null); // 0.1: not marked
  const early = gate.offer(reading(0.95, 250), 1000);
  t.is(early?.cpuUtilization, 0.95);
  t.is(early?.windowMs, 250);
  // The next three windows follow one by one, whatever they read.
  const followUps = [1, 0.9, 0.98].map((cpu) => gate.offer(reading(cpu, 250), 1000));
  t.deepEqual(followUps.map((r) => [r?.cpuUtilization, r?.windowMs]), [[1, 250], [0.9, 250], [0.98, 250]]);
  // Then one report per interval again; staying high is no change, the load leaving is one.
  t.deepEqual([1, 1, 1].map((cpu) => gate.offer(reading(cpu, 250), 1000)), [null, null, null]);
  const merged = gate.offer(reading(1, 250), 1000);
  t.is(merged?.windowMs, 1000);
  t.is(gate.offer(reading(0.45, 250), 1000)?.cpuUtilization, 0.45);
});

test('without early reports every reading is one interval and is reported as it is', (t) => {
  const gate = new ReportGate(0);
  t.is(gate.watchMs(1000, 100), 1000);
  const r = reading(0.2, 1000);
  t.is(gate.offer(r, 1000), r);
  t.is(gate.offer(reading(0.9, 1000), 1000)?.cpuUtilization, 0.9);
});

test('the watch window never goes below the agent\'s shortest interval', (t) => {
  t.is(new ReportGate(0.25).watchMs(200, 100), 100);
});

test('mergeWindows: CPU averaged by window, throttling over the windows that have it', (t) => {
  const merged = mergeWindows([reading(0.2, 100, { cpuThrottled: null }), reading(0.8, 300, { cpuThrottled: 0.1 }), reading(0.5, 100, { cpuThrottled: 0.6 })]);
  t.is(merged.windowMs, 500);
  t.is(merged.cpuUtilization, 0.62);
  t.is(merged.cpuThrottled, 0.225);
  t.throws(() => mergeWindows([]), { message: /no window/ });
});

test('a move within the CPU accounting step of the window is not trouble: a small process read in clock ticks reports per interval', (t) => {
  const gate = new ReportGate(0.25);
  // 0.1 core in process scope, 250 ms windows: one 10 ms tick is 0.4 of its capacity.
  const coarse = (cpu: number): CpuWindow => reading(cpu, 250, { cpuStep: 10 / (250 * 0.1) });
  for (const cpu of [0.4, 0.4, 0.4, 0.4]) gate.offer(coarse(cpu), 1000); // first report: cpu 0.4
  t.deepEqual([0, 0.8, 0].map((cpu) => gate.offer(coarse(cpu), 1000)), [null, null, null], 'one tick more or less is not a marked change');
  const merged = gate.offer(coarse(0.4), 1000);
  t.is(merged?.windowMs, 1000);
  t.is(merged?.cpuStep, 0.1, 'the same tick over the whole interval');
  // A fine-grained scope (cgroup usage in µs) with the same move is reported at once.
  const fine = new ReportGate(0.25);
  for (let i = 0; i < 4; i++) fine.offer(reading(0.4, 250, { cpuStep: 1e-5 }), 1000);
  t.is(fine.offer(reading(0.8, 250, { cpuStep: 1e-5 }), 1000)?.cpuUtilization, 0.8);
});
