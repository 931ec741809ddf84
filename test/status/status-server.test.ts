// The poller's status server against a real poller: agents stream over
// real gRPC, weights go into the memory engine, and every endpoint is read
// over real HTTP on loopback.
import test, { type ExecutionContext } from 'ava';
import type { Engine } from '@loadfeed/kernel-bridge';
import { compilePolicy, defaultEngines, StatusServer, type HistoryDocument, type StatusDocument } from '@loadfeed/poller';
import { pino } from 'pino';
import { waitFor } from '../helpers/wait.js';
import { FakeAgent } from './fake-agent.js';
import { getJson, metric, policyText, request, startHarness, type Harness } from './harness.js';

async function statusOf(h: Harness): Promise<StatusDocument> {
  return getJson<StatusDocument>(`${h.base}status`);
}

/** Wait until every server of the service has a weight > 0 in the status server's view. */
async function weighted(h: Harness, count: number): Promise<void> {
  await waitFor(`${count} servers with a weight`, () => (h.status.document().services[0]?.servers.filter((s) => s.weight > 0).length ?? 0) >= count);
}

function agent(t: ExecutionContext, h: Harness, id: string, port: number): FakeAgent {
  const a = new FakeAgent(h.port, id, { services: [{ name: 'http', port }] });
  t.teardown(() => a.close());
  return a;
}

test('/status joins every server with its agent\'s load, state, reason and share', async (t) => {
  const h = await startHarness(t);
  const a1 = agent(t, h, 'a1', 9001);
  const a2 = agent(t, h, 'a2', 9002);
  a1.sample({ cpuUtilization: 0.2, memUtilization: 0.5, psiCpuSome: 0.04, services: [{ name: 'http', established: 7 }] });
  a2.sample({ cpuUtilization: 0.6, services: [{ name: 'http', established: 3 }] });
  await weighted(h, 2);

  const doc = await statusOf(h);
  t.is(doc.version, 1);
  t.is(doc.health.status, 'ok');
  t.deepEqual(doc.health.reasons, []);
  t.is(doc.policy.file, 'test.yaml');
  t.deepEqual(doc.policy.refused, []);
  t.is(doc.engineError, null);
  t.true(doc.ingest.accepted >= 2);
  t.deepEqual(doc.nodes.map((n) => n.id).sort(), ['a1', 'a2']);
  const [service] = doc.services;
  t.is(service?.name, 'web');
  t.is(service?.engine, 'memory');
  const s1 = service?.servers.find((s) => s.node === 'a1');
  const s2 = service?.servers.find((s) => s.node === 'a2');
  if (!service || !s1 || !s2) return t.fail('both servers are in the document');
  t.is(s1.address, '127.0.0.1:9001');
  t.is(s1.state, 'live');
  t.is(s1.nodeState, 'live');
  t.is(s1.cpu, 0.2);
  t.is(s1.memory, 0.5);
  t.is(s1.psi.cpu, 0.04);
  // The same values in `metrics`, by the catalog's field names (the fields above are kept for older readers).
  t.is(s1.metrics.cpuUtilization, 0.2);
  t.is(s1.metrics.memUtilization, 0.5);
  t.is(s1.metrics.psiCpuSome, 0.04);
  t.is(s1.connections, 7);
  t.is(s2.connections, 3);
  t.regex(s1.reason, /cpu/);
  t.true(s1.weight > s2.weight, 'the less busy server weighs more');
  t.is(service.totalWeight, s1.weight + s2.weight);
  t.true(Math.abs(s1.share + s2.share - 1) < 1e-9);
  // Every change so far came from nothing: the first weights.
  t.true(doc.changes.length >= 2);
  t.true(doc.changes.every((c) => c.service === 'web' && c.to !== c.from));
  t.true(doc.changes.some((c) => c.server === '127.0.0.1:9001' && c.node === 'a1' && c.reason !== ''));
});

test('a server whose agent goes away shows it: absent in /status, its node series gone from /metrics', async (t) => {
  const h = await startHarness(t);
  const a1 = agent(t, h, 'a1', 9001);
  const a2 = agent(t, h, 'a2', 9002);
  a1.sample();
  a2.sample();
  await weighted(h, 2);
  const before = (await request(`${h.base}metrics`)).body;
  t.is(metric(before, 'loadfeed_node_up{node="a2"}'), 1);
  t.is(metric(before, 'loadfeed_nodes{state="live"}'), 2);

  a2.close();
  await waitFor('a2 quiesced', () => h.status.document().services[0]?.servers.find((s) => s.address === '127.0.0.1:9002')?.state === 'absent');
  const doc = await statusOf(h);
  const gone = doc.services[0]?.servers.find((s) => s.address === '127.0.0.1:9002');
  t.is(gone?.weight, 0);
  t.is(gone?.node, 'a2', 'the node the server expects');
  t.is(gone?.nodeState, null, 'no agent reports for it');
  t.is(gone?.cpu, null);
  t.regex(gone?.reason ?? '', /no agent/);
  t.deepEqual(doc.nodes.map((n) => n.id), ['a1']);
  const last = doc.changes.at(-1);
  t.like(last, { server: '127.0.0.1:9002', to: 0, state: 'absent' });

  const after = (await request(`${h.base}metrics`)).body;
  t.deepEqual(after.split('\n').filter((l) => l.startsWith('loadfeed_node_') && l.includes('node="a2"')), [], 'no node series of the departed node');
  t.is(metric(after, 'loadfeed_node_up{node="a1"}'), 1);
  t.is(metric(after, 'loadfeed_nodes{state="live"}'), 1);
  t.is(metric(after, 'loadfeed_server_weight{service="web",server="127.0.0.1:9002",node="a2"}'), 0);
  t.is(metric(after, 'loadfeed_server_state{service="web",server="127.0.0.1:9002",state="absent"}'), 1);
});

test('/metrics: load per node, samples accepted and rejected by reason, latency histograms, weight changes', async (t) => {
  const h = await startHarness(t);
  const a1 = agent(t, h, 'a1', 9001);
  a1.sample({ cpuUtilization: 0.25, memUtilization: 0.5, psiCpuSome: 0.1, psiMemorySome: 0.02, psiIoSome: 0.3, tcpEstablished: 40, services: [{ name: 'http', established: 5 }] });
  await weighted(h, 1);
  // A message that breaks the contract is refused and counted by the field that failed.
  const bad = new FakeAgent(h.port, 'a2');
  t.teardown(() => bad.close());
  bad.sample({ seq: 1 } as never);
  bad.write({ sample: { seq: 1, timestampMs: Date.now(), windowMs: 1000 } });
  await bad.status;
  await waitFor('the rejection counted', () => Object.keys(h.poller.snapshot().ingest.rejected).length > 0);

  const reply = await request(`${h.base}metrics`);
  t.is(reply.status, 200);
  t.regex(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const m = reply.body;
  t.is(metric(m, 'loadfeed_node_cpu_utilization{node="a1"}'), 0.25);
  t.is(metric(m, 'loadfeed_node_memory_utilization{node="a1"}'), 0.5);
  t.is(metric(m, 'loadfeed_node_cores{node="a1"}'), 2);
  t.is(metric(m, 'loadfeed_node_pressure_some_ratio{node="a1",resource="cpu"}'), 0.1);
  t.is(metric(m, 'loadfeed_node_pressure_some_ratio{node="a1",resource="memory"}'), 0.02);
  t.is(metric(m, 'loadfeed_node_pressure_some_ratio{node="a1",resource="io"}'), 0.3);
  t.is(metric(m, 'loadfeed_node_tcp_established{node="a1"}'), 40);
  t.is(metric(m, 'loadfeed_server_connections{service="web",server="127.0.0.1:9001"}'), 5);
  t.true((metric(m, 'loadfeed_server_weight{service="web",server="127.0.0.1:9001",node="a1"}') ?? 0) > 0);
  t.is(metric(m, 'loadfeed_samples_accepted_total'), h.poller.snapshot().ingest.accepted);
  t.is(metric(m, 'loadfeed_samples_rejected_total{reason="sample.seq"}'), 1);
  t.true((metric(m, 'loadfeed_ingest_to_weight_seconds_count') ?? 0) >= 1, 'ingest-to-weight observed');
  t.true((metric(m, 'loadfeed_engine_apply_seconds_count{engine="memory"}') ?? 0) >= 1, 'engine apply observed');
  t.true((metric(m, 'loadfeed_weight_changes_total{service="web"}') ?? 0) >= 1);
  t.is(metric(m, 'loadfeed_policy_reloads_total{result="ok"}'), 0);
  t.is(metric(m, 'loadfeed_policy_reloads_total{result="refused"}'), 0);
  t.is(metric(m, 'loadfeed_degraded'), 0);
  t.is(metric(m, 'loadfeed_metrics_series_omitted{kind="node"}'), 0);
  t.true(m.includes('process_resident_memory_bytes'), 'process metrics too');
});

test('/metrics keeps per-node series under the cap and counts the rest', async (t) => {
  const h = await startHarness(t, { nodes: ['a1', 'a2', 'a3'], maxNodeSeries: 2 });
  for (const [i, id] of ['a1', 'a2', 'a3'].entries()) agent(t, h, id, 9001 + i).sample();
  await weighted(h, 3);
  const m = (await request(`${h.base}metrics`)).body;
  t.is(m.split('\n').filter((l) => l.startsWith('loadfeed_node_up{')).length, 2);
  t.is(m.split('\n').filter((l) => l.startsWith('loadfeed_server_weight{')).length, 2);
  t.is(metric(m, 'loadfeed_metrics_series_omitted{kind="node"}'), 1);
  t.is(metric(m, 'loadfeed_metrics_series_omitted{kind="server"}'), 1);
  t.is(metric(m, 'loadfeed_nodes{state="live"}'), 3, 'totals still count every node');
});

test('/healthz: ok; degraded with the refused file\'s problem; ok again after a good reload', async (t) => {
  const h = await startHarness(t);
  const ok = await request(`${h.base}healthz`);
  t.is(ok.status, 200);
  t.is(ok.body, 'ok\n');

  h.poller.refusePolicy([
    { file: 'test.yaml', line: 9, path: 'services[0].weights.min', message: '120 must be <= weights.max (100)' },
    { file: 'test.yaml', line: 12, path: 'services[0].engine', message: '"ipvx" is not an engine' },
  ]);
  const bad = await request(`${h.base}healthz`);
  t.is(bad.status, 503);
  t.is(
    bad.body,
    'degraded: policy test.yaml refused: test.yaml:9: services[0].weights.min: 120 must be <= weights.max (100) (and 1 more); the last good policy stays in force\n',
  );
  const doc = await statusOf(h);
  t.is(doc.health.status, 'degraded');
  t.deepEqual(doc.policy.refused, ['test.yaml:9: services[0].weights.min: 120 must be <= weights.max (100)', 'test.yaml:12: services[0].engine: "ipvx" is not an engine']);
  let m = (await request(`${h.base}metrics`)).body;
  t.is(metric(m, 'loadfeed_policy_reloads_total{result="refused"}'), 1);
  t.is(metric(m, 'loadfeed_policy_refused'), 1);
  t.is(metric(m, 'loadfeed_degraded'), 1);

  h.poller.setPolicy(compilePolicy(policyText(['a1', 'a2']), 'test.yaml', defaultEngines().limits()));
  t.is((await request(`${h.base}healthz`)).status, 200);
  m = (await request(`${h.base}metrics`)).body;
  t.is(metric(m, 'loadfeed_policy_reloads_total{result="ok"}'), 1);
  t.is(metric(m, 'loadfeed_degraded'), 0);
  t.is((await statusOf(h)).policy.reloads.ok, 1);
});

test('/healthz: degraded while the engine fails, ok once it applies again', async (t) => {
  let broken = true;
  const engines = defaultEngines();
  const memory = engines.get('memory');
  if (!memory) return t.fail('the memory engine is registered');
  // The memory engine, whose apply fails while `broken`.
  engines.register({
    ...memory,
    create: (...args: Parameters<typeof memory.create>): Engine => {
      const inner = memory.create(...args);
      return {
        ...inner,
        observe: () => inner.observe(),
        close: () => inner.close(),
        apply: async (ops) => {
          if (broken) throw new Error('simulated engine failure');
          await inner.apply(ops);
        },
      } as Engine;
    },
  }, (config) => config);
  const h = await startHarness(t, { engines });
  await waitFor('the engine error', () => h.poller.snapshot().engineError !== null);
  const bad = await request(`${h.base}healthz`);
  t.is(bad.status, 503);
  t.regex(bad.body, /^degraded: engine failing: memory: simulated engine failure\n$/);
  t.true((metric((await request(`${h.base}metrics`)).body, 'loadfeed_engine_apply_failures_total{engine="memory"}') ?? 0) >= 1);

  broken = false; // the poller retries after a failure by itself
  await waitFor('the engine to recover', () => h.poller.snapshot().engineError === null, 5_000);
  const ok = await request(`${h.base}healthz`);
  t.is(ok.status, 200);
  t.is(ok.body, 'ok\n');
});

test('/status/history: a frame per step; ?since returns only newer frames', async (t) => {
  const h = await startHarness(t, { historyStepMs: 50 });
  const a1 = agent(t, h, 'a1', 9001);
  a1.sample({ cpuUtilization: 0.4 });
  await weighted(h, 1);
  let all: HistoryDocument = { stepMs: 0, omitted: 0, services: [] };
  await waitFor('frames with a weight', () => {
    all = h.status['history'].since(0);
    return (all.services[0]?.servers.find((s) => s.address === '127.0.0.1:9001')?.weight.filter((w) => w !== null && w > 0).length ?? 0) >= 3;
  });
  const served = await getJson<HistoryDocument>(`${h.base}status/history`);
  t.is(served.stepMs, 50);
  const web = served.services[0];
  if (!web) return t.fail('the service has a history');
  t.is(web.name, 'web');
  const s1 = web.servers.find((s) => s.address === '127.0.0.1:9001');
  t.is(s1?.node, 'a1');
  for (const column of [s1?.weight, s1?.metrics['cpuUtilization'], s1?.metrics['memUtilization'], s1?.connections]) t.is(column?.length, web.t.length, 'columns align with t');
  t.is(s1?.metrics['cpuUtilization']?.at(-1), 0.4);
  t.true(web.t.every((x, i) => i === 0 || x >= (web.t[i - 1] ?? 0)), 'oldest first');

  const cut = web.t[web.t.length - 2] ?? 0;
  const newer = await getJson<HistoryDocument>(`${h.base}status/history?since=${cut}`);
  t.true((newer.services[0]?.t.length ?? 0) >= 1);
  t.true(newer.services[0]?.t.every((x) => x > cut) ?? false);
  t.is((await request(`${h.base}status/history?since=yesterday`)).status, 400);
});

test('read-only and loopback-only; the dashboard and uPlot come from the package', async (t) => {
  const h = await startHarness(t);
  const post = await request(`${h.base}status`, { method: 'POST' });
  t.is(post.status, 405);
  t.is(post.headers.allow, 'GET, HEAD');
  const rebinding = await request(`${h.base}status`, { headers: { host: 'attacker.example:7416' } });
  t.is(rebinding.status, 421, 'a page served by another name cannot read the status (DNS rebinding)');
  t.is((await request(`${h.base}status`, { headers: { host: 'localhost:7416' } })).status, 200);
  const missing = await request(`${h.base}nothing-here`);
  t.is(missing.status, 404);
  t.regex(missing.body, /\/metrics/);

  const page = await request(h.base);
  t.is(page.status, 200);
  t.regex(String(page.headers['content-type']), /^text\/html/);
  t.regex(String(page.headers['content-security-policy']), /default-src 'self'/);
  t.regex(page.body, /assets\/uPlot\.iife\.min\.js/);
  t.regex(page.body, /assets\/dashboard\.js/);
  const uplot = await request(`${h.base}assets/uPlot.iife.min.js`);
  t.is(uplot.status, 200);
  t.regex(String(uplot.headers['content-type']), /^text\/javascript/);
  t.true(uplot.body.length > 40_000 && uplot.body.includes('uPlot'));
  for (const asset of ['assets/dashboard.js', 'assets/dashboard.css', 'assets/uPlot.min.css']) t.is((await request(`${h.base}${asset}`)).status, 200, asset);
  const head = await request(`${h.base}healthz`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.body, '');
});

test('the weight changes in /status are exactly the ones logged, each once', async (t) => {
  const h = await startHarness(t);
  const a1 = agent(t, h, 'a1', 9001);
  const a2 = agent(t, h, 'a2', 9002);
  a1.sample({ cpuUtilization: 0.1 });
  a2.sample({ cpuUtilization: 0.1 });
  await weighted(h, 2);
  for (const cpu of [0.5, 0.9, 0.3]) {
    const seq = a1.sample({ cpuUtilization: cpu });
    await waitFor(`sample ${seq} accepted`, () => (h.poller.snapshot().nodes.find((n) => n.id === 'a1')?.samples ?? 0) >= seq);
    await h.poller.settled();
  }
  a2.close();
  await waitFor('a2 quiesced', () => h.status.document().services[0]?.servers.some((s) => s.state === 'absent') ?? false);
  await h.poller.settled();

  const logged = h.logs
    .filter((r) => r['msg'] === 'weight changed')
    .map((r) => ({ service: r['service'], server: r['server'], node: r['node'], from: r['from'], to: r['to'], reason: r['reason'] }));
  const shown = (await statusOf(h)).changes.map((c) => ({ service: c.service, server: c.server, node: c.node, from: c.from, to: c.to, reason: c.reason }));
  t.true(logged.length >= 4, `${logged.length} changes`);
  t.deepEqual(shown, logged);
  t.true(logged.every((c) => c.from !== c.to), 'a change is logged only when the weight changes');
  // Per server, each change starts where the previous one ended: nothing logged twice or skipped.
  for (const server of ['127.0.0.1:9001', '127.0.0.1:9002']) {
    const mine = logged.filter((c) => c.server === server);
    mine.forEach((c, i) => t.is(c.from, i === 0 ? null : mine[i - 1]?.to, `${server} change ${i}`));
  }
});

test('a status address in use fails with what to do', async (t) => {
  const h = await startHarness(t);
  const port = new URL(h.base).port;
  const second = new StatusServer({ poller: h.poller, logger: pino({ level: 'silent' }) });
  t.teardown(() => second.close());
  const err = await t.throwsAsync(second.listen(`127.0.0.1:${port}`));
  t.regex(err?.message ?? '', new RegExp(`^--status 127\\.0\\.0\\.1:${port}: the address is in use .*pass --status HOST:PORT, or --status off$`));
  await t.throwsAsync(second.listen('localhost:7416'), { message: /is not an address: expected IP:PORT/ });
});

test('/status and /metrics show the application metrics the policy reads, per server; none where not reported', async (t) => {
  const h = await startHarness(t);
  h.poller.setPolicy(compilePolicy(policyText(['a1', 'a2'], '    guards: [{ when: "eps > 10", weight: 0 }]\n').replace('strategy: { name: headroom }', 'strategy: { name: queue }'), 'test.yaml', defaultEngines().limits()));
  const a1 = agent(t, h, 'a1', 9001);
  const a2 = agent(t, h, 'a2', 9002);
  a1.sample({ cpuUtilization: 0.05, eps: 1, namedMetrics: { in_flight: 3, latency_seconds: 0.05, concurrency: 8, unused_by_policy: 7 } });
  a2.sample({ cpuUtilization: 0.05 });
  await waitFor('both sampled', () => h.poller.snapshot().nodes.every((n) => n.samples > 0) && h.poller.snapshot().nodes.length === 2);
  const doc = await statusOf(h);
  const web = doc.services[0];
  t.deepEqual(web?.appMetrics, ['app.in_flight', 'app.latency_seconds', 'app.concurrency', 'eps']);
  t.deepEqual(web?.servers.map((s) => s.app), [
    { 'app.in_flight': 3, 'app.latency_seconds': 0.05, 'app.concurrency': 8, eps: 1 },
    { 'app.in_flight': null, 'app.latency_seconds': null, 'app.concurrency': null, eps: null },
  ]);
  t.like(doc.nodes.find((n) => n.id === 'a1'), { eps: 1, namedMetrics: { unused_by_policy: 7 } }, 'the node keeps all it reported');
  const m = (await request(`${h.base}metrics`)).body;
  t.is(metric(m, 'loadfeed_server_app_metric{service="web",server="127.0.0.1:9001",metric="app.in_flight"}'), 3);
  t.is(metric(m, 'loadfeed_server_app_metric{service="web",server="127.0.0.1:9001",metric="eps"}'), 1);
  t.false(m.includes('server="127.0.0.1:9002",metric='), 'not reported: no series, not 0');
  t.false(m.includes('unused_by_policy'));
});
