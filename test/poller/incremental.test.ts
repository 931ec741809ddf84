// Incremental evaluation (WeightEvaluator.update, what the poller runs
// between its full cycles) against full passes over the same traces: the
// same weights, states and reasons at every step, whatever the policy's
// wrappers. The traces go through a file as `--record` writes them.
import test from 'ava';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { Hello, Sample } from '@loadfeed/proto';
import { compilePolicy, defaultEngines, defaultStrategies, NodeTable, readTrace, simulate, WeightEvaluator, type CompiledService, type NodeRecord, type TraceEvent } from '@loadfeed/poller';

const NODES = ['a', 'b', 'c', 'd', 'e'];

/** One service over NODES with the given settings (YAML lines, indented 4). */
function policyOf(settings: readonly string[]): ReturnType<typeof compilePolicy> {
  return compilePolicy(
    [
      'apiVersion: loadfeed/v1',
      'services:',
      '  - name: web',
      '    address: tcp 10.0.0.1:80',
      ...settings.map((s) => `    ${s}`),
      '    servers:',
      ...NODES.map((n, i) => `      - { node: ${n}, address: "10.0.1.${i + 1}:80" }`),
    ].join('\n'),
    'p.yaml',
    defaultEngines().limits(),
  );
}

const oneOf = <T>(...xs: T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);

/** Policy settings: every wrapper that could make a weight depend on more than the server's own news. */
const settings = fc
  .record({
    strategy: oneOf('{ name: headroom }', '{ name: connections }', '{ name: expression, score: "cores * (1 - cpu)" }', '{ name: pid }'),
    halfLife: oneOf('0s', '1s', '2s'),
    deadband: oneOf(0, 0.05, 0.2),
    maxChangePerSecond: oneOf('null', '0.5'),
    weights: oneOf('{ min: 1, max: 100, quantum: 1 }', '{ min: 0, max: 100, quantum: 5 }', '{ min: 1, max: 20, quantum: 1 }'),
    meanBand: oneOf('null', '{ min: 0.5, max: 2 }'),
    shareCap: oneOf('null', '0.4'),
    slowStart: oneOf('null', '{ duration: 3s, from: 0.1 }'),
    blackout: oneOf('0s', '1s'),
    guards: oneOf('[]', '[{ name: hot, when: "cpu > 0.95", weight: 3 }]', '[{ name: off, when: "cpu > 0.95", weight: 0 }]'),
    stale: oneOf('{ action: quiesce }', '{ action: hold, holdFor: 2s }'),
    allZero: oneOf('keep-last', 'equal'),
  })
  .map((s) => [
    `strategy: ${s.strategy}`,
    `smoothing: { halfLife: ${s.halfLife} }`,
    `deadband: ${s.deadband}`,
    `maxChangePerSecond: ${s.maxChangePerSecond}`,
    `weights: ${s.weights}`,
    `meanBand: ${s.meanBand}`,
    `shareCap: ${s.shareCap}`,
    `slowStart: ${s.slowStart}`,
    `blackout: ${s.blackout}`,
    `guards: ${s.guards}`,
    `stale: ${s.stale}`,
    `allZero: ${s.allZero}`,
  ]);

/** Agents connecting, reporting (often at the same time, sometimes going silent), draining and leaving. */
const trace = fc
  .array(
    fc.record({
      gap: oneOf(0, 0, 50, 100, 250, 400, 1000, 2500),
      node: oneOf(...NODES),
      what: oneOf<TraceEvent['type']>('sample', 'sample', 'sample', 'sample', 'sample', 'hello', 'drain', 'undrain', 'end'),
      cpu: oneOf(0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1),
      connections: fc.integer({ min: 0, max: 50 }),
      cores: oneOf(1, 2, 4),
    }),
    { minLength: 1, maxLength: 120 },
  )
  .map((steps) => {
    let t = 0;
    let seq = 0;
    const events: TraceEvent[] = NODES.slice(0, 3).map((node) => ({ t: 0, type: 'hello', node, hello: { nodeId: node, cores: 2, memoryBytes: 1e9, services: [{ name: 'web', port: 80 }] } }));
    for (const s of steps) {
      t += s.gap;
      seq += 1;
      if (s.what === 'sample') {
        events.push({ t, type: 'sample', node: s.node, sample: { seq, windowMs: 1000, cpuUtilization: s.cpu, services: [{ name: 'web', established: s.connections }] } });
      } else if (s.what === 'hello') {
        events.push({ t, type: 'hello', node: s.node, hello: { nodeId: s.node, cores: s.cores, memoryBytes: 1e9, services: [{ name: 'web', port: 80 }] } });
      } else if (s.what === 'drain') events.push({ t, type: 'drain', node: s.node, reason: 'deploy' });
      else events.push({ t, type: s.what === 'undrain' ? 'undrain' : 'end', node: s.node });
    }
    return events;
  });

test('incremental passes decide what full passes decide, over recorded traces and any wrappers', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-incremental-'));
  const file = path.join(dir, 'trace.jsonl');
  const out = await fc.check(
    fc.asyncProperty(settings, trace, async (lines, events) => {
      writeFileSync(file, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
      const recorded = await readTrace(file);
      const policy = policyOf(lines);
      const full = simulate(policy, recorded, defaultStrategies(), 250, { passes: 'full' });
      const incremental = simulate(policy, recorded, defaultStrategies(), 250, { passes: 'incremental' });
      assert.deepStrictEqual(incremental.changes, full.changes);
      assert.deepStrictEqual(incremental.series, full.series);
    }),
    { numRuns: 300 },
  );
  t.false(out.failed, fc.defaultReportMessage(out) ?? '');
  t.is(out.numRuns, 300);
});

test('an incremental pass re-evaluates only the servers with news and names the decisions that changed', (t) => {
  const policy = policyOf(['strategy: { name: headroom }', 'slowStart: null', 'smoothing: { halfLife: 0s }', 'deadband: 0']);
  const service = policy.services[0] as CompiledService;
  let now = 0;
  const news = new Set<NodeRecord>();
  const table = new NodeTable(policy.liveness.staleAfterMs, (e) => news.add(e.node), () => now, (node) => news.add(node));
  const update = () => {
    const e = evaluator.update(service, table.lookup(), now, news);
    news.clear();
    return e;
  };
  const evaluator = new WeightEvaluator(defaultStrategies());
  const report = (node: string, seq: number, cpu: number): void => table.accept(table.get(node) as NonNullable<ReturnType<NodeTable['get']>>, Sample.create({ seq, windowMs: 1000, cpuUtilization: cpu }));
  for (const n of NODES) table.connect(Hello.create({ nodeId: n, cores: 1, memoryBytes: 1e9 }));
  NODES.forEach((n, i) => report(n, 1, i === 0 ? 0 : 0.5));
  const first = update();
  t.is(first.changed, null, 'the first pass is a full one');
  t.deepEqual(first.decisions.map((d) => d.weight), [100, 50, 50, 50, 50]);

  now += 1000;
  report('c', 2, 0.75);
  const second = update();
  t.deepEqual(second.changed, [2]);
  t.deepEqual(second.decisions.map((d) => d.weight), [100, 50, 25, 50, 50]);
  second.decisions.forEach((d, i) => {
    if (i !== 2) t.true(d === first.decisions[i], `server ${i} without news keeps its decision`);
  });

  now += 1000;
  const quiet = update();
  t.deepEqual(quiet.changed, [], 'no news, no change');
  t.is(quiet.decisions, second.decisions);

  // The best server gets busier: the scale changes, and so does every weight.
  now += 1000;
  report('a', 2, 0.5);
  const rescaled = update();
  t.deepEqual(rescaled.decisions.map((d) => d.weight), [100, 100, 50, 100, 100]);
  t.deepEqual(rescaled.changed, [1, 2, 3, 4]);
  t.deepEqual(rescaled.decisions, evaluator.evaluate(service, table.lookup(), now), 'a full pass agrees');
});
