// The xds engine's protocol, seen from a bare ADS client that controls every
// ACK, NACK and nonce (helpers/ads-client.ts): what is served for a service,
// versions, nonces, ACK/NACK, pushing only what changed, one response in
// flight per type, holding requests until there is a state, TLS with client
// certificates, and the state file.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  CLUSTER_TYPE,
  createXdsEngine,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  ROUTE_TYPE,
  type EngineOp,
  type XdsEngine,
  type XdsEngineEvent,
} from '@loadfeed/kernel-bridge';
import { openAdsStream, type AdsResponse, type AdsStream } from '../helpers/ads-client.js';
import { binPath } from '../helpers/launcher.js';
import { waitFor } from '../helpers/wait.js';

const insecure = grpc.ServerCredentials.createInsecure();

async function engineWith(t: ExecutionContext, ops: EngineOp[], stateFile: string | null = null, events: XdsEngineEvent[] = []): Promise<XdsEngine> {
  const engine = await createXdsEngine({ listen: '127.0.0.1:0', credentials: insecure, stateFile, onEvent: (e) => events.push(e) }).listening();
  t.teardown(() => engine.close());
  if (ops.length > 0) await engine.apply(ops);
  return engine;
}

function stream(t: ExecutionContext, engine: XdsEngine): AdsStream {
  const s = openAdsStream(`127.0.0.1:${engine.boundAddress().port}`);
  t.teardown(() => s.close());
  return s;
}

const service = (name: string, weights: Record<string, number>, scheduler?: string): EngineOp[] => [
  { op: 'add-service', service: { address: name, ...(scheduler === undefined ? {} : { scheduler }) } },
  ...Object.entries(weights).map(([destination, weight]) => ({ op: 'add-destination' as const, service: name, destination, weight })),
];

/** The endpoints of a ClusterLoadAssignment as [address:port, weight, health]. */
function endpointsOf(resource: Record<string, unknown> | undefined): [string, number, string][] {
  const cla = resource as { endpoints: { lbEndpoints: { endpoint: { address: { socketAddress: { address: string; portValue: number } } }; loadBalancingWeight: { value: number }; healthStatus: string }[] }[] };
  return cla.endpoints.flatMap((l) =>
    l.lbEndpoints.map((e): [string, number, string] => [
      `${e.endpoint.address.socketAddress.address}:${e.endpoint.address.socketAddress.portValue}`,
      e.loadBalancingWeight.value,
      e.healthStatus,
    ]),
  );
}

async function subscribe(s: AdsStream, typeUrl: string, resourceNames: string[] = []): Promise<AdsResponse> {
  s.send({ typeUrl, resourceNames, node: { id: 'test-node' } });
  const response = await s.next();
  s.ack(response, resourceNames);
  return response;
}

test('a service is served as listener → route → cluster → endpoints, all named after it; weight 0 as DRAINING with weight 1', async (t) => {
  const engine = await engineWith(t, service('web', { '127.0.0.1:9001': 7, '[::1]:9002': 0 }));
  const s = stream(t, engine);
  const listener = await subscribe(s, LISTENER_TYPE, ['web']);
  t.like(listener.resources[0], { name: 'web', apiListener: { apiListener: { type_url: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager' } } });
  const route = await subscribe(s, ROUTE_TYPE, ['web']);
  t.like(route.resources[0], { name: 'web' });
  t.is((route.resources[0] as { virtualHosts: { routes: { route: { cluster: string } }[] }[] }).virtualHosts[0]?.routes[0]?.route.cluster, 'web');
  const cluster = await subscribe(s, CLUSTER_TYPE);
  t.like(cluster.resources[0], {
    name: 'web',
    type: 'EDS',
    lbPolicy: 'RING_HASH',
    edsClusterConfig: { serviceName: 'web' },
  });
  // Present and 0 % (proto3 leaves the 0 out of the encoding): no panic mode.
  t.deepEqual((cluster.resources[0] as { commonLbConfig: unknown }).commonLbConfig, { healthyPanicThreshold: {} });
  const endpoints = await subscribe(s, ENDPOINT_TYPE, ['web']);
  t.deepEqual(endpointsOf(endpoints.resources[0]), [
    ['127.0.0.1:9001', 7, 'HEALTHY'],
    ['::1:9002', 1, 'DRAINING'],
  ]);
  await waitFor('the last ACK', () => engine.clients()[0]?.types.every((x) => x.ackedVersion !== null) === true);
  t.deepEqual(
    engine.clients()[0]?.types.map((x) => [x.typeUrl, x.ackedVersion, x.nacks]),
    [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE].map((type) => [type, '1', 0]),
  );
  t.is(engine.clients()[0]?.node, 'test-node');
});

test('only what changed is pushed: one response per type per apply, only the changed load assignment', async (t) => {
  const engine = await engineWith(t, [...service('web', { '127.0.0.1:9001': 10, '127.0.0.1:9002': 10 }), ...service('api', { '127.0.0.1:9101': 5 })]);
  const s = stream(t, engine);
  const clusters = await subscribe(s, CLUSTER_TYPE);
  t.is(clusters.resources.length, 2);
  const first = await subscribe(s, ENDPOINT_TYPE, ['web', 'api']);
  t.is(first.resources.length, 2);
  const sent = engine.counts().responses;
  // A cycle writing many weights of one service: one response, with one resource.
  await engine.apply([
    { op: 'set-weight', service: 'web', destination: '127.0.0.1:9001', weight: 20 },
    { op: 'set-weight', service: 'web', destination: '127.0.0.1:9002', weight: 30 },
    { op: 'set-weight', service: 'api', destination: '127.0.0.1:9101', weight: 5 }, // unchanged
  ]);
  const update = await s.next();
  t.is(update.typeUrl, ENDPOINT_TYPE);
  t.deepEqual(update.resources.map((r) => r.clusterName), ['web']);
  t.deepEqual(endpointsOf(update.resources[0]), [
    ['127.0.0.1:9001', 20, 'HEALTHY'],
    ['127.0.0.1:9002', 30, 'HEALTHY'],
  ]);
  t.not(update.versionInfo, first.versionInfo);
  s.ack(update, ['web', 'api']);
  t.is(engine.counts().responses, sent + 1, 'the cluster was not sent again');
  // Writing the weights it has already: nothing to send.
  await engine.apply([{ op: 'set-weight', service: 'web', destination: '127.0.0.1:9001', weight: 20 }]);
  await waitFor('the ACK', () => engine.clients()[0]?.types.find((x) => x.typeUrl === ENDPOINT_TYPE)?.ackedVersion === update.versionInfo);
  t.is(engine.counts().responses, sent + 1);
  t.is(s.queued, 0);
});

test('one response in flight per type: changes before the ACK are merged into the next response', async (t) => {
  const engine = await engineWith(t, service('web', { '127.0.0.1:9001': 10 }));
  const s = stream(t, engine);
  await subscribe(s, ENDPOINT_TYPE, ['web']);
  await engine.apply([{ op: 'set-weight', service: 'web', destination: '127.0.0.1:9001', weight: 11 }]);
  const second = await s.next();
  // Not ACKed yet: these two wait, and go as one.
  await engine.apply([{ op: 'set-weight', service: 'web', destination: '127.0.0.1:9001', weight: 12 }]);
  await engine.apply([{ op: 'set-weight', service: 'web', destination: '127.0.0.1:9001', weight: 13 }]);
  await t.throwsAsync(s.next(300), { message: /no ADS response/ });
  s.ack(second, ['web']);
  const merged = await s.next();
  t.deepEqual(endpointsOf(merged.resources[0]), [['127.0.0.1:9001', 13, 'HEALTHY']]);
  t.is(merged.versionInfo, String(engine.counts().version));
});

test('a NACK is counted and reported, its version is not resent, a stale nonce is ignored; the next change is sent', async (t) => {
  const events: XdsEngineEvent[] = [];
  const engine = await engineWith(t, service('web', { '127.0.0.1:9001': 10 }), null, events);
  const s = stream(t, engine);
  const first = await subscribe(s, ENDPOINT_TYPE, ['web']);
  await engine.apply([{ op: 'set-weight', service: 'web', destination: '127.0.0.1:9001', weight: 11 }]);
  const rejected = await s.next();
  // A request naming the first (stale) nonce: ignored, neither ACK nor NACK.
  s.send({ typeUrl: ENDPOINT_TYPE, resourceNames: ['web'], versionInfo: first.versionInfo, responseNonce: first.nonce });
  s.send({
    typeUrl: ENDPOINT_TYPE,
    resourceNames: ['web'],
    versionInfo: first.versionInfo,
    responseNonce: rejected.nonce,
    errorDetail: { code: 3, message: 'weight out of range (test)' },
  });
  await waitFor('the NACK', () => engine.counts().nacks === 1);
  const state = engine.clients()[0]?.types.find((x) => x.typeUrl === ENDPOINT_TYPE);
  t.like(state, { ackedVersion: first.versionInfo, sentVersion: rejected.versionInfo, nacks: 1, lastNack: 'weight out of range (test)' });
  t.like(events.find((e) => e.kind === 'nack'), { kind: 'nack', node: 'test-node', typeUrl: ENDPOINT_TYPE, version: rejected.versionInfo });
  await t.throwsAsync(s.next(300), { message: /no ADS response/ }, 'the NACKed version is not sent again');
  await engine.apply([{ op: 'set-weight', service: 'web', destination: '127.0.0.1:9001', weight: 12 }]);
  t.deepEqual(endpointsOf((await s.next()).resources[0]), [['127.0.0.1:9001', 12, 'HEALTHY']]);
});

test('listeners and clusters: a wildcard subscription gets every one, and a removed service is absent from the next response', async (t) => {
  const engine = await engineWith(t, [...service('web', { '127.0.0.1:9001': 1 }), ...service('api', { '127.0.0.1:9101': 1 })]);
  const s = stream(t, engine);
  const all = await subscribe(s, CLUSTER_TYPE);
  t.deepEqual(all.resources.map((r) => r.name).sort(), ['api', 'web']);
  await engine.apply([{ op: 'remove-service', service: 'api' }]);
  const after = await s.next();
  t.deepEqual(after.resources.map((r) => r.name), ['web']);
});

test('until the engine has a state, requests are held: a restarted server never answers "no such cluster"', async (t) => {
  const engine = await engineWith(t, []);
  const s = stream(t, engine);
  s.send({ typeUrl: CLUSTER_TYPE, node: { id: 'early' } });
  await t.throwsAsync(s.next(300), { message: /no ADS response/ });
  await engine.apply(service('web', { '127.0.0.1:9001': 1 }));
  t.deepEqual((await s.next()).resources.map((r) => r.name), ['web']);
});

test('the state file carries the served state across a restart; a malformed one is reported and nothing loaded', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'loadfeed-xds-state-'));
  const file = path.join(dir, 'xds-state.json');
  const first = await createXdsEngine({ listen: '127.0.0.1:0', credentials: insecure, stateFile: file }).listening();
  await first.apply(service('web', { '127.0.0.1:9001': 3, '127.0.0.1:9002': 0 }, 'round_robin'));
  await first.close();
  const second = await engineWith(t, [], file);
  t.deepEqual((await second.observe()).services, [
    {
      address: 'web',
      scheduler: 'round_robin',
      destinations: [
        { address: '127.0.0.1:9001', weight: 3, activeConnections: null, inactiveConnections: null, totalConnections: null, maxConnections: null, up: true },
        { address: '127.0.0.1:9002', weight: 0, activeConnections: null, inactiveConnections: null, totalConnections: null, maxConnections: null, up: true },
      ],
    },
  ]);
  // Served at once, before any apply.
  t.deepEqual(endpointsOf((await subscribe(stream(t, second), ENDPOINT_TYPE, ['web'])).resources[0]), [
    ['127.0.0.1:9001', 3, 'HEALTHY'],
    ['127.0.0.1:9002', 1, 'DRAINING'],
  ]);

  writeFileSync(file, readFileSync(file, 'utf8').replace('"127.0.0.1:9001":3', '"127.0.0.1:9001":"three"'));
  const events: XdsEngineEvent[] = [];
  const third = await engineWith(t, [], file, events);
  t.deepEqual((await third.observe()).services, []);
  t.like(events[0], { kind: 'state-error' });
  t.regex((events[0] as { message: string }).message, /xds-state\.json: services\.web\.destinations\.127\.0\.0\.1:9001: "three" is not a number; starting empty/);
});

test('bad ops are refused before anything is applied: an addressed service name, an unknown scheduler, weights out of range', async (t) => {
  const engine = await engineWith(t, service('web', { '127.0.0.1:9001': 1 }));
  await t.throwsAsync(engine.apply([{ op: 'add-service', service: { address: 'tcp 10.0.0.1:80' } }]), { message: /xDS service is named/ });
  await t.throwsAsync(engine.apply([{ op: 'add-service', service: { address: 'api', scheduler: 'wlc' } }]), { message: /ring_hash, round_robin, least_request/ });
  await t.throwsAsync(engine.apply([{ op: 'set-weight', service: 'web', destination: '127.0.0.1:9001', weight: 65_536 }]), { code: 'BRIDGE_WEIGHT_RANGE' });
  t.deepEqual((await engine.observe()).services.map((s) => s.address), ['web']);
});

test('TLS with client certificates: a client with a certificate of the CA is served, one without is refused', async (t) => {
  const pki = path.join(mkdtempSync(path.join(tmpdir(), 'loadfeed-xds-pki-')), 'pki');
  execFileSync(process.execPath, [binPath('@loadfeed/poller', 'loadfeed'), 'certs', '--out', pki, '--node', 'envoy-1']);
  const pem = (name: string): Buffer => readFileSync(path.join(pki, name));
  const engine = await createXdsEngine({
    listen: '127.0.0.1:0',
    credentials: grpc.ServerCredentials.createSsl(pem('ca.pem'), [{ cert_chain: pem('poller.pem'), private_key: pem('poller.key') }], true),
    stateFile: null,
  }).listening();
  t.teardown(() => engine.close());
  await engine.apply(service('web', { '127.0.0.1:9001': 1 }));
  const target = `127.0.0.1:${engine.boundAddress().port}`;
  const byName = { 'grpc.ssl_target_name_override': 'localhost' };
  const trusted = openAdsStream(target, grpc.credentials.createSsl(pem('ca.pem'), pem('envoy-1.key'), pem('envoy-1.pem')), byName);
  t.teardown(() => trusted.close());
  trusted.send({ typeUrl: CLUSTER_TYPE, node: { id: 'envoy-1' } });
  t.deepEqual((await trusted.next()).resources.map((r) => r.name), ['web']);
  const anonymous = openAdsStream(target, grpc.credentials.createSsl(pem('ca.pem')), byName);
  t.teardown(() => anonymous.close());
  anonymous.send({ typeUrl: CLUSTER_TYPE });
  await t.throwsAsync(anonymous.next(), { message: /UNAVAILABLE/ });
  const plaintext = openAdsStream(target);
  t.teardown(() => plaintext.close());
  plaintext.send({ typeUrl: CLUSTER_TYPE });
  await t.throwsAsync(plaintext.next(), { message: /UNAVAILABLE/ });
});

test('a client the caller does not admit is refused with its reason', async (t) => {
  const engine = await createXdsEngine({
    listen: '127.0.0.1:0',
    credentials: insecure,
    stateFile: null,
    admit: (peer) => (peer.startsWith('127.0.0.1:') ? 'plaintext xDS is served to loopback only (test)' : null),
  }).listening();
  t.teardown(() => engine.close());
  await engine.apply(service('web', { '127.0.0.1:9001': 1 }));
  const s = stream(t, engine);
  s.send({ typeUrl: CLUSTER_TYPE });
  await t.throwsAsync(s.next(), { message: /UNAUTHENTICATED: plaintext xDS is served to loopback only \(test\)/ });
  t.deepEqual(engine.clients(), []);
});
