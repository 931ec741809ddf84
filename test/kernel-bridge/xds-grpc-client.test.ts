// The xds engine against the gRPC project's own xDS client: @grpc/grpc-js-xds
// in a separate process, configured only by a bootstrap file naming the
// engine, calling three real grpc-js backends through `xds:///web`. The
// weights are set on the engine directly here; e2e/xds-poller.test.ts drives
// them from agents through the poller.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createXdsEngine, type XdsEngine } from '@loadfeed/kernel-bridge';
import { waitFor } from '../helpers/wait.js';
import { startEchoBackend, type EchoBackend } from '../helpers/xds-echo.js';
import { assertShares as assertSharesOf, PICKS, sharesMatch as sharesMatchOf, startXdsClient } from '../helpers/xds-fleet.js';

const CALLS_PER_SECOND = 200;
/** The bound from a weight change to the client's picks. */
const PROPAGATION_MS = 1_000;
const BACKENDS = ['b1', 'b2', 'b3'];
/** A test waits for a few thousand calls; a loaded machine makes them slow. */
const TEST_TIMEOUT_MS = 300_000;
/** Share measurements after an undrain before the last one is asserted. */
const UNDRAIN_MEASUREMENTS = 3;

const assertShares = (t: ExecutionContext, counts: Record<string, number>, weights: readonly number[], what: string): void =>
  assertSharesOf(t, counts, BACKENDS, weights, what);
const sharesMatch = (counts: Record<string, number>, weights: readonly number[]): boolean => sharesMatchOf(counts, BACKENDS, weights);


async function fleet(t: ExecutionContext, stateFile: string | null = null) {
  const backends: EchoBackend[] = [];
  for (const name of BACKENDS) backends.push(await startEchoBackend(name));
  t.teardown(() => backends.forEach((b) => b.close()));
  const engine = await createXdsEngine({ listen: '127.0.0.1:0', credentials: grpc.ServerCredentials.createInsecure(), stateFile }).listening();
  t.teardown(() => engine.close());
  return { backends, engine };
}

function serve(engine: XdsEngine, backends: readonly EchoBackend[], weights: readonly number[], scheduler?: string): Promise<void> {
  return engine.apply([
    { op: 'add-service', service: { address: 'web', ...(scheduler === undefined ? {} : { scheduler }) } },
    ...backends.map((b, i) => ({ op: 'add-destination' as const, service: 'web', destination: b.address, weight: weights[i] ?? 0 })),
  ]);
}

function endpointsAcked(engine: XdsEngine): string | null {
  return engine.clients()[0]?.types.find((s) => s.typeUrl.endsWith('ClusterLoadAssignment'))?.ackedVersion ?? null;
}

/**
 * Set the weights and wait for the client to ACK them; returns when that
 * was, after checking it was within PROPAGATION_MS of the decision.
 */
async function change(t: ExecutionContext, engine: XdsEngine, backends: readonly EchoBackend[], weights: readonly number[]): Promise<number> {
  const decided = performance.now();
  await engine.apply(backends.map((b, i) => ({ op: 'set-weight', service: 'web', destination: b.address, weight: weights[i] ?? 0 })));
  const version = String(engine.counts().version);
  await waitFor(`the client's ACK of version ${version}`, () => endpointsAcked(engine) === version, 10_000);
  const took = performance.now() - decided;
  t.true(took <= PROPAGATION_MS, `the client took ${took.toFixed(0)} ms to take weights ${weights.join(':')}`);
  return Date.now();
}

test.serial('shares follow the weights; a weight change reaches the picks within 1 s', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const { backends, engine } = await fleet(t);
  await serve(engine, backends, [100, 200, 500]);
  const client = startXdsClient(t, `127.0.0.1:${engine.boundAddress().port}`, 'xds:///web', CALLS_PER_SECOND);
  await client.ready;
  assertShares(t, await client.picks(Date.now(), PICKS), [100, 200, 500], 'before');
  const acked = await change(t, engine, backends, [500, 200, 100]);
  assertShares(t, await client.picks(acked, PICKS), [500, 200, 100], 'after the change');
  t.is(engine.clients().length, 1);
  t.deepEqual(
    engine.clients()[0]?.types.map((s) => [s.typeUrl.split('.').pop(), s.ackedVersion === s.sentVersion, s.nacks]),
    [
      ['Listener', true, 0],
      ['RouteConfiguration', true, 0],
      ['Cluster', true, 0],
      ['ClusterLoadAssignment', true, 0],
    ],
  );
});

test.serial('weight 0 is sent as DRAINING: the backend gets no new calls, and calls again when weighted', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const { backends, engine } = await fleet(t);
  await serve(engine, backends, [100, 100, 100]);
  const client = startXdsClient(t, `127.0.0.1:${engine.boundAddress().port}`, 'xds:///web', CALLS_PER_SECOND);
  await client.ready;
  const drained = await change(t, engine, backends, [0, 100, 100]);
  assertShares(t, await client.picks(drained, PICKS), [0, 100, 100], 'b1 drained');
  const back = await change(t, engine, backends, [100, 100, 100]);
  // gRPC connects to a returning endpoint on its first pick and, until the
  // connection is up, gives that pick to the next endpoint on the ring: the
  // shares are measured once b1 answers again.
  let answered = 0;
  for (let count = 10; answered === 0; count += 10) answered = (await client.picks(back, count)).b1 ?? 0;
  // On a loaded machine b1's connection can still be settling in the first
  // measurement; the shares must be right by the third.
  let counts = await client.picks(Date.now(), PICKS);
  for (let tries = 1; tries < UNDRAIN_MEASUREMENTS && !sharesMatch(counts, [100, 100, 100]); tries++) {
    t.log(`undrained, measurement ${tries}: ${JSON.stringify(counts)}`);
    counts = await client.picks(Date.now(), PICKS);
  }
  assertShares(t, counts, [100, 100, 100], 'undrained');
});

test.serial('a resource the client rejects is NACKed and counted; the client keeps its last good config', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const { backends, engine } = await fleet(t);
  await serve(engine, backends, [100, 100, 600]);
  const client = startXdsClient(t, `127.0.0.1:${engine.boundAddress().port}`, 'xds:///web', CALLS_PER_SECOND);
  await client.ready;
  // gRPC has no least_request: its client rejects the cluster (Envoy would take it).
  // Replaced in one cycle (one batch): the client never sees the service gone.
  await engine.apply([
    { op: 'remove-service', service: 'web' },
    { op: 'add-service', service: { address: 'web', scheduler: 'least_request' } },
    ...backends.map((b, i) => ({ op: 'add-destination' as const, service: 'web', destination: b.address, weight: [100, 100, 600][i] ?? 0 })),
  ]);
  const cluster = () => engine.clients()[0]?.types.find((s) => s.typeUrl.endsWith('Cluster'));
  await waitFor('a NACK of the cluster', () => (cluster()?.nacks ?? 0) >= 1, 10_000);
  const nacked = Date.now();
  t.regex(cluster()?.lastNack ?? '', /lb_policy/);
  t.not(cluster()?.ackedVersion, cluster()?.sentVersion, 'the rejected version is not ACKed');
  t.is(engine.counts().nacks, 1, 'counted once: the version is not sent again');
  assertShares(t, await client.picks(nacked, PICKS), [100, 100, 600], 'on the last good cluster');
});

test.serial('an engine restart from its state file: the client keeps its endpoints throughout', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const stateFile = path.join(mkdtempSync(path.join(tmpdir(), 'loadfeed-xds-state-')), 'xds-state.json');
  const { backends, engine } = await fleet(t, stateFile);
  await serve(engine, backends, [100, 300, 400]);
  const port = engine.boundAddress().port;
  const client = startXdsClient(t, `127.0.0.1:${port}`, 'xds:///web', CALLS_PER_SECOND);
  await client.ready;
  await engine.close();
  assertShares(t, await client.picks(Date.now(), PICKS), [100, 300, 400], 'while the server is down');
  const restarted = await createXdsEngine({ listen: `127.0.0.1:${port}`, credentials: grpc.ServerCredentials.createInsecure(), stateFile }).listening();
  t.teardown(() => restarted.close());
  t.deepEqual(
    (await restarted.observe()).services[0]?.destinations.map((d) => d.weight),
    [100, 300, 400],
    'the restarted engine serves the saved weights',
  );
  await waitFor('the client back on the restarted server', () => endpointsAcked(restarted) !== null, 30_000);
  assertShares(t, await client.picks(Date.now(), PICKS), [100, 300, 400], 'after the restart');
});
