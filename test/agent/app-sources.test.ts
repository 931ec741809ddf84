// The agent's three application metrics sources against real peers: a grpc-js
// server publishing ORCA through grpc-js's own ServerMetricRecorder, an HTTP
// server exposing a prom-client registry, and a push socket fed by a shell
// printf through socat. Each is also taken away, to check its values go
// absent (never 0) and its state says why.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import { grpc, tlsChannel, type ClientTls } from '@loadfeed/proto';
import { AppMetrics, OrcaSource, PrometheusSource, PushSource, parseSeriesSelector, type AppSource } from '@loadfeed/agent';
import { makeCertificates } from '@loadfeed/poller';
import { waitFor } from '../helpers/wait.js';
import { binary, realEngineGate } from '../helpers/real-engine.js';

const WAIT_MS = 30_000;

function fresh(source: AppSource): Map<string, number> {
  const into = new Map<string, number>();
  source.collect(Date.now(), into);
  return into;
}

async function orcaServer(credentials = grpc.ServerCredentials.createInsecure()): Promise<{ server: grpc.Server; recorder: grpc.ServerMetricRecorder; target: string }> {
  const server = new grpc.Server();
  const recorder = new grpc.ServerMetricRecorder();
  recorder.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, recorder, target: `127.0.0.1:${port}` };
}

test('ORCA: every field of a ServerMetricRecorder report is mapped; the stream ending drops them at once', async (t) => {
  const { server, recorder, target } = await orcaServer();
  t.teardown(() => server.forceShutdown());
  recorder.setApplicationUtilizationMetric(0.42);
  recorder.setQpsMetric(250.5);
  recorder.setEpsMetric(3);
  recorder.setCpuUtilizationMetric(0.3);
  recorder.putUtilizationMetric('db.pool', 0.8);
  const source = new OrcaSource(target, () => 100, 5_000);
  t.teardown(() => source.close());
  source.start();
  await waitFor('an ORCA report', () => source.status(Date.now()).state === 'ok', WAIT_MS);
  t.deepEqual(Object.fromEntries(fresh(source)), {
    application_utilization: 0.42,
    rps: 250.5,
    eps: 3,
    orca_cpu_utilization: 0.3,
    utilization_db_pool: 0.8,
  });
  server.forceShutdown();
  await waitFor('the source to notice the stream ended', () => source.status(Date.now()).state === 'failing', WAIT_MS);
  t.deepEqual([...fresh(source)], [], 'no stream, no values: absent, not 0');
  t.regex(source.status(Date.now()).detail, /retrying in \d+ ms/);
});

test('ORCA: a server without OpenRcaService is reported as such, with no values', async (t) => {
  const server = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.teardown(() => server.forceShutdown());
  const source = new OrcaSource(`127.0.0.1:${port}`, () => 1000, 5_000);
  t.teardown(() => source.close());
  source.start();
  await waitFor('the source to fail', () => source.status(Date.now()).state === 'failing', WAIT_MS);
  t.regex(source.status(Date.now()).detail, /does not serve ORCA/);
  t.deepEqual([...fresh(source)], []);
});

// A development PKI made by `loadfeed certs` (in-process): the ORCA
// server takes its --orca-server certificate for 127.0.0.1, the agent the
// client certificate of node app-1; a second CA signs nothing the server has.
let pki: Promise<{ pem: (dir: 'a' | 'b', name: string) => Buffer }> | null = null;
function certificates(): Promise<{ pem: (dir: 'a' | 'b', name: string) => Buffer }> {
  pki ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-orca-tls-'));
    await makeCertificates(path.join(dir, 'a'), { nodes: ['app-1'], pollerNames: ['localhost'], orcaServers: ['127.0.0.1'], days: 1 });
    await makeCertificates(path.join(dir, 'b'), { nodes: [], pollerNames: ['localhost'], days: 1 });
    return { pem: (d: 'a' | 'b', name: string) => readFileSync(path.join(dir, d, name)) };
  })();
  return pki;
}

async function tlsOrcaServer(clientCertificates: boolean) {
  const { pem } = await certificates();
  const credentials = grpc.ServerCredentials.createSsl(clientCertificates ? pem('a', 'ca.pem') : null, [{ cert_chain: pem('a', 'orca-127.0.0.1.pem'), private_key: pem('a', 'orca-127.0.0.1.key') }], clientCertificates);
  const s = await orcaServer(credentials);
  s.recorder.setQpsMetric(42);
  s.recorder.setApplicationUtilizationMetric(0.25);
  return { ...s, pem };
}

/** An ORCA source over TLS to `target`, once its state is `until`. */
async function tlsSource(t: ExecutionContext, target: string, tls: ClientTls, until: 'ok' | 'failing'): Promise<OrcaSource> {
  const source = new OrcaSource(target, () => 100, 5_000, tlsChannel(tls));
  t.teardown(() => source.close());
  source.start();
  await waitFor(`the ORCA source ${until}`, () => source.status(Date.now()).state === until, WAIT_MS);
  return source;
}

test('ORCA over TLS: the server\'s CA gives reports; another CA, another name or a plaintext server is refused with what to fix and no values', async (t) => {
  const { server, target, pem } = await tlsOrcaServer(false);
  t.teardown(() => server.forceShutdown());
  const good = await tlsSource(t, target, { ca: pem('a', 'ca.pem'), cert: null, key: null, serverName: null }, 'ok');
  t.like(Object.fromEntries(fresh(good)), { rps: 42, application_utilization: 0.25 });

  const wrong = await tlsSource(t, target, { ca: pem('b', 'ca.pem'), cert: null, key: null, serverName: null }, 'failing');
  t.regex(wrong.status(Date.now()).detail, /^UNAVAILABLE: TLS: the server's certificate is not signed by the CA given \(--orca-tls-ca\) or is not valid now \((self-signed certificate in certificate chain|unable to verify the first certificate)\); retrying in \d+ ms$/);
  t.deepEqual([...fresh(wrong)], []);

  const named = await tlsSource(t, target, { ca: pem('a', 'ca.pem'), cert: null, key: null, serverName: 'orca.example' }, 'failing');
  t.regex(named.status(Date.now()).detail, /^UNAVAILABLE: TLS: the server's certificate does not name the host dialled: give the name it has \(--orca-tls-server-name\) \(.*orca\.example/);

  const plaintext = await orcaServer();
  t.teardown(() => plaintext.server.forceShutdown());
  const mismatched = await tlsSource(t, plaintext.target, { ca: pem('a', 'ca.pem'), cert: null, key: null, serverName: null }, 'failing');
  t.regex(mismatched.status(Date.now()).detail, /^UNAVAILABLE: TLS: the server does not speak TLS on this port \(/);
});

test('ORCA over mutual TLS: without a client certificate the server refuses the handshake, with one it reports', async (t) => {
  const { server, target, pem } = await tlsOrcaServer(true);
  t.teardown(() => server.forceShutdown());
  const anonymous = await tlsSource(t, target, { ca: pem('a', 'ca.pem'), cert: null, key: null, serverName: null }, 'failing');
  t.regex(anonymous.status(Date.now()).detail, /^UNAVAILABLE: TLS: the server refused the handshake: it wants a client certificate its CA signed \(--orca-tls-cert, --orca-tls-key\)/);
  const known = await tlsSource(t, target, { ca: pem('a', 'ca.pem'), cert: pem('a', 'app-1.pem'), key: pem('a', 'app-1.key'), serverName: null }, 'ok');
  t.is(fresh(known).get('rps'), 42);
});

test('Prometheus: a prom-client application is scraped, gauges as they are and counters as rates; a dead endpoint gives no values', async (t) => {
  const registry = new Registry();
  const inFlight = new Gauge({ name: 'app_requests_in_flight', help: 'in flight', registers: [registry] });
  const requests = new Counter({ name: 'app_requests_total', help: 'served', labelNames: ['code'], registers: [registry] });
  inFlight.set(9);
  const server = http.createServer((_req, res) => {
    // Every scrape sees 10 more requests than the one before.
    requests.inc({ code: '200' }, 10);
    void registry.metrics().then((body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  const specs = [
    { name: 'in_flight', selector: parseSeriesSelector('app_requests_in_flight'), text: 'app_requests_in_flight' },
    { name: 'rps', selector: parseSeriesSelector('app_requests_total{code="200"}'), text: 'app_requests_total{code="200"}' },
  ];
  const source = new PrometheusSource(url, specs, () => 100, 5_000);
  t.teardown(() => source.close());
  source.start();
  await waitFor('a counter rate (two scrapes)', () => fresh(source).has('rps'), WAIT_MS);
  const values = fresh(source);
  t.is(values.get('in_flight'), 9);
  // 10 requests between scrapes at most a second apart (MIN_SCRAPE_INTERVAL_MS), later on a busy machine.
  t.true((values.get('rps') ?? 0) > 0 && (values.get('rps') ?? Infinity) <= 10.5, `rps ${values.get('rps')}`);
  server.close();
  server.closeAllConnections();
  await waitFor('the scrape to fail', () => source.status(Date.now()).state === 'failing', WAIT_MS);
  t.deepEqual([...fresh(source)], []);
  t.regex(source.status(Date.now()).detail, /ECONNREFUSED|socket hang up|ECONNRESET/, 'why, as the connection failed (a kept-alive socket hangs up, a new one is refused)');
});

const socat = realEngineGate('push socket', [binary('socat', 'socat')]);

socat.test('push: lines written by a shell printf are taken, bad ones refused and counted, values expire', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-push-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'app.sock');
  const logs: Record<string, unknown>[] = [];
  const ttlMs = 5_000;
  const source = new PushSource(socketPath, ttlMs, (l) => logs.push(l));
  t.teardown(() => source.close());
  const metrics = new AppMetrics([source]);
  source.start();
  await waitFor('the socket to listen', () => source.status(Date.now()).state === 'silent', WAIT_MS);
  const sh = spawn('sh', ['-c', `printf 'in_flight 5\\nrps 120.5\\nBad-Name 1\\n' | socat - UNIX-CONNECT:${socketPath}`], { stdio: 'inherit' });
  const [code] = (await once(sh, 'exit')) as [number];
  t.is(code, 0);
  await waitFor('the lines to be taken', () => source.status(Date.now()).updates === 2 && source.status(Date.now()).refused === 1, WAIT_MS);
  const reading = metrics.read(Date.now());
  t.is(reading.rpsFractional, 120.5);
  t.deepEqual(reading.namedMetrics, { in_flight: 5 });
  t.is(reading.eps, null);
  t.regex(source.status(Date.now()).detail, /refused: name "Bad-Name"/);
  // Not written again within the TTL: gone (collect takes the time to judge by).
  const later = Date.now() + ttlMs + 1;
  t.is(metrics.read(later).rpsFractional, null);
  t.deepEqual(metrics.read(later).namedMetrics, {});
  t.is(source.status(later).state, 'silent');
  t.deepEqual(logs, []);
});
