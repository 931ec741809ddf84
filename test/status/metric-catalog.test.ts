// Adding a metric is one catalog entry (plus its .proto field): this file
// adds one for a field the wire already carries (window_ms) and follows it
// through ingest's checks, policy expressions, /status (nodes and each
// server's `metrics`), /status/history, /metrics, `loadfeed top` and the
// dashboard. Each ava test file runs in its own process, so the addition
// stays here.
import test, { type ExecutionContext } from 'ava';
import { METRICS, type MetricDefinition } from '@loadfeed/proto';
import { History, renderTop, topSortKeys, type StatusDocument } from '@loadfeed/poller';
import { FakeAgent } from './fake-agent.js';
import { getJson, metric, request, startHarness, type Harness } from './harness.js';
import { waitFor } from '../helpers/wait.js';
import { browserGate, openBrowser } from '../dashboard/browser.js';

(METRICS as unknown as MetricDefinition[]).push({
  field: 'windowMs',
  wire: 'window_ms',
  unit: 'count',
  range: { min: 1, max: 60_000 },
  nullable: false,
  variable: 'window_ms',
  description: 'wall time the sample covers, ms',
  prometheus: { name: 'loadfeed_node_sample_window_ms', help: "wall time the node's latest sample covers, ms" },
  display: { label: 'window', format: 'integer', column: true, chart: true },
  serverStatus: null,
});

const GUARD = '    guards:\n      - { name: long-window, when: "window_ms >= 5000", weight: 0 }\n';
const A1 = '127.0.0.1:9001';
const A2 = '127.0.0.1:9002';

/** A poller whose policy guards on the new variable, and two agents: a1 reports a 5 s window (guarded), a2 a 1 s one. */
async function twoAgents(t: ExecutionContext): Promise<Harness> {
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
  await waitFor('a1 guarded, a2 weighted', () => server(A1)?.state === 'guarded' && (server(A2)?.weight ?? 0) > 0);
  t.regex(server(A1)?.reason ?? '', /long-window/, 'the guard on the new variable fixed the weight');
  return h;
}

test('a metric added to the catalog is checked, usable in an expression, in /status, /status/history, /metrics and loadfeed top', async (t) => {
  const h = await twoAgents(t);

  const doc = await getJson<StatusDocument>(`${h.base}status`);
  const a1Status = doc.nodes.find((n) => n.id === 'a1') as unknown as Record<string, unknown> | undefined;
  t.is(a1Status?.['windowMs'], 5_000, '/status nodes[] carry it under its field name');
  const servers = doc.services[0]?.servers ?? [];
  const byAddress = (address: string) => servers.find((s) => s.address === address);
  t.is((byAddress(A1)?.metrics as Record<string, number | null> | undefined)?.['windowMs'], 5_000, "/status servers[].metrics carry it");
  t.is((byAddress(A2)?.metrics as Record<string, number | null> | undefined)?.['windowMs'], 1_000);
  t.false('window' in (byAddress(A1) ?? {}), 'no field of its own beside metrics (serverStatus null)');
  t.is(byAddress(A1)?.cpu, byAddress(A1)?.metrics.cpuUtilization, 'the older per-server fields are still there');
  t.deepEqual(
    doc.metricCatalog.find((g) => g.label === 'window'),
    { label: 'window', format: 'integer', column: true, chart: true, fields: ['windowMs'] },
    '/status tells clients how to show it',
  );

  const history = new History();
  history.record(h.status.document());
  t.deepEqual(history.since(0).services[0]?.servers.find((s) => s.address === A1)?.metrics['windowMs'], [5_000], 'charted in /status/history');

  const text = (await request(`${h.base}metrics`)).body;
  t.is(metric(text, 'loadfeed_node_sample_window_ms{node="a1"}'), 5_000);
  t.is(metric(text, 'loadfeed_node_sample_window_ms{node="a2"}'), 1_000);

  // loadfeed top: a column, a sort key and a key to press.
  t.true(topSortKeys().includes('window'));
  const screen = renderTop(doc, 120, { sort: 'window' });
  t.log(`\n${screen}`);
  t.regex(screen, /^NAME +ADDRESS +STATE +CPU +MEM +PSI +WINDOW +CONN/m);
  const rows = screen.split('\n').filter((l) => /^a\d /.test(l));
  t.deepEqual(rows.map((l) => l.split(/ +/).slice(0, 1)), [['a1'], ['a2']], 'sorted by it, largest first');
  t.regex(rows[0] ?? '', /^a1 .* 5000 /);
  t.regex(screen, /keys: c m p i n w s a sort \(cpu mem psi window conn weight share name\)/);

  // Outside its range: refused, counted by its wire name, the weights untouched.
  const bad = new FakeAgent(h.port, 'a3');
  t.teardown(() => bad.close());
  bad.sample({ windowMs: 70_000 });
  const status = await bad.status;
  t.regex(status.details, /^sample\.window_ms: 70000 must be within 1\.\.60000$/);
  await waitFor('the rejection counted', () => h.poller.snapshot().ingest.rejected['sample.window_ms'] === 1);
  t.false(h.poller.snapshot().nodes.some((n) => n.id === 'a3' && n.samples > 0));
});

browserGate.test('a metric added to the catalog is on the dashboard: a chart, a server-table column and an agents-table column', async (t) => {
  t.timeout(120_000);
  const h = await twoAgents(t);
  const browser = await openBrowser(t);
  const page = await browser.newPage();
  await page.goto(h.base);
  await page.waitForSelector('section[data-service="web"] .chart[data-metric="windowMs"] canvas', { timeout: 45_000 });
  t.is(await page.textContent('section[data-service="web"] .chart[data-metric="windowMs"] h3'), 'window');
  const serverHeads = await page.$$eval('section[data-service="web"] table.servers th', (ths) => ths.map((th) => th.textContent ?? ''));
  t.deepEqual(serverHeads.slice(5, 9), ['cpu', 'mem', 'psi', 'window']);
  await page.waitForSelector(`tr[data-server="${A1}"]`, { timeout: 45_000 });
  const cell = await page.$$eval(`tr[data-server="${A1}"] td`, (tds, at) => tds[at]?.textContent ?? '', serverHeads.indexOf('window'));
  t.is(cell, '5000');
  const agentHeads = await page.$$eval('#agent-head th', (ths) => ths.map((th) => th.textContent ?? ''));
  t.true(agentHeads.includes('window'), agentHeads.join(', '));
  await page.waitForSelector('#agent-rows tr[data-node="a2"]', { timeout: 45_000 });
  const a2 = await page.$$eval('#agent-rows tr[data-node="a2"] td', (tds, at) => tds[at]?.textContent ?? '', agentHeads.indexOf('window'));
  t.is(a2, '1000');
});
