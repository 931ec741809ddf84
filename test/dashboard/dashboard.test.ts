// The dashboard in headless Chromium: against a running `loadfeed demo` (real
// backends, agents, poller and fast path) its charts must fill with live
// data; against a poller whose newest policy was refused it must say so.
// LOADFEED_SCREENSHOT=docs/dashboard.png also saves a screenshot of the demo.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Page } from 'playwright-core';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { CLUSTER_TYPE } from '@loadfeed/kernel-bridge';
import { defaultEngines, xdsEngineOptions } from '@loadfeed/poller';
import { openAdsStream } from '../helpers/ads-client.js';
import { waitFor } from '../helpers/wait.js';
import { startHarness } from '../status/harness.js';
import { browserGate, openBrowser } from './browser.js';
import { binPath } from '../helpers/launcher.js';

const DEMO = binPath('@loadfeed/demo', 'loadfeed-demo');
const SCREENSHOT = process.env['LOADFEED_SCREENSHOT'];
const WAIT_MS = 45_000;

/** Every error the page reports (uncaught exceptions, console.error). */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return errors;
}

const chart = (service: string, metric: string): string => `section[data-service="${service}"] .chart[data-metric="${metric}"]`;

// Waits evaluated in the page. They are functions, not strings: the page's
// Content-Security-Policy forbids eval. The test project has no DOM types, so
// the little of `document` used is described here.
interface PageGlobals {
  readonly document: {
    querySelector(selector: string): { getAttribute(name: string): string | null } | null;
    querySelectorAll(selector: string): { readonly length: number };
  };
}

async function untilPoints(page: Page, selector: string, atLeast: number, timeout = WAIT_MS): Promise<void> {
  await page.waitForFunction(
    ([sel, n]) => Number((globalThis as unknown as PageGlobals).document.querySelector(sel)?.getAttribute('data-points')) >= n,
    [selector, atLeast] as const,
    { timeout },
  );
}

async function untilCount(page: Page, selector: string, count: number): Promise<void> {
  await page.waitForFunction(([sel, n]) => (globalThis as unknown as PageGlobals).document.querySelectorAll(sel).length === n, [selector, count] as const, { timeout: WAIT_MS });
}

async function points(page: Page, service: string, metric: string): Promise<number> {
  return page.$eval(chart(service, metric), (el) => Number(el.getAttribute('data-points')));
}

/** Pixels in a chart's canvas that are clearly coloured (a drawn series, not grid or axis grey). */
async function colouredPixels(page: Page, service: string, metric: string): Promise<number> {
  return page.$eval(`${chart(service, metric)} canvas`, (element) => {
    // The test project has no DOM types: describe the little of a canvas used here.
    const canvas = element as unknown as {
      width: number;
      height: number;
      getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
    };
    const ctx = canvas.getContext('2d');
    if (!ctx) return 0;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const r = data[i] ?? 0;
      const g = data[i + 1] ?? 0;
      const b = data[i + 2] ?? 0;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 80) n += 1;
    }
    return n;
  });
}

browserGate.serial('the dashboard of a running demo draws live charts, server states and weight changes', async (t) => {
  t.timeout(240_000);
  const demo = spawn(process.execPath, [DEMO, '--json', '--listen', '127.0.0.1:0', '--status', '127.0.0.1:0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(async () => {
    if (demo.exitCode !== null || demo.signalCode !== null) return;
    const exited = once(demo, 'exit');
    demo.kill('SIGINT');
    await exited;
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no dashboard address within ${WAIT_MS} ms; demo said: ${stderr}`)), WAIT_MS);
    createInterface({ input: demo.stderr }).on('line', (line) => {
      stderr += `${line}\n`;
      const m = /dashboard at (http:\/\/\S+)/.exec(line);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    demo.once('exit', (code) => reject(new Error(`the demo exited (${code}): ${stderr}`)));
  });

  const browser = await openBrowser(t);
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(url);
  await page.waitForSelector(`${chart('demo', 'weight')} canvas`, { timeout: WAIT_MS });

  // Live: the charts gain points while we watch, with no reload.
  const first = await points(page, 'demo', 'weight');
  await untilPoints(page, chart('demo', 'weight'), first + 3);
  t.true((await points(page, 'demo', 'weight')) >= first + 3, 'the weight chart grows');
  // Charts: weight, the catalog's charted metrics (by field), connections.
  for (const metric of ['weight', 'cpuUtilization', 'memUtilization', 'connections']) {
    t.is(await page.$eval(chart('demo', metric), (el) => el.getAttribute('data-series')), '3', `${metric}: one series per backend`);
    t.true((await points(page, 'demo', metric)) >= 3, `${metric} has points`);
  }
  t.true((await colouredPixels(page, 'demo', 'weight')) > 200, 'lines are drawn in the weight chart');
  t.true((await colouredPixels(page, 'demo', 'cpuUtilization')) > 200, 'lines are drawn in the CPU chart');

  // Server rows: every backend has a weight > 0 and a state.
  await untilCount(page, 'section[data-service="demo"] tr[data-server]', 3);
  const rows = await page.$$eval('section[data-service="demo"] tr[data-server]', (trs) =>
    trs.map((tr) => ({ weight: Number(tr.getAttribute('data-weight')), state: tr.getAttribute('data-state'), text: tr.textContent ?? '' })),
  );
  t.log(JSON.stringify(rows));
  t.true(rows.every((r) => r.weight > 0), 'every backend has a weight');
  for (const id of ['small', 'medium', 'large']) t.true(rows.some((r) => r.text.includes(id)), `${id} is listed`);
  t.true(rows.every((r) => ['live', 'slow-start', 'blackout'].includes(r.state ?? '')), 'states of a healthy demo');
  t.true(rows.every((r) => /cpu/.test(r.text)), 'each row says why');

  t.is(await page.textContent('#health'), 'ok');
  const changes = await page.$$eval('section[data-service="demo"] .changes li', (lis) => lis.map((li) => li.textContent ?? ''));
  t.true(changes.length > 0 && changes.every((c) => c.includes('→')), 'weight changes with from → to');
  t.is(await page.$$eval('#agent-rows tr[data-node]', (trs) => trs.length), 3, 'every agent listed');
  t.true(await page.isHidden('#problems'), 'no problem shown');

  if (SCREENSHOT) {
    // A readable picture needs a minute or so of history.
    await untilPoints(page, chart('demo', 'weight'), 75, 120_000);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.log(`screenshot: ${SCREENSHOT}`);
  }
  t.deepEqual(errors, [], 'no error in the page');
});

browserGate.serial('the dashboard shows a refused policy, a degraded poller and servers without agents', async (t) => {
  t.timeout(120_000);
  const h = await startHarness(t, { nodes: ['web-1', 'web-2'] });
  h.poller.refusePolicy([{ file: 'test.yaml', line: 9, path: 'services[0].weights.min', message: '120 must be <= weights.max (100)' }]);
  const browser = await openBrowser(t);
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(h.base);
  await page.waitForSelector('#problems:not([hidden]) .problem', { timeout: WAIT_MS });
  t.is(await page.textContent('#health'), 'degraded');
  const problem = (await page.textContent('#problems')) ?? '';
  t.regex(problem, /Policy test\.yaml refused; the last good policy \(loaded .*\) stays in force:/);
  t.regex(problem, /test\.yaml:9: services\[0\]\.weights\.min: 120 must be <= weights\.max \(100\)/);
  await untilCount(page, 'section[data-service="web"] tr[data-state="absent"]', 2);
  const rows = await page.$$eval('section[data-service="web"] tr[data-server]', (trs) => trs.map((tr) => tr.textContent ?? ''));
  t.true(rows.every((r) => r.includes('no agent connected')), JSON.stringify(rows));
  t.regex((await page.textContent('#agent-rows')) ?? '', /no agent connected/);
  t.deepEqual(errors, []);
});

browserGate.serial('the dashboard lists xDS clients with the versions they ACKed and their NACKs', async (t) => {
  t.timeout(120_000);
  const xds = xdsEngineOptions('127.0.0.1:0', null, { credentials: grpc.ServerCredentials.createInsecure(), auth: { tokens: new Map(), mutualTls: false, allowPlaintext: false } }, pino({ level: 'silent' }));
  const h = await startHarness(t, {
    engines: defaultEngines(xds),
    policyExtra: '  - name: api\n    engine: xds\n    address: api\n    servers:\n      - { address: "127.0.0.1:9101" }\n',
  });
  await waitFor('the xDS port', () => h.poller.snapshot().xds?.listen != null, WAIT_MS);
  const ads = openAdsStream(h.poller.snapshot().xds?.listen ?? '');
  t.teardown(() => ads.close());
  ads.send({ typeUrl: CLUSTER_TYPE, node: { id: 'dash-client' } });
  const clusters = await ads.next();
  ads.send({ typeUrl: CLUSTER_TYPE, versionInfo: '', responseNonce: clusters.nonce, errorDetail: { code: 3, message: 'rejected by the test' } });
  await waitFor('the NACK', () => h.poller.snapshot().xds?.nacks === 1, WAIT_MS);
  const browser = await openBrowser(t);
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(h.base);
  await page.waitForSelector('#xds:not([hidden]) tr[data-xds-node="dash-client"]', { timeout: WAIT_MS });
  const row = (await page.textContent('tr[data-xds-node="dash-client"]')) ?? '';
  t.regex(row, new RegExp(`none \\(sent ${clusters.versionInfo}\\)`), `the cluster version sent but not ACKed: ${row}`);
  t.regex(row, /rejected by the test/);
  t.regex((await page.textContent('#xds-summary')) ?? '', /1 NACKs/);
  t.deepEqual(errors, []);
});
