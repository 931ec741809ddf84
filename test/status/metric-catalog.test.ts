// Adding a metric is one catalog entry (plus its .proto field): this file
// adds one for a field the wire already carries (window_ms) and follows it
// through ingest's checks, policy expressions, /status and /metrics.
// Each ava test file runs in its own process, so the addition stays here.
import test from 'ava';
import { METRICS, type MetricDefinition } from '@loadfeed/proto';
import type { StatusDocument } from '@loadfeed/poller';
import { FakeAgent } from './fake-agent.js';
import { getJson, metric, request, startHarness } from './harness.js';
import { waitFor } from '../helpers/wait.js';

(METRICS as unknown as MetricDefinition[]).push({
  field: 'windowMs',
  wire: 'window_ms',
  unit: 'count',
  range: { min: 1, max: 60_000 },
  nullable: false,
  variable: 'window_ms',
  description: 'wall time the sample covers, ms',
  prometheus: { name: 'loadfeed_node_sample_window_ms', help: "wall time the node's latest sample covers, ms" },
});

const GUARD = '    guards:\n      - { name: long-window, when: "window_ms >= 5000", weight: 0 }\n';

test('a metric added to the catalog is checked, usable in an expression, in /status and in /metrics', async (t) => {
  const h = await startHarness(t, { policyExtra: GUARD });
  const agents = ['a1', 'a2'].map((id, i) => {
    const a = new FakeAgent(h.port, id, { services: [{ name: 'http', port: 9001 + i }] });
    t.teardown(() => a.close());
    return a;
  });
  const [a1, a2] = agents as [FakeAgent, FakeAgent];
  a1.sample({ windowMs: 5_000 });
  a2.sample({ windowMs: 1_000 });
  const server = (address: string) => h.status.document().services[0]?.servers.find((s) => s.address === address);
  await waitFor('a1 guarded, a2 weighted', () => server('127.0.0.1:9001')?.state === 'guarded' && (server('127.0.0.1:9002')?.weight ?? 0) > 0);
  t.regex(server('127.0.0.1:9001')?.reason ?? '', /long-window/, 'the guard on the new variable fixed the weight');

  const doc = await getJson<StatusDocument>(`${h.base}status`);
  const a1Status = doc.nodes.find((n) => n.id === 'a1') as unknown as Record<string, unknown> | undefined;
  t.is(a1Status?.['windowMs'], 5_000, '/status nodes[] carry it under its field name');

  const text = (await request(`${h.base}metrics`)).body;
  t.is(metric(text, 'loadfeed_node_sample_window_ms{node="a1"}'), 5_000);
  t.is(metric(text, 'loadfeed_node_sample_window_ms{node="a2"}'), 1_000);

  // Outside its range: refused, counted by its wire name, the weights untouched.
  const bad = new FakeAgent(h.port, 'a3');
  t.teardown(() => bad.close());
  bad.sample({ windowMs: 70_000 });
  const status = await bad.status;
  t.regex(status.details, /^sample\.window_ms: 70000 must be within 1\.\.60000$/);
  await waitFor('the rejection counted', () => h.poller.snapshot().ingest.rejected['sample.window_ms'] === 1);
  t.false(h.poller.snapshot().nodes.some((n) => n.id === 'a3' && n.samples > 0));
});
