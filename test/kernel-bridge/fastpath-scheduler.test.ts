// The fast path's schedulers as pure functions: no sockets, exact sequences.
import test from 'ava';
import {
  FASTPATH_SCHEDULERS,
  LATENCY_DECAY_MS,
  LONG_CONNECTION_MS,
  observeLatency,
  pickPeakEwma,
  pickSed,
  pickSwrr,
  pickSwrrLc,
  pickSwrrSed,
  pickSwrrLead,
  pickWlc,
  type Scheduler,
  type SchedulerTarget,
} from '@loadfeed/kernel-bridge';

const NOW = 1_000;

interface Target extends SchedulerTarget {
  readonly name: string;
  weight: number;
  active: number;
  maxConnections: number;
  downUntil: number;
}

function targets(spec: Record<string, number | { weight: number; active?: number; down?: boolean; max?: number; latency?: number }>): Target[] {
  return Object.entries(spec).map(([name, s]) => {
    const { weight, active = 0, down = false, max = 0, latency = 0 } = typeof s === 'number' ? { weight: s } : s;
    return { name, weight, active, maxConnections: max, downUntil: down ? NOW + 1 : 0, current: 0, latency, latencyAt: NOW };
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

/**
 * Short connections that overlap: every pick opens a connection on the chosen
 * target; each target finishes its connections at a rate proportional to
 * `speed` (connections per tick), so a target whose speed is below its share
 * of the arrivals piles up active connections. Deterministic.
 */
function simulate(pick: Scheduler, ts: Target[], speed: Record<string, number>, arrivalsPerTick: number, ticks: number): Record<string, number> {
  const counts: Record<string, number> = {};
  const credit: Record<string, number> = {};
  for (let i = 0; i < ticks; i += 1) {
    for (let k = 0; k < arrivalsPerTick; k += 1) {
      const d = pick(ts, NOW);
      if (!d) continue;
      d.active += 1;
      counts[d.name] = (counts[d.name] ?? 0) + 1;
    }
    for (const d of ts) {
      credit[d.name] = (credit[d.name] ?? 0) + (speed[d.name] ?? 0);
      const done = Math.min(d.active, Math.floor(credit[d.name] ?? 0));
      d.active -= done;
      credit[d.name] = (credit[d.name] ?? 0) - done;
      if (d.active === 0) credit[d.name] = Math.min(credit[d.name] ?? 0, 1);
    }
  }
  return counts;
}

// Balance bench (a): with one request per connection most targets are idle at
// each pick, and wlc gives the connection to any idle target whatever its
// weight, so a weight-1 target got more than its share.
test('wlc: an idle target wins over a busier one whatever the weights (why swrr-lc exists)', (t) => {
  const ts = targets({ small: 1, big: { weight: 4, active: 1 } });
  t.is(pickWlc(ts, NOW)?.name, 'small');
  t.deepEqual(shares(pickSwrrLc, ts, 5), { small: 1, big: 4 }, 'one connection in: the weights decide');
});

test('swrr-lc: sequential short connections get exact weighted shares', (t) => {
  t.deepEqual(shares(pickSwrrLc, targets({ a: 1, b: 2, c: 4 }), 700), { a: 100, b: 200, c: 400 });
});

test('swrr-lc: overlapping short connections on targets fast enough for their share get shares close to the weights, closer than wlc', (t) => {
  const speed = { a: 6 / 7, b: 12 / 7, c: 24 / 7 }; // each able to finish twice its share of 3 arrivals a tick
  const worst = (c: Record<string, number>): number => {
    const total = (c['a'] ?? 0) + (c['b'] ?? 0) + (c['c'] ?? 0);
    return Math.max(...(['a', 'b', 'c'] as const).map((n, i) => Math.abs((c[n] ?? 0) / total / (2 ** i / 7) - 1)));
  };
  const lc = simulate(pickSwrrLc, targets({ a: 1, b: 2, c: 4 }), speed, 3, 7_000);
  const wlc = simulate(pickWlc, targets({ a: 1, b: 2, c: 4 }), speed, 3, 7_000);
  t.log('swrr-lc', lc, 'wlc', wlc);
  t.true(worst(lc) < 0.1, `swrr-lc: worst share off its weight by ${(worst(lc) * 100).toFixed(1)} %`);
  t.true(worst(wlc) > 2 * worst(lc), `wlc: worst share off its weight by ${(worst(wlc) * 100).toFixed(1)} %`);
});

test('swrr-lc: a target with many active connections is avoided until it catches up', (t) => {
  const ts = targets({ stuck: { weight: 10, active: 30 }, a: 1, b: 1 });
  t.deepEqual(shares(pickSwrrLc, ts, 20), { a: 10, b: 10 }, 'never while 29/10 > 0/1');
  ts[0]!.active = 1; // 0/10 <= 0/1
  t.is(shares(pickSwrrLc, ts, 12)['stuck'], 10, 'back to its weighted share');
  t.deepEqual(shares(pickSwrrLc, targets({ small: { weight: 1, active: 2 }, big: 4 }), 5), { big: 5 }, 'a small target two connections in is skipped');
});

test('swrr-lc: a slow target gets less than its weight, the others take up the rest', (t) => {
  const ts = targets({ slow: 1, a: 1, b: 1 });
  // 2 arrivals a tick; "slow" finishes one connection every 4 ticks.
  const c = simulate(pickSwrrLc, ts, { slow: 0.25, a: 2, b: 2 }, 2, 4_000);
  t.true((c['slow'] ?? 0) < 0.15 * 8_000, `slow got ${c['slow']} of 8000`);
  t.is((c['slow'] ?? 0) + (c['a'] ?? 0) + (c['b'] ?? 0), 8_000);
});

test('swrr-lc: skips weight 0 and down targets; none eligible gives undefined', (t) => {
  t.deepEqual(shares(pickSwrrLc, targets({ a: 2, zero: 0, down: { weight: 5, down: true }, b: 1 }), 300), { a: 200, b: 100 });
  t.is(pickSwrrLc(targets({ zero: 0, down: { weight: 1, down: true } }), NOW), undefined);
});

test('sed: least (active + 1) / weight, as IPVS sed', (t) => {
  t.is(pickSed(targets({ small: 1, big: { weight: 4, active: 2 } }), NOW)?.name, 'big', '3/4 < 1/1');
  t.is(pickSed(targets({ small: 1, big: { weight: 4, active: 4 } }), NOW)?.name, 'small', '5/4 > 1/1');
  t.deepEqual(shares(pickSed, targets({ a: 1, b: 4 }), 10), { b: 10 }, 'sequential connections all go to the highest weight');
  t.deepEqual(shares(pickSed, targets({ a: 2, b: { weight: 4, active: 1 } }), 6), { a: 2, b: 4 }, 'exact ties: smooth weighted round robin');
  t.is(pickSed(targets({ stuck: { weight: 10, active: 30 }, a: 1 }), NOW)?.name, 'a');
  t.is(pickSed(targets({ zero: 0, down: { weight: 1, down: true } }), NOW), undefined);
});

test('swrr-sed: idle targets share by weight; a busy low-weight target is skipped while a high-weight one is idle', (t) => {
  t.deepEqual(shares(pickSwrrSed, targets({ a: 1, b: 2, c: 4 }), 700), { a: 100, b: 200, c: 400 });
  t.deepEqual(shares(pickSwrrSed, targets({ victim: { weight: 65, active: 1 }, a: 100, b: 100 }), 10), { a: 5, b: 5 }, '1/65 > 1/100');
  t.deepEqual(shares(pickSwrrSed, targets({ small: 1, big: { weight: 4, active: 1 } }), 5), { small: 1, big: 4 }, '1/4 <= 1/1: the weights decide');
  t.deepEqual(shares(pickSwrrSed, targets({ stuck: { weight: 10, active: 30 }, a: 1, b: 1 }), 20), { a: 10, b: 10 });
  t.is(pickSwrrSed(targets({ zero: 0, down: { weight: 1, down: true } }), NOW), undefined);
});

test('swrr-lead: weights less than 2x apart pick as least connection, where swrr-sed lets the higher weight lead', (t) => {
  // Equal servers whose weights wobble: the one weighted 100 holds a connection, the others none.
  const spec = { stale: { weight: 100, active: 1 }, b: 80, c: 60 };
  t.deepEqual(shares(pickSwrrSed, targets(spec), 24), { stale: 10, b: 8, c: 6 }, '1/100 <= 1/80');
  t.deepEqual(shares(pickSwrrLead, targets(spec), 14), { b: 8, c: 6 }, '100 < 2 x 60');
  // Equal weights: one connection ahead is skipped, where swrr-sed gives it its turn (1/100 <= (1 + 0)/100).
  const equal = { ahead: { weight: 100, active: 1 }, b: 100, c: 100 };
  t.deepEqual(shares(pickSwrrSed, targets(equal), 30), { ahead: 10, b: 10, c: 10 });
  t.deepEqual(shares(pickSwrrLead, targets(equal), 30), { b: 15, c: 15 });
  const open = targets({ a: 7, b: 7, c: 7 });
  for (let i = 0; i < 10; i++) pickSwrrLead(open, NOW)!.active++;
  t.deepEqual(open.map((x) => x.active).sort(), [3, 3, 4], 'connections that stay open stay level');
  // Twice the weight or more: one connection ahead per multiple.
  t.deepEqual(shares(pickSwrrLead, targets({ big: { weight: 120, active: 1 }, small: 60 }), 3), { big: 2, small: 1 });
  t.deepEqual(shares(pickSwrrLead, targets({ big: { weight: 120, active: 2 }, small: 60 }), 3), { small: 3 });
  t.deepEqual(shares(pickSwrrLead, targets({ a: 1, b: 2, c: 4 }), 700), { a: 100, b: 200, c: 400 }, 'idle: shares by weight');
  // Short overlapping connections on targets fast enough for their share (1:2:4): swrr-sed's shares
  // within 0.1 % (at most a quarter off the weights), where wlc's are further off.
  const speed = { a: 6 / 7, b: 12 / 7, c: 24 / 7 };
  const lead = simulate(pickSwrrLead, targets({ a: 1, b: 2, c: 4 }), speed, 3, 7_000);
  const sed = simulate(pickSwrrSed, targets({ a: 1, b: 2, c: 4 }), speed, 3, 7_000);
  const wlc = simulate(pickWlc, targets({ a: 1, b: 2, c: 4 }), speed, 3, 7_000);
  for (const n of ['a', 'b', 'c']) t.true(Math.abs((lead[n] ?? 0) - (sed[n] ?? 0)) <= 21, `${n}: ${lead[n]} against swrr-sed's ${sed[n]}`);
  const worst = (c: Record<string, number>): number => Math.max(...(['a', 'b', 'c'] as const).map((n, i) => Math.abs((c[n] ?? 0) / 21_000 / (2 ** i / 7) - 1)));
  t.log('swrr-lead', lead, 'wlc', wlc);
  t.true(worst(lead) < 0.25, `worst share off its weight by ${(worst(lead) * 100).toFixed(1)} %`);
  t.true(worst(wlc) > 2 * worst(lead), `wlc: worst share off its weight by ${(worst(wlc) * 100).toFixed(1)} %`);
});

test('swrr-lead: a drained low-weight target does not let the others pile up (the active/weight bound holds)', (t) => {
  // fewest is `low` (idle, weight 5): by whole multiples alone `big` could lead by 19.
  t.deepEqual(shares(pickSwrrLead, targets({ low: 5, big: { weight: 100, active: 3 }, mid: { weight: 100, active: 1 } }), 21), { low: 1, mid: 20 });
  t.is(pickSwrrLead(targets({ zero: 0, down: { weight: 1, down: true } }), NOW), undefined);
  // Neither bound alone keeps both (2/10 >= 5/26; 26 < 3 x 10): the shortest expected delay still takes part.
  t.deepEqual(shares(pickSwrrLead, targets({ few: { weight: 10, active: 2 }, many: { weight: 26, active: 4 } }), 3), { many: 3 });
});

test('every scheduler skips a target at its connection limit, and a limit of 0 is none', (t) => {
  for (const [name, pick] of FASTPATH_SCHEDULERS) {
    // a would win on weight and load; it is full.
    const ts = targets({ a: { weight: 10, active: 2, max: 2 }, b: { weight: 1, active: 3 }, c: { weight: 1, active: 3, max: 0 } });
    const picked = new Set(Array.from({ length: 20 }, () => pick(ts, NOW)?.name));
    t.false(picked.has('a'), `${name}: picked the full target`);
    t.true(picked.has('b') || picked.has('c'), name);
    // Below its limit, it is eligible again.
    const below = targets({ a: { weight: 10, active: 1, max: 2 }, b: { weight: 1, active: 3 } });
    t.is(pick(below, NOW)?.name, 'a', name);
    // Every target full: none.
    t.is(pick(targets({ a: { weight: 1, active: 1, max: 1 }, b: { weight: 1, active: 5, max: 5 } }), NOW), undefined, name);
  }
});

test('observeLatency: a slower connection replaces the estimate at once, a faster one pulls it a quarter of the way', (t) => {
  const [a] = targets({ a: 1 });
  observeLatency(a!, 10, NOW);
  t.is(a!.latency, 10, 'first sample');
  observeLatency(a!, 80, NOW);
  t.is(a!.latency, 80, 'peak');
  observeLatency(a!, 0, NOW);
  t.is(a!.latency, 60, '80 + (0 - 80) / 4');
  observeLatency(a!, LONG_CONNECTION_MS + 1, NOW);
  t.is(a!.latency, 60, 'a long-lived connection is no sample');
  observeLatency(a!, 60, NOW + LATENCY_DECAY_MS);
  t.is(a!.latency, 60, 'after one time constant the estimate had faded to 60/e: the sample is above it');
  t.is(a!.latencyAt, NOW + LATENCY_DECAY_MS);
});

test('peak-ewma: least (active + 1) x latency; a slow target gets a connection only once the fast one is that many times busier', (t) => {
  const ts = targets({ slow: { weight: 1, latency: 50 }, fast: { weight: 1, latency: 5 } });
  const picks = Array.from({ length: 10 }, () => {
    const d = pickPeakEwma(ts, NOW)!;
    d.active++;
    return d.name;
  });
  // fast: (n + 1) x 5 stays below slow's 1 x 50 for n = 0..8; the tenth ties at 50 and is shared.
  t.deepEqual(picks.slice(0, 9), Array(9).fill('fast'));
  t.deepEqual(shares(pickPeakEwma, targets({ a: { weight: 1, latency: 5 }, b: { weight: 1, latency: 5 } }), 4), { a: 2, b: 2 }, 'ties: smooth weighted round robin');
});

test('peak-ewma: weights do not rank targets with estimates; weight 0, down and full targets are skipped', (t) => {
  t.is(pickPeakEwma(targets({ heavy: { weight: 100, latency: 20 }, light: { weight: 1, latency: 5 } }), NOW)?.name, 'light');
  const ts = targets({ zero: { weight: 0, latency: 1 }, down: { weight: 1, latency: 1, down: true }, full: { weight: 1, latency: 1, max: 1, active: 1 }, ok: { weight: 1, latency: 90 } });
  t.deepEqual(shares(pickPeakEwma, ts, 5), { ok: 5 });
});

test('peak-ewma: a target without an estimate counts with the best of the others, so it is tried without taking everything', (t) => {
  const ts = targets({ known: { weight: 1, latency: 5, active: 2 }, fresh: 1 });
  t.is(pickPeakEwma(ts, NOW)?.name, 'fresh', '1 x 5 < 3 x 5');
  ts[1]!.active = 3;
  t.is(pickPeakEwma(ts, NOW)?.name, 'known', '4 x 5 > 3 x 5');
});

test('peak-ewma: an estimate fades, so a target that was slow is tried again', (t) => {
  const ts = targets({ was: { weight: 1, latency: 100 }, busy: { weight: 1, latency: 5, active: 1 } });
  t.is(pickPeakEwma(ts, NOW)?.name, 'busy', '100 > 2 x 5');
  // Both fade alike, but `busy` keeps getting samples; `was` gets none.
  observeLatency(ts[1]!, 5, NOW + 3 * LATENCY_DECAY_MS);
  t.is(pickPeakEwma(ts, NOW + 3 * LATENCY_DECAY_MS)?.name, 'was', '100/e^3 = 5.0 < 2 x 5');
  // Faded far below the others, it still counts at their latency: no burst before its first connection ends.
  const later = NOW + 10 * LATENCY_DECAY_MS;
  const faded = targets({ was: { weight: 1, latency: 100 }, busy: { weight: 1, latency: 5, active: 2 } });
  faded[1]!.latencyAt = later;
  const picks = Array.from({ length: 4 }, () => {
    const d = pickPeakEwma(faded, later)!;
    d.active++;
    return d.name;
  });
  t.deepEqual(picks.slice(0, 2), ['was', 'was'], '1 x 5 and 2 x 5 < 3 x 5');
  t.true(picks.includes('busy'), `then by connections in flight: ${picks.join(' ')}`);
});

test('peak-ewma: with no estimate at all (long-lived connections only) it picks as swrr-sed', (t) => {
  const spec = { a: { weight: 1, active: 2 }, b: { weight: 2, active: 1 }, c: 4 };
  const mine = targets(spec);
  const theirs = targets(spec);
  for (const d of mine) observeLatency(d, LONG_CONNECTION_MS + 1, NOW);
  t.deepEqual(sequence(pickPeakEwma, mine, 14), sequence(pickSwrrSed, theirs, 14));
  // Estimates older than 20 time constants are unknown again.
  const stale = targets({ a: { weight: 1, latency: 5, active: 3 }, b: 1 });
  t.is(pickPeakEwma(stale, NOW + 20 * LATENCY_DECAY_MS)?.name, pickSwrrSed(targets({ a: { weight: 1, active: 3 }, b: 1 }), NOW)?.name);
});
