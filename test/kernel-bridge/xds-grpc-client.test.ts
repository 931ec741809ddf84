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
import { shares, startXdsClient } from '../helpers/xds-fleet.js';

const CALLS_PER_SECOND = 400;
/**
 * Share tolerance, absolute, over at least 600 picks: random hashing on a
 * 4096-entry ring gives each backend its weight's share within about 1 %,
 * and 600 picks add a sampling error of at most 2 % (one standard deviation),
 * so 0.08 is four of them.
 */
const SHARE_TOLERANCE = 0.08;
/** The bound from a weight change to the client's picks. */
const PROPAGATION_MS = 1_000;

async function fleet(t: ExecutionContext, stateFile: string | null = null) {
  const backends: EchoBackend[] = [];
  for (const name of ['b1', 'b2', 'b3']) backends.push(await startEchoBackend(name));
  t.teardown(() => backends.forEach((b) => b.close()));
  const engine = await createXdsEngine({ listen: '127.0.0.1:0', credentials: grpc.ServerCredentials.createInsecure(), stateFile });
  t.teardown(() => engine.close());
  return { backends, engine };
}

async function setWeights(engine: XdsEngine, backends: readonly EchoBackend[], weights: readonly number[]): Promise<number> {
  const at = Date.now();
  await engine.apply(backends.map((b, i) => ({ op: 'set-weight', service: 'web', destination: b.address, weight: weights[i] ?? 0 })));
  return at;
}

function assertShares(t: ExecutionContext, counts: Record<string, number>, weights: readonly number[], what: string): void {
  const total = weights.reduce((a, b) => a + b, 0);
  const got = shares(counts, ['b1', 'b2', 'b3']);
  const picks = Object.values(counts).reduce((a, b) => a + b, 0);
  t.true(picks >= 600, `${what}: ${picks} picks, expected at least 600 (${JSON.stringify(counts)})`);
  weights.forEach((w, i) => {
    const want = w / total;
    t.true(Math.abs((got[i] ?? 0) - want) <= SHARE_TOLERANCE, `${what}: b${i + 1} share ${got[i]?.toFixed(3)}, weight share ${want.toFixed(3)} (${JSON.stringify(counts)})`);
  });
}

const sleepUntil = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - Date.now())));

test.serial('shares follow the weights; a weight change reaches the picks within 1 s', async (t) => {
  const { backends, engine } = await fleet(t);
  await engine.apply([
    { op: 'add-service', service: { address: 'web' } },
    ...backends.map((b, i) => ({ op: 'add-destination' as const, service: 'web', destination: b.address, weight: [100, 200, 500][i] ?? 0 })),
  ]);
  const client = startXdsClient(t, `127.0.0.1:${engine.boundAddress().port}`, 'xds:///web', CALLS_PER_SECOND);
  await client.ready;
  const start = Date.now();
  await sleepUntil(start + 2_500);
  assertShares(t, await client.picks(start, start + 2_500), [100, 200, 500], 'before');

  const changed = await setWeights(engine, backends, [500, 200, 100]);
  await sleepUntil(changed + PROPAGATION_MS + 2_500);
  assertShares(t, await client.picks(changed + PROPAGATION_MS, changed + PROPAGATION_MS + 2_500), [500, 200, 100], 'after the change');
  const client0 = engine.clients()[0];
  t.is(engine.clients().length, 1);
  t.deepEqual(
    client0?.types.map((s) => [s.typeUrl.split('.').pop(), s.ackedVersion === s.sentVersion, s.nacks]),
    [
      ['Listener', true, 0],
      ['RouteConfiguration', true, 0],
      ['Cluster', true, 0],
      ['ClusterLoadAssignment', true, 0],
    ],
  );
});

test.serial('weight 0 is sent as DRAINING: the backend gets no new calls within 1 s, and calls again when weighted', async (t) => {
  const { backends, engine } = await fleet(t);
  await engine.apply([
    { op: 'add-service', service: { address: 'web' } },
    ...backends.map((b) => ({ op: 'add-destination' as const, service: 'web', destination: b.address, weight: 100 })),
  ]);
  const client = startXdsClient(t, `127.0.0.1:${engine.boundAddress().port}`, 'xds:///web', CALLS_PER_SECOND);
  await client.ready;
  const drained = await setWeights(engine, backends, [0, 100, 100]);
  await sleepUntil(drained + PROPAGATION_MS + 2_000);
  const during = await client.picks(drained + PROPAGATION_MS, drained + PROPAGATION_MS + 2_000);
  t.is(during.b1, undefined, `b1 drained, yet picked: ${JSON.stringify(during)}`);
  t.true((during.b2 ?? 0) > 0 && (during.b3 ?? 0) > 0, JSON.stringify(during));
  t.deepEqual(Object.keys(during).filter((k) => k.startsWith('error')), [], 'no call failed');

  const back = await setWeights(engine, backends, [100, 100, 100]);
  await sleepUntil(back + PROPAGATION_MS + 2_000);
  assertShares(t, await client.picks(back + PROPAGATION_MS, back + PROPAGATION_MS + 2_000), [100, 100, 100], 'undrained');
});

test.serial('a resource the client rejects is NACKed and counted; the client keeps its last good config', async (t) => {
  const { backends, engine } = await fleet(t);
  const destinations = (weights: number[]) =>
    backends.map((b, i) => ({ op: 'add-destination' as const, service: 'web', destination: b.address, weight: weights[i] ?? 0 }));
  await engine.apply([{ op: 'add-service', service: { address: 'web' } }, ...destinations([100, 100, 600])]);
  const client = startXdsClient(t, `127.0.0.1:${engine.boundAddress().port}`, 'xds:///web', CALLS_PER_SECOND);
  await client.ready;
  // gRPC has no least_request: its client rejects the cluster (Envoy would take it).
  const replaced = Date.now();
  await engine.apply([
    { op: 'remove-service', service: 'web' },
    { op: 'add-service', service: { address: 'web', scheduler: 'least_request' } },
    ...destinations([100, 100, 600]),
  ]);
  await waitFor('a NACK of the cluster', () => (engine.clients()[0]?.types.find((s) => s.typeUrl.endsWith('Cluster'))?.nacks ?? 0) >= 1, 10_000);
  const cluster = engine.clients()[0]?.types.find((s) => s.typeUrl.endsWith('Cluster'));
  t.regex(cluster?.lastNack ?? '', /lb_policy|LEAST_REQUEST/);
  t.not(cluster?.ackedVersion, cluster?.sentVersion, 'the rejected version is not ACKed');
  t.is(engine.counts().nacks, 1, 'counted once: the version is not sent again');
  await sleepUntil(replaced + PROPAGATION_MS + 2_000);
  assertShares(t, await client.picks(replaced + PROPAGATION_MS, replaced + PROPAGATION_MS + 2_000), [100, 100, 600], 'on the last good cluster');
});

test.serial('an engine restart from its state file: the client keeps its endpoints throughout', async (t) => {
  const stateFile = path.join(mkdtempSync(path.join(tmpdir(), 'loadfeed-xds-state-')), 'xds-state.json');
  const { backends, engine } = await fleet(t, stateFile);
  await engine.apply([
    { op: 'add-service', service: { address: 'web' } },
    ...backends.map((b, i) => ({ op: 'add-destination' as const, service: 'web', destination: b.address, weight: [100, 300, 400][i] ?? 0 })),
  ]);
  const port = engine.boundAddress().port;
  const client = startXdsClient(t, `127.0.0.1:${port}`, 'xds:///web', CALLS_PER_SECOND);
  await client.ready;
  await engine.close();
  const down = Date.now();
  await sleepUntil(down + 2_000);
  assertShares(t, await client.picks(down, down + 2_000), [100, 300, 400], 'while the server is down');
  const restarted = await createXdsEngine({ listen: `127.0.0.1:${port}`, credentials: grpc.ServerCredentials.createInsecure(), stateFile });
  t.teardown(() => restarted.close());
  t.deepEqual(
    (await restarted.observe()).services[0]?.destinations.map((d) => d.weight),
    [100, 300, 400],
    'the restarted engine serves the saved weights',
  );
  await waitFor('the client back on the restarted server', () => restarted.clients().some((c) => c.types.some((s) => s.ackedVersion !== null)), 20_000);
  const up = Date.now();
  await sleepUntil(up + 2_500);
  assertShares(t, await client.picks(down, up + 2_500), [100, 300, 400], 'across the restart');
});
