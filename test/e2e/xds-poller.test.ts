// The whole path to a proxyless gRPC fleet: three real grpc-js backends, a
// real agent for each (process scope on an idle process, declared capacities
// 1, 2 and 4 cores, so their weights differ), the real poller executable with
// a policy service on engine xds, and @grpc/grpc-js-xds in its own process with
// nothing but a bootstrap file (deploy/examples/grpc/xds-bootstrap.json with
// the test's port) calling xds:///web. Checked: request shares follow the
// weights the poller serves; a poller restart (SIGTERM, then a new process
// on the same ports and state file) drops no endpoint and fails no call; a
// killed agent's server gets no new calls within docs/RELIABILITY.md's
// kill → quiesce bound (500 ms in the tests) plus the 1 s xDS propagation bound.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { binPath } from '../helpers/launcher.js';
import { waitFor } from '../helpers/wait.js';
import { startEchoBackend, type EchoBackend } from '../helpers/xds-echo.js';
import { assertShares as assertSharesOf, PICKS, startXdsClient } from '../helpers/xds-fleet.js';
import { DEPLOY_DIR } from '../deploy/repo.js';

const POLLER_BIN = binPath('@loadfeed/poller', 'loadfeed-poller');
const AGENT_BIN = binPath('@loadfeed/agent', 'loadfeed-agent');
const CAPACITIES = [1, 2, 4];
const NODES = ['a1', 'a2', 'a3'];
const BACKENDS = ['b1', 'b2', 'b3'];
/** docs/RELIABILITY.md: agent killed → quiesced, the tests' bound for loaded machines. */
const KILL_TO_QUIESCE_MS = 500;
/** The issue's bound from a weight decision to the clients' picks. */
const PROPAGATION_MS = 1_000;

const assertShares = (t: ExecutionContext, counts: Record<string, number>, weights: readonly number[], what: string): void =>
  assertSharesOf(t, counts, BACKENDS, weights, what);

interface Status {
  services: { servers: { address: string; node: string | null; state: string; weight: number }[] }[];
  xds: { listen: string | null; version: number; nacks: number; clients: { node: string; types: { typeUrl: string; sentVersion: string | null; ackedVersion: string | null; nacks: number }[] }[] } | null;
}

interface PollerProcess {
  readonly child: ChildProcess;
  readonly agentPort: number;
  status(): Promise<Status>;
}

async function startPoller(t: ExecutionContext, args: string[]): Promise<PollerProcess> {
  const child = spawn(process.execPath, [POLLER_BIN, ...args, '--status', '127.0.0.1:0', '--log-format', 'json', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const started = await new Promise<{ port: number; status: string }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const record = JSON.parse(line) as { msg?: string; port?: number; status?: string };
      if (record.msg === 'poller started') resolve({ port: record.port ?? 0, status: record.status ?? '' });
    });
    child.once('exit', (code) => reject(new Error(`poller exited (${code}): ${stderr}`)));
  });
  return {
    child,
    agentPort: started.port,
    status: async () => (await (await fetch(`${started.status}status`)).json()) as Status,
  };
}

function startAgent(t: ExecutionContext, agentPort: number, node: string, capacity: number, measured: number): ChildProcess {
  const child = spawn(
    process.execPath,
    [AGENT_BIN, '--poller', `127.0.0.1:${agentPort}`, '--node-id', node, '--scope', `process:${measured}`, '--capacity', String(capacity), '--interval', '200ms', '--status-socket', 'off', '--log-format', 'json'],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

function weightsOf(status: Status, backends: readonly EchoBackend[]): number[] {
  const servers = status.services[0]?.servers ?? [];
  return backends.map((b) => servers.find((s) => s.address === b.address)?.weight ?? -1);
}

function endpointsAcked(status: Status): boolean {
  const t = status.xds?.clients[0]?.types.find((x) => x.typeUrl.endsWith('ClusterLoadAssignment'));
  return t !== undefined && t.ackedVersion !== null && t.ackedVersion === t.sentVersion;
}

test.serial('agents → poller → xDS → grpc-js-xds: shares follow the weights, a restart drops nothing, a killed agent gets no new calls', async (t) => {
  t.timeout(600_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'loadfeed-xds-e2e-'));
  const backends: EchoBackend[] = [];
  for (const name of BACKENDS) backends.push(await startEchoBackend(name));
  t.teardown(() => backends.forEach((b) => b.close()));
  // Idle processes for the agents to measure: their headroom is their declared capacity.
  const idle = CAPACITIES.map(() => spawn('sleep', ['600'], { stdio: 'ignore' }));
  t.teardown(() => idle.forEach((p) => p.kill('SIGKILL')));
  const policy = path.join(dir, 'web.yaml');
  writeFileSync(
    policy,
    [
      'apiVersion: loadfeed/v1',
      'agents: { interval: 200ms }',
      'services:',
      '  - name: web',
      '    engine: xds',
      '    address: web',
      '    strategy: { name: headroom, usePressure: false }',
      '    smoothing: { halfLife: 0s }',
      '    slowStart: null',
      '    servers:',
      ...backends.map((b, i) => `      - { node: ${NODES[i]}, address: "${b.address}" }`),
    ].join('\n'),
  );
  const stateFile = path.join(dir, 'xds-state.json');
  let poller = await startPoller(t, ['--policy', policy, '--listen', '127.0.0.1:0', '--xds-listen', '127.0.0.1:0', '--xds-state', stateFile]);
  const agentPort = poller.agentPort;
  const agents = NODES.map((node, i) => startAgent(t, agentPort, node, CAPACITIES[i] ?? 1, idle[i]?.pid ?? 0));
  let status = await poller.status();
  const poll = setInterval(() => {
    void poller.status().then((s) => (status = s), () => undefined);
  }, 100);
  t.teardown(() => clearInterval(poll));
  await waitFor('every server weighted', () => weightsOf(status, backends).every((w) => w > 0) && status.xds?.listen != null, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(status)}`);
  });
  const xdsListen = status.xds?.listen ?? '';

  // The gRPC bootstrap example, pointed at this poller.
  const example = JSON.parse(readFileSync(path.join(DEPLOY_DIR, 'examples', 'grpc', 'xds-bootstrap.json'), 'utf8')) as { xds_servers: { server_uri: string }[] };
  t.is(example.xds_servers.length, 1);
  const client = startXdsClient(t, xdsListen, 'xds:///web', 200);
  await client.ready;
  await waitFor('the client on the served weights', () => endpointsAcked(status), 30_000);
  const weights = weightsOf(status, backends);
  t.true(weights[0] !== undefined && weights[2] !== undefined && weights[0] < weights[2], `capacities 1 and 4 give different weights: ${weights.join(':')}`);
  const counts = await client.picks(Date.now(), PICKS);
  t.deepEqual(weightsOf(status, backends), weights, 'the weights held while measuring');
  assertShares(t, counts, weights, 'served weights');

  // Restart: the clients keep every endpoint while the poller is down and after.
  const restartedAt = Date.now();
  poller.child.kill('SIGTERM');
  await once(poller.child, 'exit');
  assertShares(t, await client.picks(restartedAt, PICKS / 2), weights, 'while the poller is down');
  poller = await startPoller(t, ['--policy', policy, '--listen', `127.0.0.1:${agentPort}`, '--xds-listen', xdsListen, '--xds-state', stateFile]);
  await waitFor('the client back, on the restarted poller', () => endpointsAcked(status) && (status.xds?.clients.length ?? 0) === 1, 60_000);
  const afterRestart = await client.picks(restartedAt, PICKS * 2);
  t.deepEqual(Object.keys(afterRestart).filter((k) => k.startsWith('error')), [], `no call failed across the restart: ${JSON.stringify(afterRestart)}`);
  t.true(BACKENDS.every((b) => (afterRestart[b] ?? 0) > 0), `every backend kept its calls across the restart: ${JSON.stringify(afterRestart)}`);
  // Counted over every stream since the restart: a client that reconnects
  // (a busy machine) starts a stream with no types yet, which says nothing.
  t.is(status.xds?.nacks, 0, 'nothing NACKed');

  // A killed agent: its server is quiesced (DRAINING) and gets no new calls.
  await waitFor('every server live again', () => status.services[0]?.servers.every((s) => s.state === 'live') === true, 60_000);
  const killedAt = Date.now();
  agents[0]?.kill('SIGKILL');
  const after = await client.picks(killedAt + KILL_TO_QUIESCE_MS + PROPAGATION_MS, PICKS);
  t.is(after.b1, undefined, `b1's agent was killed, yet b1 got calls: ${JSON.stringify(after)}`);
  t.deepEqual(Object.keys(after).filter((k) => k.startsWith('error')), [], `no call failed: ${JSON.stringify(after)}`);
  t.true((after.b2 ?? 0) > 0 && (after.b3 ?? 0) > 0, JSON.stringify(after));
  t.is(weightsOf(status, backends)[0], 0);
});
