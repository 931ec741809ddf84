// A per-server strategy (headroom, connections, expression) is asked about a
// server once per sample; the evaluator reuses that score until a new sample,
// a new stream or a new policy. Stateful strategies are asked every time.
import test from 'ava';
import { Hello, Sample, type SampleInit } from '@loadfeed/proto';
import { compilePolicy, defaultEngines, defaultStrategies, NodeTable, WeightEvaluator, type CompiledService } from '@loadfeed/poller';

/** An evaluator whose strategies record which servers each `weigh` call was given. */
function setup(strategyYaml: string) {
  const asked: string[][] = [];
  const strategies = defaultStrategies();
  for (const name of ['headroom', 'pid']) {
    const s = strategies.get(name);
    strategies.register({ ...s, weigh: (config, servers, state, now) => (asked.push(servers.map((x) => x.nodeId)), s.weigh(config, servers, state, now)) });
  }
  const compile = (strategy: string): CompiledService =>
    compilePolicy(
      `apiVersion: loadfeed/v1
services:
  - name: web
    address: tcp 127.0.0.1:8080
    strategy: ${strategy}
    smoothing: { halfLife: 0s }
    deadband: 0
    slowStart: null
    servers:
      - { node: a, address: "127.0.0.1:1" }
      - { node: b, address: "127.0.0.1:2" }
`,
      'test.yaml',
      defaultEngines().limits(),
    ).services[0] as CompiledService;
  let now = 0;
  const table = new NodeTable(60_000, () => undefined, () => now);
  const evaluator = new WeightEvaluator(strategies);
  let seq = 0;
  const report = (nodeId: string, sample: Partial<SampleInit>): void => {
    const node = table.get(nodeId) ?? table.connect(Hello.create({ nodeId, cores: 1, memoryBytes: 1e9 }));
    table.accept(node, Sample.create({ seq: ++seq, windowMs: 1000, ...sample }));
  };
  let service = compile(strategyYaml);
  return {
    asked,
    report,
    reload: (strategy: string) => (service = compile(strategy)),
    evaluate: () => {
      now += 1000;
      asked.length = 0;
      return evaluator.evaluate(service, table.lookup(), now).map((d) => [d.weight, d.reason]);
    },
  };
}

test('a per-server strategy is asked again only about a server with a new sample', (t) => {
  const h = setup('{ name: headroom }');
  h.report('a', { cpuUtilization: 0.5 });
  h.report('b', { cpuUtilization: 0 });
  t.deepEqual(h.evaluate(), [[50, 'cpu 0.5 of 1 cores'], [100, 'cpu 0 of 1 cores']]);
  t.deepEqual(h.asked, [['a', 'b']]);
  t.deepEqual(h.evaluate(), [[50, 'cpu 0.5 of 1 cores'], [100, 'cpu 0 of 1 cores']], 'the kept scores decide as before');
  t.deepEqual(h.asked, [[]]);
  h.report('a', { cpuUtilization: 0.75 });
  t.deepEqual(h.evaluate(), [[25, 'cpu 0.75 of 1 cores'], [100, 'cpu 0 of 1 cores']]);
  t.deepEqual(h.asked, [['a']]);
});

test('a kept score is recomputed when the strategy settings change', (t) => {
  const h = setup('{ name: headroom }');
  h.report('a', { cpuUtilization: 0.25, psiCpuSome: 0.5 });
  h.report('b', { cpuUtilization: 0 });
  t.deepEqual(h.evaluate(), [[50, 'cpu pressure 0.5 of 1 cores'], [100, 'cpu 0 of 1 cores']]);
  h.reload('{ name: headroom, usePressure: false }');
  t.deepEqual(h.evaluate(), [[75, 'cpu 0.25 of 1 cores'], [100, 'cpu 0 of 1 cores']]);
  t.deepEqual(h.asked, [['a', 'b']]);
});

test('a stateful strategy is asked about every live server on every evaluation', (t) => {
  const h = setup('{ name: pid }');
  h.report('a', { cpuUtilization: 0.5 });
  h.report('b', { cpuUtilization: 0.5 });
  h.evaluate();
  h.evaluate();
  t.deepEqual(h.asked, [['a', 'b']]);
});
