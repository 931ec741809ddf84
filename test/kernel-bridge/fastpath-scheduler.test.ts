// The fast path's schedulers as pure functions: no sockets, exact sequences.
import test from 'ava';
import { pickSwrr, pickWlc, type Scheduler, type SchedulerTarget } from '@loadfeed/kernel-bridge';

const NOW = 1_000;

interface Target extends SchedulerTarget {
  readonly name: string;
  weight: number;
  active: number;
  downUntil: number;
}

function targets(spec: Record<string, number | { weight: number; active?: number; down?: boolean }>): Target[] {
  return Object.entries(spec).map(([name, s]) => {
    const { weight, active = 0, down = false } = typeof s === 'number' ? { weight: s } : s;
    return { name, weight, active, downUntil: down ? NOW + 1 : 0, current: 0 };
  });
}

function sequence(pick: Scheduler, ts: readonly Target[], n: number): string[] {
  return Array.from({ length: n }, () => pick(ts, NOW)?.name ?? '-');
}

function shares(pick: Scheduler, ts: readonly Target[], n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of sequence(pick, ts, n)) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

test('swrr: weights 5/1/1 give the classic smooth order a a b a c a a', (t) => {
  const ts = targets({ a: 5, b: 1, c: 1 });
  t.deepEqual(sequence(pickSwrr, ts, 14), [...'aabacaa', ...'aabacaa']);
});

test('swrr: long-run shares are exactly proportional to weights', (t) => {
  t.deepEqual(shares(pickSwrr, targets({ a: 7, b: 3, c: 1 }), 1_100), { a: 700, b: 300, c: 100 });
});

test('swrr: skips weight 0 and down targets; none eligible gives undefined', (t) => {
  t.deepEqual(shares(pickSwrr, targets({ a: 2, zero: 0, down: { weight: 5, down: true }, b: 1 }), 300), {
    a: 200,
    b: 100,
  });
  t.is(pickSwrr(targets({ zero: 0, down: { weight: 1, down: true } }), NOW), undefined);
  t.is(pickSwrr([], NOW), undefined);
});

test('swrr: a target is up again once its down time has passed', (t) => {
  const ts = targets({ a: { weight: 1, down: true } });
  t.is(pickSwrr(ts, NOW), undefined);
  t.is(pickSwrr(ts, NOW + 1)?.name, 'a');
});

test('swrr: a live weight change takes effect at the next picks', (t) => {
  const ts = targets({ a: 1, b: 1 });
  sequence(pickSwrr, ts, 10);
  ts[1]!.weight = 3;
  t.deepEqual(shares(pickSwrr, ts, 400), { a: 100, b: 300 });
});

test('wlc: picks the least active/weight', (t) => {
  // a: 4/2 = 2, b: 3/1 = 3, c: 5/4 = 1.25 → c
  t.is(pickWlc(targets({ a: { weight: 2, active: 4 }, b: { weight: 1, active: 3 }, c: { weight: 4, active: 5 } }), NOW)?.name, 'c');
  // a: 3/3 = 1 beats b: 2/1 = 2 although b has fewer connections
  t.is(pickWlc(targets({ a: { weight: 3, active: 3 }, b: { weight: 1, active: 2 } }), NOW)?.name, 'a');
});

test('wlc: ignores weight 0 and down targets however idle they are', (t) => {
  const ts = targets({ zero: { weight: 0 }, down: { weight: 9, down: true }, busy: { weight: 1, active: 50 } });
  t.deepEqual(sequence(pickWlc, ts, 5), ['busy', 'busy', 'busy', 'busy', 'busy']);
  t.is(pickWlc(targets({ zero: 0, down: { weight: 1, down: true } }), NOW), undefined);
});

test('wlc: ties (all idle) are shared in proportion to weights, smoothly', (t) => {
  const ts = targets({ a: 3, b: 1 });
  // Nothing stays open: every pick is a tie, broken by smooth WRR.
  t.deepEqual(sequence(pickWlc, ts, 8), [...'aaba', ...'aaba']);
  t.deepEqual(shares(pickWlc, ts, 400), { a: 300, b: 100 });
});

test('wlc: equal weights and loads alternate instead of favouring the first', (t) => {
  t.deepEqual(sequence(pickWlc, targets({ a: 1, b: 1, c: 1 }), 6), ['a', 'b', 'c', 'a', 'b', 'c']);
});

test('wlc: connections that stay open end up spread by weight', (t) => {
  const ts = targets({ a: 5, b: 3, c: 2 });
  for (let i = 0; i < 1_000; i++) pickWlc(ts, NOW)!.active++;
  t.deepEqual(
    ts.map((x) => [x.name, x.active]),
    [
      ['a', 500],
      ['b', 300],
      ['c', 200],
    ],
  );
});

test('wlc: cross-multiplication stays exact at the top of the weight range', (t) => {
  const ts = targets({ a: { weight: 65_535, active: 1_000_000 }, b: { weight: 65_534, active: 999_999 } });
  // 1e6/65535 = 15.2590… vs 999999/65534 = 15.2592… → a
  t.is(pickWlc(ts, NOW)?.name, 'a');
});
