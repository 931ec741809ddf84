// Properties of the whole evaluation pipeline for any input (fast-check).
import test from 'ava';
import fc from 'fast-check';
import { harness } from '../helpers/policy-harness.js';

const CAPACITY = '{ name: capacity }';
const STRATEGIES = ['{ name: headroom }', '{ name: pid }', '{ name: connections }', '{ name: orca, blackoutPeriod: 0s }', CAPACITY];
/**
 * capacity scores nothing (every server gets the mean) until it has learned a
 * server's cost from a few seconds of samples: it is fed this many rounds a
 * second apart, so the properties hold of its learned scores too.
 */
const ROUNDS: Record<string, number> = { [CAPACITY]: 4 };

const metrics = fc.record({
  cores: fc.double({ min: 0.1, max: 256, noNaN: true }),
  cpu: fc.double({ min: 0, max: 1, noNaN: true }),
  psi: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
  conns: fc.integer({ min: 0, max: 100_000 }),
  accepts: fc.double({ min: 0, max: 1e5, noNaN: true }),
});
type M = typeof metrics extends fc.Arbitrary<infer T> ? T : never;
/** fc.double draws most values near 0; a fraction drawn evenly from [min, 1] in thousandths. */
const fraction = (min: number): fc.Arbitrary<number> => fc.integer({ min: Math.round(min * 1000), max: 1000 }).map((x) => x / 1000);
/** Servers busy enough for capacity to learn their cost (CAPACITY_MIN_UTILIZATION, some requests): an idle one gets the mean. */
const busyMetrics: fc.Arbitrary<M> = fc.record({
  cores: fc.double({ min: 0.1, max: 256, noNaN: true }),
  cpu: fraction(0.1),
  psi: fc.option(fraction(0), { nil: null }),
  conns: fc.integer({ min: 0, max: 100_000 }),
  accepts: fc.integer({ min: 1, max: 1_000_000 }).map((x) => x / 10),
});

const wrappers = fc.record({
  min: fc.integer({ min: 0, max: 10 }),
  span: fc.integer({ min: 1, max: 1000 }),
  shareCap: fc.option(fc.double({ min: 0.2, max: 1, noNaN: true }), { nil: null }),
  deadband: fc.double({ min: 0, max: 0.5, noNaN: true }),
  quantum: fc.integer({ min: 1, max: 5 }),
});

function policyFor(strategy: string, w: { min: number; span: number; shareCap: number | null; deadband: number; quantum: number }, n: number) {
  return harness(`    strategy: ${strategy}
    smoothing: { halfLife: 0s }
    slowStart: null
    deadband: ${w.deadband}
    shareCap: ${w.shareCap ?? 'null'}
    weights: { min: ${w.min}, max: ${w.min + w.span}, quantum: ${w.quantum} }
    servers:
${Array.from({ length: n }, (_, i) => `      - { node: n${i}, address: "127.0.0.1:${i + 1}" }`).join('\n')}
`);
}

function feed(h: ReturnType<typeof harness>, ms: readonly M[]): void {
  ms.forEach((m, i) => {
    const id = `n${i}`;
    if (!h.table.get(id)) h.connect(id, m.cores, { services: [{ name: 'web', port: i + 1 }] });
    h.report(id, { cpuUtilization: m.cpu, psiCpuSome: m.psi, tcpAcceptsPerSecond: m.accepts, services: [{ name: 'web', established: m.conns }] });
  });
}

/** The same metrics as often as the strategy needs to have learned from them (ROUNDS), a second apart, each round evaluated (strategies learn when asked). */
function feedSteady(h: ReturnType<typeof harness>, strategy: string, ms: readonly M[]): void {
  for (let k = 0; k < (ROUNDS[strategy] ?? 1); k++) {
    if (k > 0) {
      h.evaluate();
      h.advance(1000);
    }
    feed(h, ms);
  }
}

test('weights are finite integers within [min, max] for any metrics, strategy and wrappers', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...STRATEGIES), wrappers, fc.array(fc.array(metrics, { minLength: 5, maxLength: 5 }), { minLength: 1, maxLength: 4 }), (strategy, w, rounds) => {
      const h = policyFor(strategy, w, 5);
      for (const round of rounds) {
        feed(h, round);
        h.advance(1000);
        for (const x of h.weights()) {
          if (!Number.isInteger(x) || x < w.min || x > w.min + w.span) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('equal inputs give equal weights', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...STRATEGIES), wrappers, metrics, fc.integer({ min: 2, max: 6 }), (strategy, w, m, n) => {
      const h = policyFor(strategy, w, n);
      feedSteady(h, strategy, Array.from({ length: n }, () => m));
      const ws = h.weights();
      return ws.every((x) => x === ws[0]);
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('capacity scores every server from its own samples, whatever they hold: no NaN or unusable score, even after samples with no request', (t) => {
  const sample = fc.record({
    cpu: fc.double({ min: 0, max: 1.4, noNaN: true }),
    accepts: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1e4, noNaN: true })),
    windowMs: fc.constantFrom(250, 1000),
  });
  fc.assert(
    fc.property(fc.array(fc.array(sample, { minLength: 3, maxLength: 3 }), { minLength: 2, maxLength: 24 }), (rounds) => {
      const h = policyFor(CAPACITY, { min: 0, span: 100, shareCap: null, deadband: 0, quantum: 1 }, 3);
      for (const round of rounds) {
        h.advance(Math.max(...round.map((s) => s.windowMs)));
        round.forEach((s, i) => {
          if (!h.table.get(`n${i}`)) h.connect(`n${i}`, 1);
          h.report(`n${i}`, { cpuUtilization: s.cpu, tcpAcceptsPerSecond: s.accepts, windowMs: s.windowMs });
        });
        if (h.evaluate().some((d) => /NaN|unusable/.test(d.reason))) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('more load never gives more weight', (t) => {
  // From the same state, one server reporting more CPU (or more connections
  // for the connections strategy) must not get a larger weight.
  const loadOf: Record<string, (m: M, more: number) => M> = {
    '{ name: headroom }': (m, more) => ({ ...m, cpu: Math.min(1, m.cpu + more), psi: m.psi === null ? null : Math.min(1, m.psi + more) }),
    '{ name: pid }': (m, more) => ({ ...m, cpu: Math.min(1, m.cpu + more) }),
    '{ name: connections }': (m, more) => ({ ...m, conns: m.conns + Math.ceil(more * 1000) }),
    '{ name: orca, blackoutPeriod: 0s }': (m, more) => ({ ...m, cpu: Math.min(1, m.cpu + more) }),
    // At the same cost per request (learned from CPU): more CPU at the same
    // rate is a costlier request, and past the target a costlier request
    // rightly counts the excess as fewer requests too many.
    [CAPACITY]: (m, more) => ({ ...m, psi: Math.min(1, (m.psi ?? 0) + more) }),
  };
  // capacity gives a server whose cost it has not learned (too idle to learn
  // from) the mean: it is monotonic among servers busy enough to learn.
  const cases = fc.constantFrom(...STRATEGIES).chain((strategy) => fc.tuple(fc.constant(strategy), fc.array(strategy === CAPACITY ? busyMetrics : metrics, { minLength: 3, maxLength: 3 })));
  fc.assert(
    fc.property(cases, fc.double({ min: 0, max: 1, noNaN: true }), ([strategy, ms], more) => {
      // A58 reads utilisation or qps of 0 as "no report", not as "idle":
      // orca is monotonic only among real reports.
      if (strategy.includes('orca')) fc.pre(ms.every((m) => m.cpu >= 1e-3 && m.accepts >= 1e-3));
      const neutral = { min: 0, span: 10_000, shareCap: null, deadband: 0, quantum: 1 };
      const base = policyFor(strategy, neutral, 3);
      feedSteady(base, strategy, ms);
      const loaded = policyFor(strategy, neutral, 3);
      feedSteady(loaded, strategy, [loadOf[strategy]?.(ms[0] as M, more) ?? (ms[0] as M), ms[1] as M, ms[2] as M]);
      // Compare shares: the scale is relative to the best server.
      const share = (w: number[]): number => (w[0] ?? 0) / Math.max(1, w.reduce((a, b) => a + b, 0));
      return share(loaded.weights()) <= share(base.weights()) + 1e-3;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('the share cap holds whenever it can be met', (t) => {
  fc.assert(
    fc.property(fc.array(metrics, { minLength: 2, maxLength: 8 }), fc.double({ min: 0.15, max: 0.9, noNaN: true }), (ms, cap) => {
      fc.pre(ms.length * cap >= 1);
      const h = policyFor('{ name: headroom }', { min: 1, span: 9999, shareCap: cap, deadband: 0, quantum: 1 }, ms.length);
      feed(h, ms);
      const w = h.weights();
      const total = w.reduce((a, b) => a + b, 0);
      // Rounding to integers may add at most half a unit per server.
      return w.every((x) => x <= cap * total + ms.length);
    }),
    { numRuns: 500 },
  );
  t.pass();
});
