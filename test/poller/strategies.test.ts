// Strategies on their own, through the evaluator with every wrapper neutral.
import test from 'ava';
import { harness } from '../helpers/policy-harness.js';

const NEUTRAL = `    smoothing: { halfLife: 0s }
    deadband: 0
    slowStart: null
    weights: { min: 0, max: 1000 }
`;
const servers = (n: number): string =>
  `    servers:\n${Array.from({ length: n }, (_, i) => `      - { node: n${i}, address: "127.0.0.1:${i + 1}" }`).join('\n')}\n`;

test('orca: weight = qps / utilisation (A58), best → max', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: orca, blackoutPeriod: 0s }\n${servers(3)}`);
  for (const n of ['n0', 'n1', 'n2']) h.connect(n, 1);
  h.report('n0', { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 }); // 200
  h.report('n1', { cpuUtilization: 0.25, tcpAcceptsPerSecond: 100 }); // 400
  h.report('n2', { cpuUtilization: 0.8, tcpAcceptsPerSecond: 40 }); // 50
  t.deepEqual(h.weights(), [500, 1000, 125]);
});

test('orca: reports with qps or utilisation 0 are ignored; fewer than two usable weights → round robin', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: orca, blackoutPeriod: 0s }\n${servers(3)}`);
  for (const n of ['n0', 'n1', 'n2']) h.connect(n, 1);
  h.report('n0', { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 });
  h.report('n1', { cpuUtilization: 0, tcpAcceptsPerSecond: 100 });
  h.report('n2', { cpuUtilization: 0.5, tcpAcceptsPerSecond: 0 });
  const d = h.evaluate();
  t.deepEqual(d.map((x) => x.weight), [1000, 1000, 1000]);
  t.regex(d[0]?.reason ?? '', /round robin: 1 usable weight/);
  h.report('n1', { cpuUtilization: 0.25, tcpAcceptsPerSecond: 100 });
  // n2 has no usable weight: it gets the mean of 200 and 400.
  t.deepEqual(h.weights(), [500, 1000, 750]);
});

test('orca: blackout period after the first usable report, and weight expiration', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: orca, blackoutPeriod: 10s, weightExpirationPeriod: 3m }\n${servers(3)}`);
  for (const n of ['n0', 'n1', 'n2']) h.connect(n, 1);
  const all = (): void => {
    h.report('n0', { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 });
    h.report('n1', { cpuUtilization: 0.25, tcpAcceptsPerSecond: 100 });
    h.report('n2', { cpuUtilization: 0.8, tcpAcceptsPerSecond: 40 });
  };
  all();
  t.deepEqual(h.weights(), [1000, 1000, 1000], 'everyone in blackout: round robin');
  h.advance(10_000);
  all();
  t.deepEqual(h.weights(), [500, 1000, 125]);
  // n2 stops reporting usable figures; after 3 min its weight expires → mean.
  h.advance(180_000);
  h.report('n0', { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 });
  h.report('n1', { cpuUtilization: 0.25, tcpAcceptsPerSecond: 100 });
  h.report('n2', { cpuUtilization: 0, tcpAcceptsPerSecond: 0 });
  const d = h.evaluate();
  t.deepEqual(d.map((x) => x.weight), [500, 1000, 750]);
  t.regex(d[2]?.reason ?? '', /weight expired/);
});

test('pid: weights converge so that loads equalise', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: pid }\n${servers(2)}`);
  h.connect('n0', 1);
  h.connect('n1', 1);
  // Plant: n0 has twice n1's capacity; load = share × 1.2 / capacity.
  let share = [0.5, 0.5];
  const capacity = [2, 1];
  for (let i = 0; i < 60; i += 1) {
    h.report('n0', { cpuUtilization: ((share[0] ?? 0) * 1.2) / (capacity[0] ?? 1) });
    h.report('n1', { cpuUtilization: ((share[1] ?? 0) * 1.2) / (capacity[1] ?? 1) });
    const w = h.weights();
    const total = w.reduce((a, b) => a + b, 0);
    share = w.map((x) => x / total);
    h.advance(1000);
  }
  t.true(Math.abs((share[0] ?? 0) - 2 / 3) < 0.03, `share ${share.join(', ')}`);
});

test('pid: connections in flight count when they are worse than CPU', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: pid }\n${servers(2)}`);
  const svc = { services: [{ name: 'web', port: 1 }] };
  h.connect('n0', 1, svc);
  h.connect('n1', 1, svc);
  h.report('n0', { cpuUtilization: 0.5, services: [{ name: 'web', established: 90 }] });
  h.report('n1', { cpuUtilization: 0.5, services: [{ name: 'web', established: 10 }] });
  const d = h.evaluate();
  t.true((d[0]?.weight ?? 0) < (d[1]?.weight ?? 0));
  t.regex(d[0]?.reason ?? '', /connections 1.8× mean/);
});

test('connections: fewer established connections per core → more weight', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: connections }\n${servers(3)}`);
  const svc = (port: number) => ({ services: [{ name: 'http', port }] });
  h.connect('n0', 2, svc(1));
  h.connect('n1', 2, svc(2));
  h.connect('n2', 2, svc(3));
  h.report('n0', { services: [{ name: 'http', established: 0 }] }); // 2
  h.report('n1', { services: [{ name: 'http', established: 2 }] }); // 1
  h.report('n2', {}); // unknown → mean 1.5
  t.deepEqual(h.weights(), [1000, 500, 750]);
});

test('expression: the operator formula decides; a missing metric gives the mean', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: expression, score: "cores * (1 - max(cpu, psi_cpu))" }\n${servers(3)}`);
  h.connect('n0', 4);
  h.connect('n1', 2);
  h.connect('n2', 2);
  h.report('n0', { cpuUtilization: 0.5, psiCpuSome: 0.25 }); // 2
  h.report('n1', { cpuUtilization: 0.5, psiCpuSome: 0 }); // 1
  h.report('n2', { cpuUtilization: 0.5 }); // psi missing → mean 1.5
  const d = h.evaluate();
  t.deepEqual(d.map((x) => x.weight), [1000, 500, 750]);
  t.is(d[0]?.reason, 'cores * (1 - max(cpu, psi_cpu)) = 2');
});

test('orca: application utilisation, rps and eps are used as A58 says when reported, and the reason names them', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: orca, blackoutPeriod: 0s, errorUtilizationPenalty: 2 }\n${servers(3)}`);
  for (const n of ['n0', 'n1', 'n2']) h.connect(n, 1);
  // 100 / (0.5 + 10/100 × 2) = 142.9: the application's figures, not CPU or accepts.
  h.report('n0', { cpuUtilization: 0.1, tcpAcceptsPerSecond: 5, applicationUtilization: 0.5, rpsFractional: 100, eps: 10 });
  // application_utilization 0 is "not reported" (A58): CPU stands in; no eps reported: 0.
  h.report('n1', { cpuUtilization: 0.25, tcpAcceptsPerSecond: 5, applicationUtilization: 0, rpsFractional: 50 });
  // Nothing from the application: the host's figures, as before.
  h.report('n2', { cpuUtilization: 0.5, tcpAcceptsPerSecond: 50 });
  const d = h.evaluate();
  t.deepEqual(d.map((x) => x.weight), [714, 1000, 500]);
  t.regex(d[0]?.reason ?? '', /^rps 100 \/ \(app_util 0\.5 \+ eps 10\/qps × 2\)/);
  t.regex(d[1]?.reason ?? '', /^rps 50 \/ \(cpu 0\.25 \+ no eps 0\/qps × 2\)/);
  t.regex(d[2]?.reason ?? '', /^accepts 50 \/ \(cpu 0\.5 \+ no eps 0\/qps × 2\)/);
});

test('queue: Little\'s law rate, discounted by the queue beyond the workers; a missing input gives the mean', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: queue }\n${servers(4)}`);
  for (const n of ['n0', 'n1', 'n2', 'n3']) h.connect(n, 1);
  // 8 workers × 1/0.05 s = 160/s, 3 in flight: a free worker → full rate.
  h.report('n0', { cpuUtilization: 0.05, namedMetrics: { in_flight: 3, latency_seconds: 0.05, concurrency: 8 } });
  // 4 workers, 0.05 s → 80/s, but 15 in flight: × 4/16.
  h.report('n1', { cpuUtilization: 0.05, namedMetrics: { in_flight: 15, latency_seconds: 0.05, concurrency: 4 } });
  // 8 workers slowed to 0.2 s by their dependency → 40/s.
  h.report('n2', { cpuUtilization: 0.05, namedMetrics: { in_flight: 7, latency_seconds: 0.2, concurrency: 8 } });
  // No latency reported.
  h.report('n3', { cpuUtilization: 0.05, namedMetrics: { in_flight: 1, concurrency: 8 } });
  const d = h.evaluate();
  // Scores 160, 20, 40 and the mean (73.3) for n3.
  t.deepEqual(d.map((x) => x.weight), [1000, 125, 250, 458]);
  t.regex(d[1]?.reason ?? '', /^in flight 15 of 4 workers, latency 0\.05 s: 80\/s × 0\.25/);
  t.regex(d[3]?.reason ?? '', /no app\.latency_seconds/);
});

test('queue: inputs are expressions; concurrency null counts each server as one worker', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: queue, inFlight: "app.active + app.waiting", latency: "app.p50_ms / 1000", concurrency: null }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  h.report('n0', { cpuUtilization: 0.05, namedMetrics: { active: 1, waiting: 0, p50_ms: 10 } }); // 1 / (0.01 × 2) = 50
  h.report('n1', { cpuUtilization: 0.05, namedMetrics: { active: 2, waiting: 2, p50_ms: 20 } }); // 1 / (0.02 × 5) = 10
  t.deepEqual(h.weights(), [1000, 200]);
});

/** Every 250 ms for `seconds`: each node reports what `sample` says, then the service is evaluated (as the poller does). */
function feed(h: ReturnType<typeof harness>, nodes: readonly string[], seconds: number, sample: (node: string) => { cpuUtilization: number; tcpAcceptsPerSecond: number | null }): number[] {
  let weights: number[] = [];
  for (let ms = 0; ms < seconds * 1000; ms += 250) {
    h.advance(250);
    for (const n of nodes) h.report(n, sample(n));
    weights = h.weights();
  }
  return weights;
}

test('capacity: without a neighbour, accepted connections/s over utilisation once the cost is learned; the mean until then', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(3)}`);
  for (const n of ['n0', 'n1', 'n2']) h.connect(n, 1);
  const load: Record<string, { cpuUtilization: number; tcpAcceptsPerSecond: number | null }> = {
    n0: { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 }, // cost 0.005: 100 + 0.4 / 0.005 = 180/s at 90 %
    n1: { cpuUtilization: 0.5, tcpAcceptsPerSecond: 50 }, // cost 0.01: 90/s
    n2: { cpuUtilization: 0.5, tcpAcceptsPerSecond: null }, // no rate: mean
  };
  h.report('n0', load['n0']!);
  h.report('n1', load['n1']!);
  h.report('n2', load['n2']!);
  const first = h.evaluate();
  t.regex(first[0]?.reason ?? '', /cost not learned yet: mean/);
  t.deepEqual(feed(h, ['n0', 'n1', 'n2'], 3, (n) => load[n]!), [1000, 500, 750]);
  t.regex(h.evaluate()[0]?.reason ?? '', /^100 connections\/s at cpu 0\.5, 5‰ cpu per connection\/s: capacity 180\/s$/);
});

test('capacity: a neighbour\'s CPU counts as lost spare, not as costlier requests, so fewer requests do not spiral the estimate down', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  // Both: 0.005 of CPU per connection/s, 100/s at half load: capacity 180/s (at the 90 % target).
  const quiet = { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 };
  t.deepEqual(feed(h, ['n0', 'n1'], 3, () => quiet), [1000, 1000]);
  // A neighbour takes 0.3 of n0's CPU: 100/s + 0.1 / 0.005 = 120/s left (rate/utilisation would say 112 at 90 %).
  // The learned cost creeps up (costHalfLife 1m): within 2 % after 3 s, 5 % after 8 s.
  const withNeighbour = (rate: number) => ({ cpuUtilization: rate * 0.005 + 0.3, tcpAcceptsPerSecond: rate });
  const sick = feed(h, ['n0', 'n1'], 3, (n) => (n === 'n0' ? withNeighbour(100) : quiet));
  t.true(sick[0]! >= 654 && sick[0]! <= 667 && sick[1] === 1000, `with the neighbour: ${sick}`);
  // Traffic leaves n0 for its lower weight: still 50/s + 0.35 / 0.005 = 120/s
  // (rate/utilisation: 82/s, and lower still the less it gets).
  const shed = feed(h, ['n0', 'n1'], 5, (n) => (n === 'n0' ? withNeighbour(50) : quiet));
  t.true(shed[0]! >= 634 && shed[0]! <= 667 && shed[1] === 1000, `fewer requests: ${shed}`);
  // The neighbour leaves: the spare is back at once, and the cost that crept up
  // falls back as the averages (2 s half-life) forget the neighbour: within 2 % of 180/s after 12 s.
  const back = feed(h, ['n0', 'n1'], 12, (n) => (n === 'n0' ? { cpuUtilization: 0.25, tcpAcceptsPerSecond: 50 } : quiet));
  t.true(back[0]! >= 980 && back[1] === 1000, `neighbour gone: ${back}`);
});

test('capacity: requests that become costlier for good are learned within a few costHalfLife; an idle server keeps its learned capacity', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity, costHalfLife: 10s }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  const quiet = { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 };
  feed(h, ['n0', 'n1'], 3, () => quiet);
  // n0's requests now cost twice as much: 0.01 per connection/s, so 100/s is its whole capacity.
  const costly = { cpuUtilization: 0.8, tcpAcceptsPerSecond: 80 };
  const soon = feed(h, ['n0', 'n1'], 3, (n) => (n === 'n0' ? costly : quiet));
  // At first the spare is counted at the old cost: 80 + 0.1 / 0.005 = 100/s against 180, over-rated but not by much near full load.
  t.true(soon[0]! >= 520 && soon[0]! <= 570, `soon after: ${soon[0]}`);
  // Six half-lives later the cost is within 2 % of 0.01: 80 + 0.1 / 0.01 = 90/s.
  const later = feed(h, ['n0', 'n1'], 60, (n) => (n === 'n0' ? costly : quiet));
  t.true(later[0]! >= 500 && later[0]! <= 505, `later: ${later[0]}`);
  // An idle server (too idle to learn from) is scored at its whole learned capacity, 0.9 / cost = 180/s.
  const idle = feed(h, ['n0', 'n1'], 3, (n) => (n === 'n0' ? costly : { cpuUtilization: 0, tcpAcceptsPerSecond: 0 }));
  t.true(idle[0]! >= 500 && idle[0]! <= 505 && idle[1] === 1000, `idle n1: ${idle}`);
});

test('capacity: a server past the target utilisation scores less than it accepts, down to 0, so a saturated server sheds at once', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  const quiet = { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 };
  feed(h, ['n0', 'n1'], 3, () => quiet);
  // Saturated by a neighbour while still accepting 100/s: 100 − 0.1 / 0.005 = 80/s, below what it accepts.
  const saturated = feed(h, ['n0', 'n1'], 1, (n) => (n === 'n0' ? { cpuUtilization: 1, tcpAcceptsPerSecond: 100 } : quiet));
  t.true(saturated[0]! > 400 && saturated[0]! < 100_000 / 180, `saturated: ${saturated}`);
  // Saturated with few requests of its own: no capacity left at all, once the score's averages (a second at most) hold it.
  t.deepEqual(feed(h, ['n0', 'n1'], 4, (n) => (n === 'n0' ? { cpuUtilization: 1, tcpAcceptsPerSecond: 10 } : quiet)), [0, 1000]);
});

test('capacity: two samples in a row beyond their requests\' Poisson noise, the same way, are a change, taken at once; one alone, or one within, is averaged', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  const quiet = { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 };
  feed(h, ['n0', 'n1'], 3, () => quiet);
  // A quarter second holds 25 requests: noise bound 2 × √25 / 0.25 s = 40/s.
  const quarter = (cpuUtilization: number): number[] => {
    h.advance(250);
    h.report('n0', { cpuUtilization, tcpAcceptsPerSecond: 100, windowMs: 250 });
    h.report('n1', { ...quiet, windowMs: 250 });
    return h.weights();
  };
  // 0.15 more CPU at the same rate reads as 30/s less capacity, within the noise:
  // averaged over 15 requests, 25 of them move it 1 − 2^(−25/15) = 68.5 % of the way (159/s, not 150).
  t.deepEqual(quarter(0.65), [886, 1000]);
  feed(h, ['n0', 'n1'], 3, () => quiet);
  // A burst reading 0.9 for a quarter second alone: averaged (180 − 0.685 × 80 = 125/s), then gone.
  t.deepEqual(quarter(0.9), [695, 1000]);
  feed(h, ['n0', 'n1'], 3, () => quiet);
  // A neighbour taking 0.4: 100/s left (80/s less), beyond the noise twice: taken at the second.
  t.deepEqual(quarter(0.9), [695, 1000]);
  t.deepEqual(quarter(0.9), [556, 1000]);
  t.regex(h.evaluate()[0]?.reason ?? '', /capacity 100\/s \(a change: taken at once\)$/);
});

test('capacity: after a window beyond the noise, a throttled one (the server at its quota) confirms a fall from 1 σ; an unthrottled one needs 2 σ', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(3)}`);
  const nodes = ['n0', 'n1', 'n2'];
  for (const n of nodes) h.connect(n, 1);
  const quiet = { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 };
  feed(h, nodes, 3, () => quiet);
  // n0 and n1 read the same; only n0's cgroup was throttled. A quarter second
  // of 100/s holds 25 requests: σ = √25 / 0.25 s = 20/s.
  const quarter = (cpuUtilization: number, cpuThrottled: number): string[] => {
    h.advance(250);
    h.report('n0', { cpuUtilization, tcpAcceptsPerSecond: 100, windowMs: 250, cpuThrottled });
    h.report('n1', { cpuUtilization, tcpAcceptsPerSecond: 100, windowMs: 250, cpuThrottled: 0 });
    h.report('n2', { ...quiet, windowMs: 250 });
    return h.evaluate().map((d) => d.reason);
  };
  // 0.9: 100/s, 4 σ below 180/s; then 0.65: 150/s, 1.5 σ below.
  t.notRegex(quarter(0.9, 1)[0] ?? '', /a change/);
  const [n0, n1] = quarter(0.65, 0.5);
  // n0's change starts from the pair's worse reading (load 0.9, not 0.65): 100/s.
  t.regex(n0 ?? '', /cpu 0\.9, 5‰ cpu per connection\/s: capacity 100\/s \(a change: taken at once\)$/);
  t.notRegex(n1 ?? '', /a change/);
});

test('capacity: a falling change starts from the lower rate and the higher load of its two windows (a saturated server still accepts what its old weight sends)', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  const quiet = { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 };
  feed(h, ['n0', 'n1'], 3, () => quiet);
  const quarter = (n0: { cpuUtilization: number; tcpAcceptsPerSecond: number }): string => {
    h.advance(250);
    h.report('n0', { ...n0, windowMs: 250 });
    h.report('n1', { ...quiet, windowMs: 250 });
    return h.evaluate()[0]?.reason ?? '';
  };
  // Saturated at 100/s (80/s left), then a window of 130/s read at 0.95
  // (120/s): the second alone would be taken as 120/s, the pair as 100/s at load 1.
  quarter({ cpuUtilization: 1, tcpAcceptsPerSecond: 100 });
  t.regex(quarter({ cpuUtilization: 0.95, tcpAcceptsPerSecond: 130 }), /^100 connections\/s at cpu 1, 5‰ cpu per connection\/s: capacity 80\/s \(a change: taken at once\)$/);
  // A rise is taken from its second window as it is (recover carefully: the poller smooths it).
  feed(h, ['n0', 'n1'], 3, () => quiet);
  feed(h, ['n0', 'n1'], 3, (n) => (n === 'n0' ? { cpuUtilization: 0.9, tcpAcceptsPerSecond: 100 } : quiet));
  quarter({ cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 });
  t.regex(quarter({ cpuUtilization: 0.55, tcpAcceptsPerSecond: 110 }), /^110 connections\/s at cpu 0\.55, .*\(a change: taken at once\)$/);
});

test('capacity: a falling change skips the poller\'s smoothing, a rising one keeps it', (t) => {
  const h = harness(`    smoothing: { halfLife: 2s, halfLifeDown: 1s }\n    deadband: 0\n    slowStart: null\n    weights: { min: 0, max: 1000 }\n    strategy: { name: capacity }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  const quiet = { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 };
  feed(h, ['n0', 'n1'], 4, () => quiet);
  const second = (n0: { cpuUtilization: number; tcpAcceptsPerSecond: number }): number[] => {
    h.advance(1000);
    h.report('n0', n0);
    h.report('n1', quiet);
    return h.weights();
  };
  // The neighbour (0.4) arrives: the first second is averaged and smoothed,
  // at the second 100/s are taken at once, not half-way down (the 1 s falling half-life).
  t.true(second({ cpuUtilization: 0.9, tcpAcceptsPerSecond: 100 })[0]! > 600);
  t.deepEqual(second({ cpuUtilization: 0.9, tcpAcceptsPerSecond: 100 }), [556, 1000]);
  // It leaves: 180/s again, approached with the 2 s half-life: 100 + (1 − 2^−½) × 80 = 123/s,
  // 686 (a little less: the cost crept up while the neighbour was there).
  const back = second(quiet);
  t.true(back[0]! >= 675 && back[0]! <= 686 && back[1] === 1000, `neighbour gone: ${back}`);
});

test('capacity: long-lived connections (keep-alive) are scored by spare cores to the target, not the mean, and the request rate counts when the sample has one', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(3)}`);
  h.connect('n0', 2, { services: [{ name: 'web', port: 1 }] });
  h.connect('n1', 1, { services: [{ name: 'web', port: 2 }] });
  h.connect('n2', 1, { services: [{ name: 'web', port: 3 }] });
  // 200 connections held, one new every 2 s: they live 400 s (Little's law), far beyond 10 s.
  const keepAlive = (cpuUtilization: number) => ({ cpuUtilization, tcpAcceptsPerSecond: 0.5, services: [{ name: 'web', established: 200 }] });
  const at = (n: number, ms: number, sample: (node: string) => Record<string, unknown>): number[] => {
    for (let k = 0; k < ms / 250; k++) {
      h.advance(250);
      for (let i = 0; i < n; i++) h.report(`n${i}`, sample(`n${i}`));
      h.weights();
    }
    return h.weights();
  };
  // n0: 2 cores at 0.3 (1.2 spare to 0.9), n1: 1 core at 0.3 (0.6), n2: 1 core at 0.6 (0.3).
  const loads: Record<string, number> = { n0: 0.3, n1: 0.3, n2: 0.6 };
  t.deepEqual(at(3, 3000, (n) => keepAlive(loads[n] ?? 0)), [1000, 500, 250]);
  t.regex(h.evaluate()[0]?.reason ?? '', /^long-lived connections \(200 established, 0\.5 accepted\/s\): cpu 0\.3 of 2 cores, 1\.2 spare to the target$/);
  // The same servers reporting the requests they serve: capacity in requests/s again
  // (n0: 100/s at 0.3 of 2 cores, 3‰ per request/s: 300/s; n1: 50/s at 0.3: 150/s; n2: 50/s at 0.6: 75/s).
  const rates: Record<string, number> = { n0: 100, n1: 50, n2: 50 };
  t.deepEqual(at(3, 3000, (n) => ({ ...keepAlive(loads[n] ?? 0), rpsFractional: rates[n] })), [1000, 500, 250]);
  t.regex(h.evaluate()[0]?.reason ?? '', /^100 requests\/s at cpu 0\.3, 3‰ cpu per request\/s: capacity 300\/s$/);
  // Short connections again (2 held, 100 accepted/s): back to accepts once the lifetime falls below 5 s.
  const short = at(3, 3000, (n) => ({ cpuUtilization: loads[n] ?? 0, tcpAcceptsPerSecond: rates[n], services: [{ name: 'web', established: 2 }] }));
  t.regex(h.evaluate()[0]?.reason ?? '', /^100 connections\/s at cpu 0\.3/);
  t.deepEqual(short, [1000, 500, 250]);
});

test('capacity: a server whose samples scatter beyond Poisson noise (CPU read in short windows under a quota) stops being taken as changing', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  const quiet = { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 };
  feed(h, ['n0', 'n1'], 3, () => quiet);
  // n0's quarter-second CPU reads 0.3 twice, then 0.7 twice, and so on at the
  // same rate: 80/s from the average each time, beyond the Poisson bound
  // (2 × √25 / 0.25 s = 40/s) at first, and twice in a row the same way.
  const changes: boolean[] = [];
  for (let k = 0; k < 40; k++) {
    h.advance(250);
    h.report('n0', { cpuUtilization: k % 4 < 2 ? 0.3 : 0.7, tcpAcceptsPerSecond: 100, windowMs: 250 });
    h.report('n1', { ...quiet, windowMs: 250 });
    changes.push(/a change/.test(h.evaluate()[0]?.reason ?? ''));
  }
  t.true(changes.slice(0, 5).some((c) => c), 'the first scattered samples are changes');
  t.false(changes.slice(-20).some((c) => c), `later ones are not: ${changes.map((c) => (c ? 1 : 0)).join('')}`);
});

test('capacity: the second of two windows is judged against the noise as it was before the first, which widened it', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  const quarter = (cpuUtilization: number): string => {
    h.advance(250);
    h.report('n0', { cpuUtilization, tcpAcceptsPerSecond: 100, windowMs: 250 });
    h.report('n1', { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100, windowMs: 250 });
    return h.evaluate()[0]?.reason ?? '';
  };
  const scattered = (): void => {
    for (let k = 0; k < 12; k++) quarter(0.5);
    // A phase of scattered windows (as under a neighbour that comes and goes) widens the bound...
    for (let k = 0; k < 40; k++) quarter(k % 4 < 2 ? 0.3 : 0.7);
    for (let k = 0; k < 4; k++) quarter(0.5);
  };
  scattered();
  // ... then a neighbour saturates it: the first window alone is averaged, and
  // the same reading again is a change although the first widened the bound further.
  t.notRegex(quarter(1), /a change/);
  t.regex(quarter(1), /capacity 78\.8\/s \(a change: taken at once\)$/);
  // Within the noise as it was, the second is not.
  scattered();
  quarter(1);
  t.notRegex(quarter(0.9), /a change/);
});

test('capacity: a CPU reading above the allowance (a quota read over a short window) counts as full, not beyond', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  const quiet = { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 };
  feed(h, ['n0', 'n1'], 3, () => quiet);
  let reason = '';
  for (let k = 0; k < 2; k++) {
    h.advance(250);
    h.report('n0', { cpuUtilization: 1.36, tcpAcceptsPerSecond: 100, windowMs: 250 });
    h.report('n1', { ...quiet, windowMs: 250 });
    reason = h.evaluate()[0]?.reason ?? '';
  }
  // 100/s − (1 − 0.9) / 0.005 = 80/s (read as 1.36: 8/s).
  t.regex(reason, /^100 connections\/s at cpu 1, 5(\.01)?‰ cpu per connection\/s: capacity 80\/s \(a change: taken at once\)$/);
});

test('capacity: a server that accepts nothing in its first samples (it came before the traffic) is scored from its samples once it gets some, not taken for the mean for good', (t) => {
  const h = harness(`${NEUTRAL}    strategy: { name: capacity }\n${servers(2)}`);
  for (const n of ['n0', 'n1']) h.connect(n, 1);
  // Both idle at first: no request in the score's averages (0 / 0 once made them NaN, and the server took the mean).
  feed(h, ['n0', 'n1'], 2, () => ({ cpuUtilization: 0, tcpAcceptsPerSecond: 0 }));
  // n0 costs 0.005 per connection/s (180/s at the target), n1 twice as much (90/s).
  const weights = feed(h, ['n0', 'n1'], 4, (n) => (n === 'n0' ? { cpuUtilization: 0.5, tcpAcceptsPerSecond: 100 } : { cpuUtilization: 0.5, tcpAcceptsPerSecond: 50 }));
  t.deepEqual(weights, [1000, 500]);
  t.regex(h.evaluate()[1]?.reason ?? '', /^50 connections\/s at cpu 0\.5, 10‰ cpu per connection\/s: capacity 90\/s$/);
});
