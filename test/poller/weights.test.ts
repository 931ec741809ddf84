import test from 'ava';
import { Hello, Sample } from '@loadfeed/proto';
import {
  compilePolicy,
  defaultEngines,
  defaultStrategies,
  NodeTable,
  WeightEvaluator,
  type CompiledService,
  type NodeLookup,
} from '@loadfeed/poller';

function setup(extra = '') {
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1
services:
  - name: web
    address: tcp 127.0.0.1:8080
    smoothing: { halfLife: 1s }
    weights: { min: 1, max: 100 }
    deadband: 0
    slowStart: null
    servers:
      - { node: a, address: "127.0.0.1:1" }
      - { node: b, address: "127.0.0.1:2" }
      - { address: "192.0.2.3:3" }
${extra}`,
    'p.yaml',
    defaultEngines().limits(),
  );
  let now = 0;
  const table = new NodeTable(2000, () => undefined, () => now);
  const lookup: NodeLookup = {
    all: () => table.all(),
    byId: (id) => table.get(id),
    byHost: (host) => [...table.all()].find((n) => n.hello.addresses.includes(host)),
  };
  const evaluator = new WeightEvaluator(defaultStrategies());
  const service = policy.services[0] as CompiledService;
  const seqs = new Map<string, number>();
  return {
    table,
    evaluate: () => evaluator.evaluate(service, lookup, now),
    advance: (ms: number) => {
      now += ms;
    },
    connect: (nodeId: string, cores: number, addresses: string[] = []) =>
      table.connect(Hello.create({ nodeId, cores, memoryBytes: 1e9, addresses })),
    report: (nodeId: string, cpu: number, psi: number | null = null) => {
      const node = table.get(nodeId);
      if (!node) throw new Error(`no node ${nodeId}`);
      const seq = (seqs.get(nodeId) ?? 0) + 1;
      seqs.set(nodeId, seq);
      table.accept(node, Sample.create({ seq, cpuUtilization: cpu, psiCpuSome: psi, windowMs: 1000 }));
    },
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

test('EWMA: a step is half absorbed after one half-life', (t) => {
  const s = setup();
  s.connect('a', 1);
  s.connect('b', 1);
  s.report('a', 0);
  s.report('b', 0);
  t.deepEqual(s.evaluate().slice(0, 2).map((x) => x.weight), [100, 100]);
  s.advance(1000);
  s.report('a', 1); // raw score 1 → 0; smoothed 0.5 after 1 half-life
  s.report('b', 0);
  const d = s.evaluate();
  t.is(d[0]?.score, 0.5);
  t.deepEqual(d.slice(0, 2).map((x) => x.weight), [50, 100]);
  // Evaluating again without a new sample does not smooth twice.
  t.is(s.evaluate()[0]?.score, 0.5);
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
