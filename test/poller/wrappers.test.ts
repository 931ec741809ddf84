// The wrappers every strategy gets (evaluate.ts), one by one.
import test from 'ava';
import { harness } from '../helpers/policy-harness.js';

const TWO = `    servers:
      - { node: a, address: "127.0.0.1:1" }
      - { node: b, address: "127.0.0.1:2" }
`;
const BASE = `    smoothing: { halfLife: 0s }
    deadband: 0
    slowStart: null
`;

function live(h: ReturnType<typeof harness>, cpuA: number, cpuB: number, extra: { memA?: number } = {}): void {
  if (!h.table.get('a')) h.connect('a', 1);
  if (!h.table.get('b')) h.connect('b', 1);
  h.report('a', { cpuUtilization: cpuA, memUtilization: extra.memA ?? 0.1 });
  h.report('b', { cpuUtilization: cpuB, memUtilization: 0.1 });
}

test('guard: the first matching condition fixes the weight, with its name in the reason', (t) => {
  const h = harness(`${BASE}    guards:
      - { name: memory-exhausted, when: "mem > 0.95", weight: 0 }
      - { when: "cpu > 0.99", weight: 5 }
${TWO}`);
  live(h, 0.1, 0.1, { memA: 0.97 });
  const d = h.evaluate();
  t.deepEqual(d.map((x) => [x.weight, x.state]), [[0, 'guarded'], [100, 'live']]);
  t.is(d[0]?.reason, 'guard memory-exhausted');
  live(h, 1, 0.1);
  t.deepEqual(h.evaluate().map((x) => [x.weight, x.reason]), [[5, 'guard cpu > 0.99'], [100, 'cpu 0.1 of 1 cores']]);
});

test('drain: the agent asks for 0 and gets it until it undrains', (t) => {
  const h = harness(`${BASE}${TWO}`);
  live(h, 0.1, 0.1);
  const a = h.table.get('a');
  if (!a) throw new Error('no a');
  h.table.setDrain(a, 'deploy');
  t.deepEqual(h.evaluate().map((x) => [x.weight, x.state, x.reason]), [[0, 'drained', 'drained by the agent: deploy'], [100, 'live', 'cpu 0.1 of 1 cores']]);
  h.table.setDrain(a, null);
  t.deepEqual(h.weights(), [100, 100]);
});

test('slow start ramps a new server from `from` to its full weight over `duration`', (t) => {
  const h = harness(`    smoothing: { halfLife: 0s }
    deadband: 0
    slowStart: { duration: 10s, from: 0.1 }
${TWO}`);
  live(h, 0, 0);
  t.deepEqual(h.weights(), [10, 10]);
  h.advance(5000);
  live(h, 0, 0);
  t.deepEqual(h.weights(), [55, 55]);
  h.advance(5000);
  live(h, 0, 0);
  const d = h.evaluate();
  t.deepEqual(d.map((x) => [x.weight, x.state]), [[100, 'live'], [100, 'live']]);
});

test('blackout: a reconnected server gets the mean until its metrics are trusted', (t) => {
  const h = harness(`${BASE}    blackout: 5s
    servers:
      - { node: a, address: "127.0.0.1:1" }
      - { node: b, address: "127.0.0.1:2" }
      - { node: c, address: "127.0.0.1:3" }
`);
  h.connect('a', 1);
  h.connect('b', 1);
  h.advance(6000);
  h.connect('c', 1);
  h.report('a', { cpuUtilization: 0 }); // score 1
  h.report('b', { cpuUtilization: 0.5 }); // score 0.5
  h.report('c', { cpuUtilization: 0.99 }); // ignored: mean 0.75
  const d = h.evaluate();
  t.deepEqual(d.map((x) => x.weight), [100, 50, 75]);
  t.is(d[2]?.state, 'blackout');
  h.advance(5000);
  h.report('c', { cpuUtilization: 0.99 });
  t.is(h.evaluate()[2]?.weight, 1);
});

test('stale: hold keeps the last weight for holdFor, then quiesces', (t) => {
  const h = harness(`${BASE}    stale: { action: hold, holdFor: 3s }
    servers:
      - { node: a, address: "127.0.0.1:1" }
      - { node: b, address: "127.0.0.1:2" }
      - { node: c, address: "127.0.0.1:3" }
`);
  for (const n of ['a', 'b', 'c']) h.connect(n, 1);
  for (const n of ['a', 'b', 'c']) h.report(n, { cpuUtilization: n === 'a' ? 0.5 : 0 });
  t.deepEqual(h.weights(), [50, 100, 100]);
  h.advance(2500);
  h.report('b', { cpuUtilization: 0 });
  h.report('c', { cpuUtilization: 0 });
  h.table.sweep(); // a: no sample for 2.5 s > staleAfter 2 s
  const held = h.evaluate();
  t.deepEqual(held.map((x) => [x.weight, x.state]), [[50, 'held'], [100, 'live'], [100, 'live']]);
  h.advance(3000);
  h.report('b', { cpuUtilization: 0 });
  h.report('c', { cpuUtilization: 0 });
  t.deepEqual(h.evaluate().map((x) => [x.weight, x.state]), [[0, 'stale'], [100, 'live'], [100, 'live']]);
});

test('deadband: a change smaller than the band is not written', (t) => {
  const h = harness(`    smoothing: { halfLife: 0s }
    deadband: 0.1
    slowStart: null
${TWO}`);
  live(h, 0, 0.5);
  t.deepEqual(h.weights(), [100, 50]);
  live(h, 0, 0.53); // 47: 6 % below 50
  const d = h.evaluate();
  t.is(d[1]?.weight, 50);
  t.regex(d[1]?.reason ?? '', /within deadband/);
  live(h, 0, 0.6); // 40: 20 % below
  t.is(h.evaluate()[1]?.weight, 40);
});

test('maxChangePerSecond limits how fast a weight moves', (t) => {
  const h = harness(`${BASE}    maxChangePerSecond: 0.1
${TWO}`);
  live(h, 0, 0);
  t.deepEqual(h.weights(), [100, 100]);
  h.advance(1000);
  live(h, 0, 0.9); // wants 10, may move 10 per second
  t.deepEqual(h.weights(), [100, 90]);
  h.advance(2000);
  live(h, 0, 0.9);
  t.deepEqual(h.weights(), [100, 70]);
});

test('quantum rounds to coarse steps; auto picks them for IPVS-style wrr only', (t) => {
  const h = harness(`${BASE}    weights: { max: 100, quantum: 10 }
${TWO}`);
  live(h, 0, 0.36); // 64 → 60
  t.deepEqual(h.weights(), [100, 60]);
  t.is(harness(`${BASE}${TWO}`).service.weights.quantum, 1);
});

test('shareCap: no server gets more than its share of the total', (t) => {
  const h = harness(`${BASE}    shareCap: 0.5
    servers:
      - { node: a, address: "127.0.0.1:1" }
      - { node: b, address: "127.0.0.1:2" }
      - { node: c, address: "127.0.0.1:3" }
`);
  h.connect('a', 64); // one lying or huge agent
  h.connect('b', 1);
  h.connect('c', 1);
  for (const n of ['a', 'b', 'c']) h.report(n, { cpuUtilization: 0 });
  const w = h.weights();
  const total = w.reduce((a, b) => a + b, 0);
  t.true((w[0] ?? 0) / total <= 0.5 + 0.01, JSON.stringify(w));
  t.regex(h.evaluate()[0]?.reason ?? '', /share capped at 50%/);
});

test('meanBand clamps every weight to [min, max] × the mean', (t) => {
  const h = harness(`${BASE}    meanBand: { min: 0.5, max: 2 }
    weights: { min: 0, max: 1000 }
    servers:
      - { node: a, address: "127.0.0.1:1" }
      - { node: b, address: "127.0.0.1:2" }
      - { node: c, address: "127.0.0.1:3" }
`);
  h.connect('a', 1);
  h.connect('b', 1);
  h.connect('c', 1);
  h.report('a', { cpuUtilization: 0 }); // 1000
  h.report('b', { cpuUtilization: 0.9 }); // 100
  h.report('c', { cpuUtilization: 0.99 }); // 10
  const w = h.weights(); // mean 370 → band [185, 740]
  t.deepEqual(w, [740, 185, 185]);
});

test('all-zero fallback: equal weights when every agent is gone, if asked', (t) => {
  const h = harness(`${BASE}    allZero: equal
${TWO}`);
  live(h, 0.5, 0);
  t.deepEqual(h.weights(), [50, 100]);
  const a = h.table.get('a');
  const b = h.table.get('b');
  if (!a || !b) throw new Error('missing');
  h.table.disconnect(a);
  h.table.disconnect(b);
  const d = h.evaluate();
  t.deepEqual(d.map((x) => [x.weight, x.state]), [[100, 'fallback'], [100, 'fallback']]);
});

test('adopted weights are held while agents reconnect and do not slow-start', (t) => {
  const h = harness(`    smoothing: { halfLife: 0s }
    deadband: 0
${TWO}`);
  // A poller restart: the engine already has 70 and 30.
  h.adopt({ '127.0.0.1:1': 70, '127.0.0.1:2': 30 }, 2000);
  t.deepEqual(h.evaluate().map((x) => [x.weight, x.state]), [[70, 'held'], [30, 'held']]);
  h.connect('a', 1);
  h.report('a', { cpuUtilization: 0 });
  h.advance(500);
  t.deepEqual(h.evaluate().map((x) => [x.weight, x.state]), [[70, 'held'], [30, 'held']], 'a keeps its adopted weight while b is still awaited');
  h.advance(2000);
  h.report('a', { cpuUtilization: 0 });
  t.deepEqual(h.evaluate().map((x) => [x.weight, x.state]), [[100, 'live'], [0, 'absent']], 'grace over: b is quiesced, a weighted by its metrics without a slow start');
});

test('selector pools pick up every matching agent, with its first address and the port', (t) => {
  const h = harness(`${BASE}    servers:
      - { selector: { role: web }, port: 8080 }
`);
  t.deepEqual(h.evaluate(), []);
  h.connect('w1', 1, { addresses: ['192.0.2.1'], labels: { role: 'web' } });
  h.connect('w2', 2, { addresses: ['2001:db8::2'], labels: { role: 'web' } });
  h.connect('db', 4, { addresses: ['192.0.2.9'], labels: { role: 'db' } });
  for (const n of ['w1', 'w2', 'db']) h.report(n, { cpuUtilization: 0 });
  t.deepEqual(h.evaluate().map((d) => [d.address, d.node, d.weight]), [
    ['192.0.2.1:8080', 'w1', 50],
    ['[2001:db8::2]:8080', 'w2', 100],
  ]);
});

test('a selector server whose agent left is forgotten: back, it starts from its fresh metrics', (t) => {
  const h = harness(`    smoothing: { halfLife: 10s }
    deadband: 0
    slowStart: null
    servers:
      - { selector: { role: web }, port: 8080 }
`);
  const w1 = h.connect('w1', 1, { addresses: ['192.0.2.1'], labels: { role: 'web' } });
  h.connect('w2', 1, { addresses: ['192.0.2.2'], labels: { role: 'web' } });
  h.report('w1', { cpuUtilization: 0 });
  h.report('w2', { cpuUtilization: 0 });
  t.deepEqual(h.evaluate().map((d) => d.score), [1, 1]);
  h.table.disconnect(w1);
  t.deepEqual(h.evaluate().map((d) => d.node), ['w2']);
  h.advance(1000);
  h.connect('w1', 1, { addresses: ['192.0.2.1'], labels: { role: 'web' } });
  h.report('w1', { cpuUtilization: 0.5 });
  t.is(h.evaluate()[0]?.score, 0.5, 'not smoothed from the score it had before it left');
});

test('many servers returning at once ramp up together instead of taking a full share at once', (t) => {
  const names = ['s0', 's1', 's2', 's3', 'r0', 'r1', 'r2', 'r3'];
  const h = harness(`    smoothing: { halfLife: 0s }
    deadband: 0
    slowStart: { duration: 10s, from: 0.1 }
    servers:
${names.map((n, i) => `      - { node: ${n}, address: "127.0.0.1:${i + 1}" }`).join('\n')}
`);
  const all = (): void => {
    for (const n of names) if (h.table.get(n)) h.report(n, { cpuUtilization: 0.2 });
  };
  for (const n of names.slice(0, 4)) h.connect(n, 1);
  all();
  h.advance(20_000);
  all();
  t.deepEqual(h.weights().slice(0, 4), [100, 100, 100, 100]);
  // The other four come back together (a healed partition, a rack reboot).
  for (const n of names.slice(4)) h.connect(n, 1);
  const returningShare = (): number => {
    const w = h.weights();
    const total = w.reduce((a, b) => a + b, 0);
    return w.slice(4).reduce((a, b) => a + b, 0) / total;
  };
  all();
  const shares = [returningShare()];
  for (let s = 0; s < 10; s += 1) {
    h.advance(1000);
    all();
    shares.push(returningShare());
  }
  t.log(shares.map((x) => x.toFixed(2)).join(' '));
  t.true((shares[0] ?? 1) < 0.1, 'at first the returning servers get a trickle');
  t.true(shares.every((x, i) => i === 0 || x >= (shares[i - 1] ?? 0)), 'their share only grows');
  t.true(Math.abs((shares.at(-1) ?? 0) - 0.5) < 0.01, 'after the ramp they carry their half');
});

// Balance bench (d): an idle returning server has the best headroom, so
// scaling to it shrank every other weight and "from × its own weight" was an
// equal share at once, cold.
test('slow start of a returning idle server is bounded by the established servers\' mean weight, and does not rescale them', (t) => {
  const h = harness(`    smoothing: { halfLife: 0s }
    deadband: 0
    slowStart: { duration: 10s, from: 0.1 }
    servers:
      - { node: a, address: "127.0.0.1:1" }
      - { node: b, address: "127.0.0.1:2" }
      - { node: c, address: "127.0.0.1:3" }
`);
  const report = (cpu: Record<string, number>): void => {
    for (const [n, u] of Object.entries(cpu)) h.report(n, { cpuUtilization: u });
  };
  for (const n of ['a', 'b', 'c']) h.connect(n, 1);
  report({ a: 0.6, b: 0.6, c: 0.6 });
  h.advance(20_000);
  report({ a: 0.6, b: 0.6, c: 0.6 });
  t.deepEqual(h.weights(), [100, 100, 100]);
  const b = h.table.get('b');
  if (!b) throw new Error('no b');
  h.table.disconnect(b);
  h.advance(15_000);
  report({ a: 0.9, c: 0.9 });
  t.deepEqual(h.weights(), [100, 0, 100]);
  // b comes back idle: headroom scores it 0.9 / 0.1 = 9× better than the others.
  h.connect('b', 1);
  report({ a: 0.9, b: 0, c: 0.9 });
  const d = h.evaluate();
  t.deepEqual(d.map((x) => [x.weight, x.state]), [[100, 'live'], [10, 'slow-start'], [100, 'live']], 'b ramps from 10 % of the others\' mean; they keep their weights');
  t.regex(d[1]?.reason ?? '', /slow start 10% of the established servers' mean weight/);
  h.advance(5000);
  report({ a: 0.9, b: 0, c: 0.9 });
  t.deepEqual(h.weights(), [100, 55, 100], 'half way: 55 % of the mean');
  h.advance(5000);
  report({ a: 0.7, b: 0.5, c: 0.7 });
  t.deepEqual(h.weights(), [60, 100, 60], 'ramp over: its own weight');
});

test('slow start of a server weighted below the established mean ramps its own weight', (t) => {
  const h = harness(`    smoothing: { halfLife: 0s }
    deadband: 0
    slowStart: { duration: 10s, from: 0.1 }
${TWO}`);
  h.connect('a', 1);
  h.report('a', { cpuUtilization: 0.5 });
  h.advance(20_000);
  h.report('a', { cpuUtilization: 0.5 });
  t.deepEqual(h.weights(), [100, 0]);
  h.connect('b', 1);
  h.report('a', { cpuUtilization: 0.5 });
  h.report('b', { cpuUtilization: 0.75 }); // half a's headroom: weight 50
  h.advance(5000);
  h.report('a', { cpuUtilization: 0.5 });
  h.report('b', { cpuUtilization: 0.75 });
  const d = h.evaluate();
  t.deepEqual(d.map((x) => x.weight), [100, 28], '55 % of its own 50');
  t.notRegex(d[1]?.reason ?? '', /mean weight/);
});

test('slow start when every established server scores 0: the returning one still takes traffic', (t) => {
  const h = harness(`    smoothing: { halfLife: 0s }
    deadband: 0
    weights: { min: 0 }
    slowStart: { duration: 10s, from: 0.1 }
${TWO}`);
  h.connect('a', 1);
  h.report('a', { cpuUtilization: 1 });
  h.advance(20_000);
  h.connect('b', 1);
  h.report('a', { cpuUtilization: 1 });
  h.report('b', { cpuUtilization: 0 });
  t.deepEqual(h.weights(), [0, 10]);
});
