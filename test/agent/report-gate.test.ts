import test from 'ava';
import { mergeWindows, ReportGate, type AppReading, type CpuWindow } from '@loadfeed/agent';

const reading = (cpu: number, windowMs: number, more: Partial<CpuWindow> = {}): CpuWindow => ({
  cpuUtilization: cpu,
  cpuThrottled: null,
  windowMs,
  cpuStep: 0,
  ...more,
});

test('the first window is reported at once, and the rest of its interval window by window; then a steady load is reported once per interval, the windows merged over the whole interval', (t) => {
  const gate = new ReportGate(0.25);
  t.is(gate.watchMs(1000, 100), 250);
  const sent = [0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.4, 0.5, 0.55, 0.45, 0.5, 0.5].map((cpu, i) => gate.offer(reading(cpu, 250, { cpuThrottled: i / 10 }), 1000));
  t.deepEqual(sent.map((r) => r === null), [false, false, false, false, true, true, true, false, true, true, true, false]);
  t.is(sent[0]?.windowMs, 250);
  t.is(sent[7]?.windowMs, 1000);
  t.is(sent[7]?.cpuUtilization, 0.5);
  t.is(sent[7]?.cpuThrottled, 0.55);
});

test('with application metrics alone triggering early reports, the first window still goes at once; without early reports nothing changes', (t) => {
  t.is(new ReportGate(0, 0.25).offer(reading(0.5, 250), 1000)?.windowMs, 250);
  const off = new ReportGate(0);
  t.is(off.offer(reading(0.5, 1000), 1000)?.windowMs, 1000);
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

const app = (namedMetrics: Record<string, number>, rpsFractional: number | null = null): AppReading => ({
  applicationUtilization: null,
  rpsFractional,
  eps: null,
  namedMetrics,
});

/** A gate past its first interval (whose windows all go one by one) at a steady CPU, without application values yet. */
const started = (gate: ReportGate): ReportGate => {
  for (let i = 0; i < 4; i++) gate.offer(reading(0.1, 250), 1000);
  return gate;
};

/** Offers one interval of four 250 ms windows at a steady CPU with these application values; returns which were reported. */
const offerAll = (gate: ReportGate, values: readonly AppReading[]): boolean[] => values.map((a) => gate.offer(reading(0.1, 250), 1000, a) !== null);

test('an application metric that moved markedly since the last report is reported at once, CPU steady; then the rest of its interval, then merging', (t) => {
  const gate = started(new ReportGate(0.25, 0.25));
  const steady = app({ latency_seconds: 0.05, in_flight: 4 });
  t.deepEqual(offerAll(gate, [steady, steady, steady, steady]), [false, false, false, true], 'a steady application: one report per interval');
  t.deepEqual(offerAll(gate, [steady, app({ latency_seconds: 0.052, in_flight: 4 })]), [false, false], 'a 4 % move is not marked');
  const slow = app({ latency_seconds: 0.077, in_flight: 4 });
  const early = gate.offer(reading(0.1, 250), 1000, slow);
  t.is(early?.windowMs, 250, 'the slowdown, a 54 % move, goes alone and at once');
  t.deepEqual(offerAll(gate, [slow, slow, slow]), [true, true, true], 'the rest of its interval window by window');
  t.deepEqual(offerAll(gate, [slow, slow, slow, slow]), [false, false, false, true], 'then one per interval while it stays');
  const slower = app({ latency_seconds: 0.15, in_flight: 9 });
  t.deepEqual(offerAll(gate, [slower, slower]), [true, true], 'a further move is one');
  const queued = app({ latency_seconds: 0.15, in_flight: 20 });
  t.deepEqual(offerAll(gate, [queued]), [true], 'so is one during the windows after it, which then start again');
  t.deepEqual(offerAll(gate, [queued, queued, queued, queued]), [true, true, true, false]);
  t.deepEqual(offerAll(gate, [app({ latency_seconds: 0.05, in_flight: 9 })]), [true], 'recovering is a move too');
});

test('an application metric that jitters from window to window needs a move beyond its own jitter: a noisy count of requests in flight does not report every window', (t) => {
  const gate = started(new ReportGate(0.25, 0.25));
  // Requests in flight of a lightly loaded server, instant counts: they double and halve by chance.
  const noisy = [1, 3, 0, 2, 4, 1, 2, 0, 3, 1, 2, 4, 0, 1, 3, 2, 1, 0, 2, 3, 1, 4, 2, 0];
  const sent = offerAll(gate, noisy.map((n) => app({ in_flight: n })));
  t.deepEqual(sent, noisy.map((_, i) => i % 4 === 3), 'one report per interval');
  // A queue forming (in flight far beyond the jitter) is reported at once.
  t.deepEqual(offerAll(gate, [app({ in_flight: 30 })]), [true]);
});

test('fixed application fields count like named ones; a metric that appears is not a move; earlyAppChange 0 ignores the application', (t) => {
  const gate = started(new ReportGate(0.25, 0.25));
  const rps = (x: number, named: Record<string, number> = {}): AppReading => app(named, x);
  t.deepEqual(offerAll(gate, [rps(100), rps(101), rps(99), rps(100)]), [false, false, false, true]);
  t.deepEqual(offerAll(gate, [rps(100, { queue_depth: 50 }), rps(100, { queue_depth: 50 }), rps(100, { queue_depth: 50 })]), [false, false, false], 'a new metric is no move');
  t.deepEqual(offerAll(gate, [rps(40, { queue_depth: 50 })]), [true], 'rps falling by 60 % is one');

  const off = started(new ReportGate(0.25, 0));
  t.is(off.watchMs(1000, 100), 250, 'CPU early reports still watch');
  t.deepEqual(offerAll(off, [rps(100), rps(100), rps(100), rps(100), rps(10), rps(1000)]), [false, false, false, true, false, false]);
  const appOnly = started(new ReportGate(0, 0.25));
  t.is(appOnly.watchMs(1000, 100), 250, 'application early reports alone watch four times per interval');
  t.deepEqual([0.1, 0.1, 0.1, 0.1, 0.9].map((cpu) => appOnly.offer(reading(cpu, 250), 1000, rps(100)) !== null), [false, false, false, true, false], 'and CPU moves do not report');
});

test('requests in flight counted at random (Poisson, seeded) report about once per interval, however small the mean', (t) => {
  for (const mean of [0.8, 2, 4.5]) {
    let seed = 42;
    const uniform = (): number => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
    };
    const poisson = (): number => {
      let n = 0;
      for (let p = uniform(); p > Math.exp(-mean); p *= uniform()) n++;
      return n;
    };
    const gate = new ReportGate(0.25, 0.25);
    const intervals = 500;
    const sent = offerAll(gate, Array.from({ length: 4 * intervals }, () => app({ in_flight: poisson() }))).filter(Boolean).length;
    t.true(sent <= 1.1 * intervals, `mean ${mean}: ${sent} samples in ${intervals} intervals`);
  }
});
