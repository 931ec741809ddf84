import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { compilePolicy, defaultEngines, defaultStrategies, formatSimulation, readTrace, simulate, type TraceEvent } from '@loadfeed/poller';

const POLICY = compilePolicy(
  `apiVersion: loadfeed/v1
services:
  - name: web
    address: tcp 10.0.0.1:80
    strategy: { name: headroom }
    smoothing: { halfLife: 0s }
    slowStart: null
    deadband: 0
    servers:
      - { node: a, address: "10.0.0.2:80" }
      - { node: b, address: "10.0.0.3:80" }
`,
  'p.yaml',
  defaultEngines().limits(),
);

const hello = (node: string, cores: number): TraceEvent => ({ t: 0, type: 'hello', node, hello: { nodeId: node, cores, memoryBytes: 1e9 } });
const sample = (t: number, node: string, seq: number, cpu: number): TraceEvent => ({ t, type: 'sample', node, sample: { seq, cpuUtilization: cpu, windowMs: 1000 } });

const TRACE: TraceEvent[] = [
  hello('a', 2),
  hello('b', 2),
  sample(1000, 'a', 1, 0.5),
  sample(1000, 'b', 2, 0),
  sample(2000, 'a', 2, 0.5),
  sample(2000, 'b', 3, 0),
  // b goes silent: stale 2 s after its last sample.
  sample(3000, 'a', 3, 0.5),
  sample(4000, 'a', 4, 0.5),
  { t: 4500, type: 'drain', node: 'a', reason: 'deploy' },
  { t: 6000, type: 'end', node: 'a' },
];

test('a trace replays into weights over time with the reason for each change', (t) => {
  const r = simulate(POLICY, TRACE, defaultStrategies(), 1000);
  t.deepEqual(r.columns, ['web/10.0.0.2:80', 'web/10.0.0.3:80']);
  t.deepEqual(
    r.changes.map((c) => [c.t, c.server, c.from, c.to, c.state]),
    [
      [0, '10.0.0.2:80', null, 0, 'absent'],
      [0, '10.0.0.3:80', null, 0, 'absent'],
      [1000, '10.0.0.2:80', 0, 50, 'live'],
      [1000, '10.0.0.3:80', 0, 100, 'live'],
      // The sweep runs every 100 ms: b's last sample at 2000 is stale by 4000 (staleAfter 2 s), not a sweep later.
      [4000, '10.0.0.2:80', 50, 100, 'live'],
      [4000, '10.0.0.3:80', 100, 0, 'stale'],
      // a drains: rather than black-hole the service, b gets its last good weight back.
      [4500, '10.0.0.2:80', 100, 0, 'drained'],
      [4500, '10.0.0.3:80', 0, 100, 'fallback'],
    ],
  );
  t.is(r.changes[5]?.reason, 'agent silent: no sample within the stale deadline');
  t.deepEqual(r.series.find((row) => row.t === 2000)?.weights, [50, 100]);
});

test('replay is deterministic, in every output format', (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b'), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 3000 })), { maxLength: 30 }), (steps) => {
      let time = 0;
      const seqs: Record<string, number> = { a: 0, b: 0 };
      const trace: TraceEvent[] = [hello('a', 1), hello('b', 4)];
      for (const [node, cpu, gap] of steps) {
        time += gap;
        seqs[node] = (seqs[node] ?? 0) + 1;
        trace.push(sample(time, node, seqs[node] ?? 1, cpu));
      }
      const one = simulate(POLICY, trace, defaultStrategies(), 500);
      const two = simulate(POLICY, trace, defaultStrategies(), 500);
      return (['table', 'csv', 'json'] as const).every((f) => formatSimulation(one, f) === formatSimulation(two, f));
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('CSV has one row per change with its reason, quoted when needed', (t) => {
  const csv = formatSimulation(simulate(POLICY, TRACE, defaultStrategies(), 1000), 'csv').split('\n');
  t.is(csv[0], 't_ms,service,server,node,from,to,state,reason');
  t.is(csv[3], '1000,web,10.0.0.2:80,a,0,50,live,cpu 0.5 of 2 cores');
  t.is(csv.filter((l) => l !== '').length, 9);
});

test('traces are read back as written, and bad lines are named', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-trace-'));
  const good = path.join(dir, 'good.jsonl');
  writeFileSync(good, `${TRACE.map((e) => JSON.stringify(e)).join('\n')}\n`);
  t.deepEqual(await readTrace(good), TRACE);
  const bad = path.join(dir, 'bad.jsonl');
  writeFileSync(bad, `${JSON.stringify(TRACE[0])}\n{"t":-5,"type":"end","node":"a"}\n`);
  await t.throwsAsync(readTrace(bad), { message: `${bad}:2: t: -5 goes back in time (previous 0)` });
  writeFileSync(bad, '{"t":1,"type":"sample","node":"a"}\n');
  await t.throwsAsync(readTrace(bad), { message: /bad.jsonl:1: type: "sample" must be hello, sample, drain, undrain or end with its payload/ });
});

test('a recorded trace with application metrics replays them: the queue strategy follows in-flight and latency', async (t) => {
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1
services:
  - name: api
    address: tcp 10.0.0.1:80
    smoothing: { halfLife: 0s }
    slowStart: null
    deadband: 0
    strategy: { name: queue }
    servers:
      - { node: a, address: "10.0.0.2:80" }
      - { node: b, address: "10.0.0.3:80" }
`,
    'p.yaml',
    defaultEngines().limits(),
  );
  const app = (t: number, node: string, seq: number, inFlight: number, latency: number): TraceEvent => ({
    t,
    type: 'sample',
    node,
    sample: { seq, cpuUtilization: 0.02, windowMs: 1000, rpsFractional: 10, namedMetrics: { in_flight: inFlight, latency_seconds: latency, concurrency: 4 } },
  });
  // Written and read back as the poller's --record writes it: JSON lines.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-trace-app-'));
  const file = path.join(dir, 'trace.jsonl');
  const events = [hello('a', 2), hello('b', 2), app(1000, 'a', 1, 1, 0.05), app(1000, 'b', 1, 1, 0.05), app(2000, 'a', 2, 1, 0.05), app(2000, 'b', 2, 11, 0.2)];
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
  const r = simulate(policy, await readTrace(file), defaultStrategies(), 1000);
  t.deepEqual(r.series.find((row) => row.t === 1000)?.weights, [100, 100]);
  // b's dependency slowed (0.2 s) and its queue grew (11 in flight on 4 workers): 20/s × 4/12 against 80/s.
  t.deepEqual(r.series.find((row) => row.t === 2000)?.weights, [100, 8]);
  t.regex(r.changes.at(-1)?.reason ?? '', /in flight 11 of 4 workers, latency 0\.2 s/);
});
