import test from 'ava';
import { harness } from '../helpers/policy-harness.js';

const SERVERS = `    servers:
      - { node: a, address: "127.0.0.1:1" }
      - { node: b, address: "127.0.0.1:2" }
      - { address: "192.0.2.3:3" }
`;

function setup(extra = '') {
  const h = harness(`    smoothing: { halfLife: 1s }
    weights: { min: 1, max: 100 }
    deadband: 0
    slowStart: null
${extra}${SERVERS}`);
  return {
    ...h,
    connect: (nodeId: string, cores: number, addresses: string[] = []) => h.connect(nodeId, cores, { addresses }),
    report: (nodeId: string, cpu: number, psi: number | null = null) => h.report(nodeId, { cpuUtilization: cpu, psiCpuSome: psi }),
  };
}

test('servers without a live agent are quiesced, with the reason', (t) => {
  const s = setup();
  s.connect('a', 2);
  const d = s.evaluate();
  t.deepEqual(d.map((x) => [x.weight, x.reason]), [
    [0, 'agent connected, no sample yet'],
    [0, 'no agent connected'],
    [0, 'no agent connected'],
  ]);
});

test('headroom: weight follows cores × spare CPU, the best server gets max', (t) => {
  const s = setup();
  s.connect('a', 4);
  s.connect('b', 2);
  s.connect('c', 1, ['192.0.2.3']);
  s.report('a', 0.5); // 4 × 0.5 = 2
  s.report('b', 0.5); // 2 × 0.5 = 1
  s.report('c', 0.0); // 1 × 1   = 1
  const d = s.evaluate();
  t.deepEqual(d.map((x) => x.weight), [100, 50, 50]);
  t.is(d[2]?.node, 'c', 'matched by address');
  t.is(d[0]?.reason, 'cpu 0.5 of 4 cores');
});

test('headroom counts CPU pressure when it is worse than utilisation', (t) => {
  const s = setup();
  s.connect('a', 2);
  s.connect('b', 2);
  s.report('a', 0.2, 0.6); // pressure 0.6 → 2 × 0.4
  s.report('b', 0.2, 0.1); // cpu 0.2 → 2 × 0.8
  const d = s.evaluate();
  t.deepEqual(d.slice(0, 2).map((x) => x.weight), [50, 100]);
  t.regex(d[0]?.reason ?? '', /cpu pressure 0.6/);
});

test('usePressure: false ignores PSI', (t) => {
  const s = setup('    strategy: { name: headroom, usePressure: false }\n');
  s.connect('a', 2);
  s.connect('b', 2);
  s.report('a', 0.2, 0.9);
  s.report('b', 0.2, 0.0);
  t.deepEqual(s.evaluate().slice(0, 2).map((x) => x.weight), [100, 100]);
});

test('EWMA: a falling step is half absorbed after halfLifeDown, a rising one after halfLife', (t) => {
  const h = harness(`    smoothing: { halfLife: 1s, halfLifeDown: 250ms }
    deadband: 0
    slowStart: null
${SERVERS}`);
  h.connect('a', 1);
  h.connect('b', 1);
  h.report('a', { cpuUtilization: 0 });
  h.report('b', { cpuUtilization: 0 });
  t.deepEqual(h.weights().slice(0, 2), [100, 100]);
  h.advance(250);
  h.report('a', { cpuUtilization: 1 }); // raw score 1 → 0; smoothed 0.5 after one halfLifeDown
  h.report('b', { cpuUtilization: 0 });
  const d = h.evaluate();
  t.is(d[0]?.score, 0.5);
  t.deepEqual(d.slice(0, 2).map((x) => x.weight), [50, 100]);
  // Evaluating again without a new sample does not smooth twice.
  t.is(h.evaluate()[0]?.score, 0.5);
  h.advance(1000);
  h.report('a', { cpuUtilization: 0 }); // raw 0.5 → 1: halfway after one halfLife
  h.report('b', { cpuUtilization: 0 });
  t.is(h.evaluate()[0]?.score, 0.75);
});

test('EWMA: halfLifeDown defaults to the shorter of 250ms and halfLife', (t) => {
  t.is(harness(`    smoothing: { halfLife: 2s }\n${SERVERS}`).service.smoothing.halfLifeDownMs, 250);
  t.is(harness(`    smoothing: { halfLife: 100ms }\n${SERVERS}`).service.smoothing.halfLifeDownMs, 100);
  t.is(harness(`    smoothing: { halfLife: 0s }\n${SERVERS}`).service.smoothing.halfLifeDownMs, 0);
});

test('every server saturated: equal weights, none quiesced', (t) => {
  const s = setup();
  s.connect('a', 4);
  s.connect('b', 1);
  s.report('a', 1);
  s.report('b', 1);
  t.deepEqual(s.evaluate().slice(0, 2).map((x) => x.weight), [100, 100]);
});

test('a stale or disconnected node is quiesced', (t) => {
  const s = setup();
  const a = s.connect('a', 2);
  s.connect('b', 2);
  s.report('a', 0.1);
  s.report('b', 0.1);
  s.table.disconnect(a);
  const d = s.evaluate();
  t.deepEqual(d.slice(0, 2).map((x) => [x.weight, x.reason]), [
    [0, 'no agent connected'],
    [100, 'cpu 0.1 of 2 cores'],
  ]);
  t.truthy(s.table.departedInfo('a'), 'departed state kept for its return');
});
