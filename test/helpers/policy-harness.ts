// A policy evaluated against a node table on a virtual clock: unit tests of
// strategies and wrappers feed samples and read decisions without sockets.
import { Hello, Sample, type SampleInit } from '@loadfeed/proto';
import {
  compilePolicy,
  defaultEngines,
  defaultStrategies,
  type EngineRegistry,
  NodeTable,
  WeightEvaluator,
  type CompiledPolicy,
  type CompiledService,
  type NodeRecord,
  type WeightDecision,
} from '@loadfeed/poller';

export interface Harness {
  readonly table: NodeTable;
  readonly service: CompiledService;
  evaluate(): WeightDecision[];
  weights(): number[];
  advance(ms: number): void;
  now(): number;
  connect(nodeId: string, cores: number, extra?: { addresses?: string[]; labels?: Record<string, string>; services?: { name: string; port: number }[] }): NodeRecord;
  report(nodeId: string, sample: Partial<SampleInit>): void;
  /** Weights the engine had when the poller started (WeightEvaluator.adopt). */
  adopt(weights: Record<string, number>, graceMs: number): void;
}

/**
 * The default engines and a policy of one service, web on the memory engine
 * at tcp 10.0.0.1:80, for tests that run a whole Poller. `serviceYaml` is the
 * rest of the service (indented 4 spaces); `topYaml` goes before `services:`.
 */
export function memoryWebPolicy(serviceYaml: string, topYaml = ''): { engines: EngineRegistry; policy: CompiledPolicy } {
  const engines = defaultEngines();
  const text = `apiVersion: loadfeed/v1\n${topYaml}services:\n  - name: web\n    engine: memory\n    address: tcp 10.0.0.1:80\n${serviceYaml}`;
  return { engines, policy: compilePolicy(text, 'p.yaml', engines.limits()) };
}

/**
 * `serviceYaml` is the body of one service (indented 4 spaces) after its
 * name. Without a strategy of its own the service scores with `headroom`,
 * whose scores follow from a sample's CPU alone: the wrappers' tests need
 * no request rates.
 */
export function harness(serviceYaml: string): Harness {
  const strategy = /^ {4}strategy:/m.test(serviceYaml) ? '' : '    strategy: { name: headroom }\n';
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1\nservices:\n  - name: web\n    address: tcp 127.0.0.1:8080\n${strategy}${serviceYaml}`,
    'test.yaml',
    defaultEngines().limits(),
  );
  let now = 0;
  const table = new NodeTable(policy.liveness.staleAfterMs, () => undefined, () => now);
  const evaluator = new WeightEvaluator(defaultStrategies());
  const service = policy.services[0] as CompiledService;
  const seqs = new Map<string, number>();
  const evaluate = (): WeightDecision[] => evaluator.evaluate(service, table.lookup(), now);
  return {
    table,
    service,
    evaluate,
    weights: () => evaluate().map((d) => d.weight),
    advance: (ms) => {
      now += ms;
    },
    now: () => now,
    connect: (nodeId, cores, extra = {}) =>
      table.connect(Hello.create({ nodeId, cores, memoryBytes: 1e9, addresses: extra.addresses ?? [], labels: extra.labels ?? {}, services: extra.services ?? [] })),
    adopt: (weights, graceMs) => evaluator.adopt(service, new Map(Object.entries(weights)), now, graceMs),
    report: (nodeId, sample) => {
      const node = table.get(nodeId);
      if (!node) throw new Error(`no node ${nodeId}`);
      const seq = (seqs.get(nodeId) ?? 0) + 1;
      seqs.set(nodeId, seq);
      table.accept(node, Sample.create({ seq, windowMs: 1000, ...sample }));
    },
  };
}
