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
