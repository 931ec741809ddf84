/**
 * npm run bench:queue-model: a discrete-event model of bench:balance's
 * scenario (f), to tell what limits the `queue` strategy there without the
 * noise of a shared machine. Pools of 2, 4 and 8 workers hold each request
 * for 50 ms; Poisson arrivals at 0.5× of their capacity; over the window
 * (15–60 s × --scale) the dependency of b3, then b2, then b1 is 3× slower for
 * a third each. Each request is one connection, picked by the fast path's own
 * schedulers (kernel-bridge) on the connections in flight.
 *
 * The backends report as balance-pool-backend.ts does: every 100 ms their
 * requests in flight and the mean time a request held a worker over the last
 * completed second; each agent samples every `interval` at its own phase. On
 * each sample the poller's pipeline is reproduced in short: queue's score
 * (poller/src/policy/strategy-queue.ts), EWMA with the half-life (falling
 * scores with the shorter of 250 ms and it), scaled so the best maps to 100,
 * at least 1, 5 % deadband. Variants change one thing each: the score, the
 * half-life, the sampling interval, the scheduler, or the latency input's
 * freshness (`fresh`: the dependency's latency now, i.e. an
 * application reporting over a very short window); `oracle` sets the true
 * capacities every second, the best any weights can do.
 *
 * A model, not a measurement: no CPU, network or process scheduling. Prints
 * the median over --seeds runs of the window's p99 and each phase's.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_EARLY_APP_CHANGE, ReportGate, WATCHES_PER_INTERVAL } from '@loadfeed/agent';
import { pickSed, pickSwrrSed, pickWlc, type Scheduler, type SchedulerTarget } from '@loadfeed/kernel-bridge';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '41' }, scale: { type: 'string', default: '0.5' } } });
const seeds = Number(values.seeds);
if (!Number.isInteger(seeds) || seeds < 1) throw new Error(`--seeds: ${values.seeds} must be a positive integer`);
/** bench:balance's --scale: 1 is (f) at full length (15 s phases), 0.5 the half-length runs of docs/BENCHMARKS.md. */
const SCALE = Number(values.scale);
if (!(SCALE > 0 && SCALE <= 4)) throw new Error(`--scale: ${values.scale} must be in (0, 4]`);

const POOLS = [2, 4, 8];
const BASE_MS = 50;
const SLOW = 3;
const LOAD_RPS = 0.5 * POOLS.reduce((a, c) => a + (1000 * c) / BASE_MS, 0);
const RUN_MS = 60_000 * SCALE;
const WINDOW: readonly [number, number] = [15_000 * SCALE, 60_000 * SCALE];
const PHASE_MS = (WINDOW[1] - WINDOW[0]) / 3;
/** The poller's falling half-life: the shorter of this and halfLife (schema.ts, DEFAULT_HALF_LIFE_DOWN_MS). */
const HALF_LIFE_DOWN_MS = 250;
/** Which backend is slow in each third of the window: b3, b2, b1. */
const SLOW_ORDER = [2, 1, 0];
const PUSH_MS = 100;
const DEADBAND = 0.05;

interface Variant {
  readonly scheduler: Scheduler;
  /** Weights: fixed equal, the true capacities each second, or from the agents' samples. */
  readonly weights: 'equal' | 'oracle' | 'sampled';
  /** The score's rate for `c` workers at latency `latencyS` (queue: c / latency). */
  readonly rate?: (c: number, latencyS: number) => number;
  readonly halfLifeMs?: number;
  readonly intervalMs?: number;
  /** The share a server keeps for its requests in flight `q` with `c` workers. */
  readonly free?: (q: number, c: number) => number;
  readonly freshLatency?: boolean;
  /** Agents watch four times per interval and report a marked move of in_flight or latency_seconds at once (the agent's own ReportGate). */
  readonly earlyApp?: boolean;
}

const queueNow = (q: number, c: number): number => Math.min(1, c / (q + 1));
const VARIANTS: Readonly<Record<string, Variant>> = {
  'least-connection (wlc, equal weights)': { scheduler: pickWlc, weights: 'equal' },
  'queue, half-life 2s': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 2000, free: queueNow },
  'queue, half-life 500ms (the default)': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 500, free: queueNow },
  'queue without its in-flight term, 500ms': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 500, free: () => 1 },
  'queue, rate / (in flight + 1) (SED), 500ms': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 500, free: (q) => 1 / (q + 1) },
  'queue, 500ms, samples every 250ms': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 500, intervalMs: 250, free: queueNow },
  'queue, 500ms, early reports on app moves': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 500, free: queueNow, earlyApp: true },
  'queue, 500ms, early reports on app moves, fresh latency': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 500, free: queueNow, earlyApp: true, freshLatency: true },
  'queue, 500ms, in-flight term squared': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 500, free: (q, c) => queueNow(q, c) ** 2 },
  'queue, 500ms, weights by concurrency alone': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 500, free: queueNow, rate: (c) => c },
  'queue, 500ms, scheduler wlc': { scheduler: pickWlc, weights: 'sampled', halfLifeMs: 500, free: queueNow },
  'queue, 500ms, scheduler sed': { scheduler: pickSed, weights: 'sampled', halfLifeMs: 500, free: queueNow },
  'queue, 2s, fresh latency': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 2000, free: queueNow, freshLatency: true },
  'queue, 500ms, fresh latency': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 500, free: queueNow, freshLatency: true },
  'queue, 0s, fresh latency, samples every 250ms': { scheduler: pickSwrrSed, weights: 'sampled', halfLifeMs: 0, intervalMs: 250, free: queueNow, freshLatency: true },
  'oracle capacities (swrr-sed)': { scheduler: pickSwrrSed, weights: 'oracle' },
};

function delayMs(backend: number, at: number): number {
  if (at < WINDOW[0] || at >= WINDOW[1]) return BASE_MS;
  return SLOW_ORDER[Math.floor((at - WINDOW[0]) / PHASE_MS)] === backend ? SLOW * BASE_MS : BASE_MS;
}

/** mulberry32: a seeded generator, so every variant sees the same arrivals for a seed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Event {
  readonly at: number;
  readonly run: () => void;
}

/** A binary min-heap of events by time. */
class Agenda {
  private readonly heap: Event[] = [];
  add(at: number, run: () => void): void {
    const h = this.heap;
    h.push({ at, run });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if ((h[p] as Event).at <= (h[i] as Event).at) break;
      [h[p], h[i]] = [h[i] as Event, h[p] as Event];
      i = p;
    }
  }
  next(): Event | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        let m = i;
        if (l < h.length && (h[l] as Event).at < (h[m] as Event).at) m = l;
        if (l + 1 < h.length && (h[l + 1] as Event).at < (h[m] as Event).at) m = l + 1;
        if (m === i) break;
        [h[m], h[i]] = [h[i] as Event, h[m] as Event];
        i = m;
      }
    }
    return top;
  }
}

interface Backend extends SchedulerTarget {
  readonly id: number;
  readonly workers: number;
  weight: number;
  active: number;
  busy: number;
  readonly waiting: number[];
  /** Completions and summed worker time in the current and the last completed second. */
  second: { n: number; heldMs: number };
  last: { n: number; heldMs: number };
  pushed: { inFlight: number; latencyS: number } | null;
  smoothed: number | null;
  smoothedAt: number;
}

/** One run: the latency of every request that arrived in the window, by phase. */
function simulate(v: Variant, seed: number): number[][] {
  const rand = random(seed);
  const agenda = new Agenda();
  const phases: number[][] = [[], [], []];
  const backends: Backend[] = POOLS.map((workers, id) => ({
    id, workers, weight: 100, active: 0, busy: 0, waiting: [], maxConnections: 0, downUntil: 0, current: 0, latency: 0, latencyAt: 0,
    second: { n: 0, heldMs: 0 }, last: { n: 0, heldMs: 0 }, pushed: null, smoothed: null, smoothedAt: 0,
  }));
  const serve = (b: Backend, arrived: number, now: number): void => {
    b.busy += 1;
    const held = delayMs(b.id, now);
    agenda.add(now + held, () => {
      const done = now + held;
      b.busy -= 1;
      b.active -= 1;
      b.second.n += 1;
      b.second.heldMs += held;
      if (arrived >= WINDOW[0] && arrived < WINDOW[1]) phases[Math.floor((arrived - WINDOW[0]) / PHASE_MS)]?.push(done - arrived);
      const next = b.waiting.shift();
      if (next !== undefined) serve(b, next, done);
    });
  };
  for (let at = -Math.log(1 - rand()) * (1000 / LOAD_RPS); at < RUN_MS; at += -Math.log(1 - rand()) * (1000 / LOAD_RPS)) {
    const arrived = at;
    agenda.add(arrived, () => {
      const b = v.scheduler(backends, arrived);
      if (b === undefined) throw new Error('no backend eligible');
      b.active += 1;
      if (b.busy < b.workers) serve(b, arrived, arrived);
      else b.waiting.push(arrived);
    });
  }
  for (let at = 1000; at < RUN_MS; at += 1000) {
    const now = at;
    agenda.add(now, () => {
      for (const b of backends) {
        b.last = b.second;
        b.second = { n: 0, heldMs: 0 };
        if (v.weights === 'oracle') b.weight = Math.round((100 * b.workers) / delayMs(b.id, now) / Math.max(...backends.map((x) => x.workers / delayMs(x.id, now))));
      }
    });
  }
  for (let at = PUSH_MS; at < RUN_MS; at += PUSH_MS) {
    const now = at;
    agenda.add(now, () => {
      for (const b of backends) {
        const heldMs = v.freshLatency === true ? delayMs(b.id, now) : b.last.n > 0 ? b.last.heldMs / b.last.n : BASE_MS;
        b.pushed = { inFlight: b.busy + b.waiting.length, latencyS: heldMs / 1000 };
      }
    });
  }
  if (v.weights === 'sampled') {
    const interval = v.intervalMs ?? 1000;
    const samples = new Map<Backend, { inFlight: number; latencyS: number }>();
    const watch = v.earlyApp === true ? interval / WATCHES_PER_INTERVAL : interval;
    for (const b of backends) {
      const gate = new ReportGate(0, v.earlyApp === true ? DEFAULT_EARLY_APP_CHANGE : 0);
      for (let at = watch + rand() * interval; at < RUN_MS; at += watch) {
        const now = at;
        agenda.add(now, () => {
          const p = b.pushed;
          const app = p === null ? null : { applicationUtilization: null, rpsFractional: null, eps: null, namedMetrics: { in_flight: p.inFlight, latency_seconds: p.latencyS } };
          if (gate.offer({ cpuUtilization: 0, cpuThrottled: null, windowMs: watch, cpuStep: 0 }, interval, app) === null) return;
          if (p !== null) samples.set(b, p);
          reweigh(v, backends, samples, now);
        });
      }
    }
  }
  for (let e = agenda.next(); e !== undefined; e = agenda.next()) e.run();
  return phases;
}

function reweigh(v: Variant, backends: Backend[], samples: ReadonlyMap<Backend, { inFlight: number; latencyS: number }>, now: number): void {
  for (const [b, s] of samples) {
    const score = (v.rate ?? ((c, l) => c / l))(b.workers, s.latencyS) * (v.free ?? queueNow)(s.inFlight, b.workers);
    const halfLife = b.smoothed !== null && score < b.smoothed ? Math.min(HALF_LIFE_DOWN_MS, v.halfLifeMs ?? 0) : (v.halfLifeMs ?? 0);
    b.smoothed = b.smoothed === null || halfLife <= 0 ? score : b.smoothed + (1 - 2 ** (-(now - b.smoothedAt) / halfLife)) * (score - b.smoothed);
    b.smoothedAt = now;
  }
  const best = Math.max(...backends.map((b) => b.smoothed ?? 0));
  if (best <= 0) return;
  for (const b of backends) {
    if (b.smoothed === null) continue;
    const w = Math.max(1, Math.min(100, Math.round((100 * b.smoothed) / best)));
    if (Math.abs(w - b.weight) / b.weight >= DEADBAND) b.weight = w;
  }
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

const median = (xs: readonly number[]): number => percentile(xs, 0.5);

process.stdout.write(`queue model of bench:balance (f) at --scale ${SCALE} (window ${WINDOW[0] / 1000}-${WINDOW[1] / 1000} s): ${LOAD_RPS} requests/s, pools ${POOLS.join(':')} × ${BASE_MS} ms, ${seeds} seeds (medians)\n`);
process.stdout.write(`${'variant'.padEnd(48)} p99 ms  b3 slow  b2 slow  b1 slow\n`);
for (const [name, v] of Object.entries(VARIANTS)) {
  const runs = Array.from({ length: seeds }, (_, i) => simulate(v, 1000 + i));
  const whole = median(runs.map((phases) => percentile(phases.flat(), 0.99)));
  const perPhase = [0, 1, 2].map((k) => median(runs.map((phases) => percentile(phases[k] ?? [], 0.99))));
  process.stdout.write(`${name.padEnd(48)} ${whole.toFixed(0).padStart(6)}  ${perPhase.map((x) => x.toFixed(0).padStart(7)).join('  ')}\n`);
}
