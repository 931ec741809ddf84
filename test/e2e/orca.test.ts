// ORCA end to end: gRPC servers publishing load reports through grpc-js's
// ServerMetricRecorder, read agentless by a real poller (weights as A58, and
// an agent's liveness rules: a hung server goes stale, a dead one is quiesced
// at once), and read by a real agent process that also scrapes a prom-client
// endpoint and takes pushed lines, streaming them all to the poller.
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Gauge, Registry } from 'prom-client';
import { fetchAgentStatus } from '@loadfeed/agent';
import type { ClientChannel } from '@loadfeed/proto';
import { compilePolicy, defaultEngines, defaultStrategies, loadOrcaChannel, Poller, readTrace, TraceRecorder } from '@loadfeed/poller';
import { waitFor } from '../helpers/wait.js';
import { binPath } from '../helpers/launcher.js';
import { binary, realEngineGate } from '../helpers/real-engine.js';

const AGENT_BIN = binPath('@loadfeed/agent', 'loadfeed-agent');
const CLI = binPath('@loadfeed/poller', 'loadfeed');
const POLLER_BIN = binPath('@loadfeed/poller', 'loadfeed-poller');
const ORCA_SERVER = fileURLToPath(new URL('../helpers/orca-server.js', import.meta.url));
const SERVICE = 'tcp 127.0.0.1:18100';
// Generous: a loaded CI machine starts processes slowly.
const WAIT_MS = 30_000;

async function orcaServer(t: ExecutionContext, ...values: string[]): Promise<ChildProcess & { port: number }> {
  const child = spawn(process.execPath, [ORCA_SERVER, ...values], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  return Object.assign(child, { port: Number(line.toString().trim()) });
}

async function startPoller(t: ExecutionContext, servers: string, strategy: string, more: { orcaChannel?: ClientChannel; intervalMs?: number; recorder?: TraceRecorder } = {}) {
  const { orcaChannel, intervalMs = 200, recorder } = more;
  const engines = defaultEngines();
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1
liveness: { staleAfter: ${Math.max(1000, 2 * intervalMs)}ms }
agents: { interval: ${intervalMs}ms }
services:
  - name: api
    engine: memory
    address: ${SERVICE}
    smoothing: { halfLife: 0s }
    slowStart: null
    deadband: 0
    strategy: ${strategy}
    servers:
${servers}`,
    'test.yaml',
    engines.limits(),
  );
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies: defaultStrategies(), logger, ...(orcaChannel ? { orcaChannel } : {}), ...(recorder ? { recorder } : {}) });
  const port = await poller.start();
  t.teardown(() => poller.stop());
  let latest: number[] = [];
  const poll = setInterval(() => {
    void poller.engine('memory').observe().then((obs) => {
      latest = obs.services.find((s) => s.address === SERVICE)?.destinations.map((d) => d.weight) ?? [];
    });
  }, 10);
  t.teardown(() => clearInterval(poll));
  const weightsAre = (what: string, ok: (w: number[]) => boolean): Promise<void> =>
    waitFor(what, () => ok(latest), WAIT_MS).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; weights ${JSON.stringify(latest)}`);
    });
  const state = (id: string): string | undefined => poller.snapshot().nodes.find((n) => n.id === id)?.state;
  return { poller, port, weightsAre, state, logs };
}

test.serial('agentless: the poller reads ORCA itself; weights follow A58; hung → stale, dead → quiesced at once', async (t) => {
  const a = await orcaServer(t, '0.5', '100'); // 100 / 0.5 = 200
  const b = await orcaServer(t, '0.25', '100'); // 400
  const { weightsAre, state } = await startPoller(
    t,
    `      - { orca: "127.0.0.1:${a.port}", address: "127.0.0.1:9000" }\n      - { orca: "127.0.0.1:${b.port}", address: "127.0.0.1:9001" }\n`,
    '{ name: orca, blackoutPeriod: 0s }',
  );
  await weightsAre('weights in the ratio of qps / application utilisation', (w) => w[0] === 50 && w[1] === 100);
  b.kill('SIGSTOP'); // the stream stays open, the reports stop
  await waitFor('b to go stale', () => state(`orca:127.0.0.1:${b.port}`) === 'stale', WAIT_MS);
  await weightsAre('b quiesced, a alone at full weight', (w) => w[1] === 0 && (w[0] ?? 0) > 0);
  b.kill('SIGCONT');
  await weightsAre('b back', (w) => w[0] === 50 && w[1] === 100);
  a.kill('SIGKILL'); // the stream ends
  await waitFor('a gone', () => state(`orca:127.0.0.1:${a.port}`) === undefined, WAIT_MS);
  await weightsAre('a quiesced', (w) => w[0] === 0 && (w[1] ?? 0) > 0);
  t.pass();
});

const socat = realEngineGate('push socket', [binary('socat', 'socat')]);

socat.serial('an agent reads ORCA, a prom-client endpoint and pushed lines; the poller weighs them with queue', async (t) => {
  const orca = await orcaServer(t, '0.3', '250', '2');
  const registry = new Registry();
  new Gauge({ name: 'app_workers', help: 'pool size', registers: [registry] }).set(8);
  const metrics = http.createServer((_req, res) => {
    void registry.metrics().then((body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body));
  });
  metrics.listen(0, '127.0.0.1');
  await once(metrics, 'listening');
  t.teardown(() => metrics.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-orca-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pushSocket = path.join(dir, 'app.sock');
  const statusSocket = path.join(dir, 'status.sock');

  const { poller, port, weightsAre } = await startPoller(t, '      - { node: app-1, address: "127.0.0.1:9000" }\n      - { node: app-2, address: "127.0.0.1:9001" }\n', '{ name: queue }');
  const agent = (node: string, extra: string[]): ChildProcess => {
    const child = spawn(process.execPath, [AGENT_BIN, '--poller', `127.0.0.1:${port}`, '--node-id', node, '--interval', '200ms', '--status-socket', 'off', ...extra], { stdio: 'ignore' });
    t.teardown(() => void child.kill('SIGKILL'));
    return child;
  };
  agent('app-1', [
    '--orca', `127.0.0.1:${orca.port}`,
    '--app-metrics', `http://127.0.0.1:${(metrics.address() as AddressInfo).port}/metrics`, '--app-metric', 'concurrency=app_workers',
    '--app-socket', pushSocket,
  ]);
  agent('app-2', ['--status-socket', statusSocket]);

  const app = (id: string) => {
    const n = poller.snapshot().nodes.find((x) => x.id === id);
    return n && { applicationUtilization: n.applicationUtilization, rps: n.rpsFractional, eps: n.eps, named: n.namedMetrics };
  };
  await waitFor('the push socket', () => existsSync(pushSocket), WAIT_MS);
  const push = async (lines: string): Promise<void> => {
    const sh = spawn('sh', ['-c', `printf '${lines}' | socat - UNIX-CONNECT:${pushSocket}`], { stdio: 'inherit' });
    const [code] = (await once(sh, 'exit')) as [number];
    t.is(code, 0);
  };
  await push('in_flight 2\nlatency_seconds 0.05\n');
  await waitFor('all three sources in app-1\'s samples', () => {
    const a = app('app-1');
    return a?.rps === 250 && a.eps === 2 && a.applicationUtilization === 0.3 && a.named['concurrency'] === 8 && a.named['in_flight'] === 2;
  }, WAIT_MS);
  t.like(app('app-1')?.named, { concurrency: 8, in_flight: 2, latency_seconds: 0.05, orca_cpu_utilization: 0.05 });
  t.deepEqual(app('app-2'), { applicationUtilization: null, rps: null, eps: null, named: {} }, 'no source: absent, not 0');
  await weightsAre('app-1 weighted by its queue', (w) => (w[0] ?? 0) > 0);
  const status = await fetchAgentStatus(statusSocket);
  t.is(status.app, null, 'an agent without application sources says so');
  // The ORCA server dies: its fields go absent in the samples, the others stay.
  orca.kill('SIGKILL');
  await waitFor('ORCA fields absent', () => app('app-1')?.rps === null && app('app-1')?.named['concurrency'] === 8, WAIT_MS);
  t.is(app('app-1')?.applicationUtilization, null);
});

test.serial('a pushed metric that moves markedly is reported at once, between intervals; a steady one once per interval', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-early-app-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pushSocket = path.join(dir, 'app.sock');
  const traceFile = path.join(dir, 'trace.jsonl');
  const recorder = new TraceRecorder(traceFile, 10 * 2 ** 20, () => undefined);
  const intervalMs = 4_000; // watch windows of 1 s
  const { port } = await startPoller(t, '      - { node: app-1, address: "127.0.0.1:9000" }\n', '{ name: queue }', { intervalMs, recorder });
  // CPU early reports off: the host's CPU on a busy machine must not report between intervals here.
  const child = spawn(process.execPath, [AGENT_BIN, '--poller', `127.0.0.1:${port}`, '--node-id', 'app-1', '--interval', `${intervalMs}ms`, '--status-socket', 'off', '--early-change', '0', '--app-socket', pushSocket], { stdio: 'ignore' });
  t.teardown(() => void child.kill('SIGKILL'));
  await waitFor('the push socket', () => existsSync(pushSocket), WAIT_MS);
  // The application writes its latency every 100 ms on one connection, as the bench's pool backend does.
  let latency = 0.05;
  const app = net.connect(pushSocket);
  const writer = setInterval(() => app.write(`latency_seconds ${latency}\n`), 100);
  t.teardown(() => {
    clearInterval(writer);
    app.destroy();
  });
  const samples = async (): Promise<{ windowMs: number; latency: number | undefined }[]> =>
    (await readTrace(traceFile)).flatMap((e) => (e.type === 'sample' ? [{ windowMs: Number(e.sample.windowMs), latency: e.sample.namedMetrics?.['latency_seconds'] }] : []));
  let seen: Awaited<ReturnType<typeof samples>> = [];
  const until = (what: string, ok: (s: typeof seen) => boolean): Promise<void> => {
    let reading = false;
    return waitFor(what, () => {
      if (!reading) {
        reading = true;
        void samples().then((s) => void (seen = s), () => undefined).finally(() => void (reading = false));
      }
      return ok(seen);
    }, WAIT_MS);
  };
  // The agent's first interval goes window by window (its first window at once); then one sample per interval.
  const afterFirstInterval = (s: typeof seen): typeof seen => s.slice(4).filter((x) => x.latency === 0.05);
  await until('two samples since the latency was steady', (s) => afterFirstInterval(s).length >= 2);
  const steady = afterFirstInterval(seen);
  t.true(steady.every((x) => x.windowMs >= 0.9 * intervalMs), `a steady latency is reported once per interval: windows ${steady.map((x) => x.windowMs).join(', ')} ms`);
  latency = 0.5;
  await until('the moved latency in a sample', (s) => s.some((x) => x.latency === 0.5));
  const moved = seen.find((x) => x.latency === 0.5);
  t.true((moved?.windowMs ?? intervalMs) < 0.6 * intervalMs, `the move is reported in its watch window (${moved?.windowMs} ms), not after the ${intervalMs} ms interval`);
});

// Two development PKIs made by `loadfeed certs` (in-process): the ORCA
// servers take the --orca-server certificate for 127.0.0.1 of their CA,
// clients trust CA a.
const pki = mkdtempSync(path.join(os.tmpdir(), 'lf-orca-pki-'));
execFileSync(process.execPath, [CLI, 'certs', '--out', path.join(pki, 'a'), '--node', 'app-1', '--orca-server', '127.0.0.1']);
execFileSync(process.execPath, [CLI, 'certs', '--out', path.join(pki, 'b'), '--orca-server', '127.0.0.1']);
const pem = (ca: 'a' | 'b', name: string): string => path.join(pki, ca, name);
const serveTls = (ca: 'a' | 'b'): string[] => ['--tls-cert', pem(ca, 'orca-127.0.0.1.pem'), '--tls-key', pem(ca, 'orca-127.0.0.1.key')];

test.serial('agentless over TLS: --orca-tls-ca reads a backend its CA signed; one signed by another CA stays down, logged with the reason', async (t) => {
  const good = await orcaServer(t, ...serveTls('a'), '0.5', '100');
  const foreign = await orcaServer(t, ...serveTls('b'), '0.25', '100');
  const { poller, weightsAre, state, logs } = await startPoller(
    t,
    `      - { orca: "127.0.0.1:${good.port}", address: "127.0.0.1:9000" }\n      - { orca: "127.0.0.1:${foreign.port}", address: "127.0.0.1:9001" }\n`,
    '{ name: orca, blackoutPeriod: 0s }',
    { orcaChannel: await loadOrcaChannel({ ca: pem('a', 'ca.pem') }) },
  );
  await weightsAre('the backend with a trusted certificate weighted, the other at 0', (w) => (w[0] ?? 0) > 0 && w[1] === 0);
  t.is(state(`orca:127.0.0.1:${good.port}`), 'live');
  t.is(state(`orca:127.0.0.1:${foreign.port}`), undefined, 'never connected');
  const ended = () => logs.find((l) => l['msg'] === 'orca stream ended' && l['orca'] === `127.0.0.1:${foreign.port}`);
  await waitFor('the refusal logged', () => ended() !== undefined, WAIT_MS);
  t.regex(String(ended()?.['reason']), /^UNAVAILABLE: TLS: the server's certificate is not signed by the CA given \(--orca-tls-ca\)/);
  const decision = poller.snapshot().services[0]?.decisions.find((d) => d.address === '127.0.0.1:9001');
  t.regex(decision?.reason ?? '', /^no ORCA report: the stream to the server is not up \(the poller logs why: "orca stream ended"\)/);
});

test.serial('an agent reads its application\'s ORCA over mutual TLS (--orca-tls-*); with another CA its status says why', async (t) => {
  const orca = await orcaServer(t, ...serveTls('a'), '--tls-client-ca', pem('a', 'ca.pem'), '0.3', '250');
  const { poller, port } = await startPoller(t, '      - { node: app-1, address: "127.0.0.1:9000" }\n      - { node: app-2, address: "127.0.0.1:9001" }\n', '{ name: orca, blackoutPeriod: 0s }');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-orca-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const agent = (node: string, ca: 'a' | 'b'): string => {
    const statusSocket = path.join(dir, `${node}.sock`);
    const child = spawn(
      process.execPath,
      [AGENT_BIN, '--poller', `127.0.0.1:${port}`, '--node-id', node, '--interval', '200ms', '--status-socket', statusSocket,
        '--orca', `127.0.0.1:${orca.port}`, '--orca-tls-ca', pem(ca, 'ca.pem'), '--orca-tls-cert', pem('a', 'app-1.pem'), '--orca-tls-key', pem('a', 'app-1.key')],
      { stdio: 'ignore' },
    );
    t.teardown(() => void child.kill('SIGKILL'));
    return statusSocket;
  };
  agent('app-1', 'a');
  const misconfigured = agent('app-2', 'b');
  await waitFor('app-1\'s ORCA values in its samples', () => poller.snapshot().nodes.find((n) => n.id === 'app-1')?.rpsFractional === 250, WAIT_MS);
  t.is(poller.snapshot().nodes.find((n) => n.id === 'app-1')?.applicationUtilization, 0.3);
  await waitFor('app-2 connected', () => poller.snapshot().nodes.some((n) => n.id === 'app-2' && n.samples > 0), WAIT_MS);
  let orcaState: { state: string; detail: string } | undefined;
  let asking = false;
  await waitFor('app-2\'s ORCA source failing', () => {
    if (!asking) {
      asking = true;
      void fetchAgentStatus(misconfigured)
        .then((s) => void (orcaState = s.app?.sources.find((x) => x.kind === 'orca')), () => undefined)
        .finally(() => void (asking = false));
    }
    return orcaState?.state === 'failing';
  }, WAIT_MS);
  t.regex(orcaState?.detail ?? '', /^UNAVAILABLE: TLS: the server's certificate is not signed by the CA given \(--orca-tls-ca\)/);
  t.is(poller.snapshot().nodes.find((n) => n.id === 'app-2')?.rpsFractional, null, 'no report: absent, not 0');
});

test.serial('the loadfeed-poller executable: --orca-tls-ca reads a TLS backend; a client key without a CA is refused at start', async (t) => {
  const backend = await orcaServer(t, ...serveTls('a'), '0.5', '100');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-orca-poller-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const policy = path.join(dir, 'policy.yaml');
  writeFileSync(policy, `apiVersion: loadfeed/v1\nservices:\n  - name: api\n    engine: memory\n    address: ${SERVICE}\n    servers: [{ orca: "127.0.0.1:${backend.port}", address: "127.0.0.1:9000" }]\n`);
  const run = (flags: string[]) => {
    const child = spawn(process.execPath, [POLLER_BIN, '--policy', policy, '--listen', '127.0.0.1:0', '--status', 'off', '--log-format', 'json', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (c: Buffer) => void (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (out += c.toString()));
    return { child, out: () => out };
  };
  const poller = run(['--orca-tls-ca', pem('a', 'ca.pem')]);
  await waitFor('the TLS backend connected', () => poller.out().includes(`"node":"orca:127.0.0.1:${backend.port}"`) && poller.out().includes('orca backend connected'), WAIT_MS);
  t.regex(poller.out(), /"orcaTls":true/);

  const refused = run(['--orca-tls-key', pem('a', 'app-1.key')]);
  const [code] = (await once(refused.child, 'exit')) as [number];
  t.is(code, 2);
  t.regex(refused.out(), /--orca-tls-key needs --orca-tls-ca, the CA of the ORCA backends' certificates/);
});
