// The HAProxy engine against Debian's haproxy on loopback (haproxy-fixture.ts):
// weights set through the engine steer real HTTP traffic, observe() agrees
// with HAProxy's own `show servers state`, batches are one connection, a
// socket without `level admin` gives a clear error, servers come and go at
// runtime. Needs the haproxy binary, not root.
import type { ExecutionContext } from 'ava';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import {
  EnginePermissionError,
  TargetBusyError,
  createHaproxyEngine,
  createRuntimeApiClient,
  type EngineOp,
  type HaproxyEngine,
  type ObservedDestination,
} from '@loadfeed/kernel-bridge';
import { waitFor } from '../helpers/wait.js';
import {
  WAIT_MS,
  countAnswers,
  get,
  haproxyGate,
  startHaproxy,
  startHttpBackend,
  type HaproxyInstance,
  type HttpBackend,
} from './haproxy-fixture.js';

const { test } = haproxyGate;
const BACKEND = 'web';
const NAMES = ['s1', 's2', 's3'] as const;

/** haproxy with backend `web` of three HTTP servers s1..s3 (weight 10 each in haproxy.cfg) behind a frontend. */
async function threeServers(
  t: ExecutionContext,
  options: { tcpStatsPort?: number } = {},
): Promise<{ haproxy: HaproxyInstance; backends: HttpBackend[]; engine: HaproxyEngine }> {
  const backends = await Promise.all(NAMES.map((name) => startHttpBackend(t, name)));
  const haproxy = await startHaproxy(t, {
    frontendBackend: BACKEND,
    backends: [{ name: BACKEND, servers: backends.map((b) => ({ name: b.name, address: b.address, weight: 10 })) }],
    ...options,
  });
  const engine = createHaproxyEngine({ socket: haproxy.adminSocket });
  t.teardown(() => engine.close());
  return { haproxy, backends, engine };
}

function weights(...w: readonly number[]): EngineOp[] {
  return NAMES.map((name, i) => ({ op: 'set-weight', service: BACKEND, destination: name, weight: w[i] ?? 0 }));
}

async function observed(engine: HaproxyEngine, service = BACKEND): Promise<Map<string, ObservedDestination>> {
  const found = (await engine.observe()).services.find((s) => s.address === service);
  return new Map((found?.destinations ?? []).map((d) => [d.address, d]));
}

// `balance roundrobin` serves each full cycle of sum(weights) requests exactly
// by weight. Right after a change HAProxy first finishes positions scheduled
// under the old weights (measured: 3/2/1 set mid-cycle gave 4/1/1 for the next
// 6 requests, then exact cycles), so one cycle is sent before counting; a
// server at weight 0 leaves the rotation at once and gets nothing even then.
test('new requests follow the weights set through the engine', async (t) => {
  const { haproxy, engine } = await threeServers(t);
  t.deepEqual(await countAnswers(haproxy.frontendSocket, 30), { s1: 10, s2: 10, s3: 10 });

  await engine.apply(weights(30, 10, 0));
  const settling = await countAnswers(haproxy.frontendSocket, 40);
  t.is(settling.s3, undefined, 'weight 0 takes no new request, not even while roundrobin settles');
  t.deepEqual(await countAnswers(haproxy.frontendSocket, 80), { s1: 60, s2: 20 });

  await engine.apply(weights(3, 2, 1));
  await countAnswers(haproxy.frontendSocket, 6);
  t.deepEqual(await countAnswers(haproxy.frontendSocket, 60), { s1: 30, s2: 20, s3: 10 });
});

test('observe() reports runtime weights, sessions and limits, as show servers state does', async (t) => {
  let release = (): void => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const slow = await startHttpBackend(t, 'slow', () => held);
  const haproxy = await startHaproxy(t, {
    frontendBackend: BACKEND,
    backends: [{ name: BACKEND, servers: [{ name: 'slow', address: slow.address, weight: 7 }] }, { name: 'spare' }],
  });
  const engine = createHaproxyEngine({ socket: haproxy.adminSocket });
  const client = createRuntimeApiClient({ socket: haproxy.userSocket });

  await engine.apply([{ op: 'set-weight', service: BACKEND, destination: 'slow', weight: 200, maxConnections: 3 }]);
  const pending = get(haproxy.frontendSocket);
  await waitFor('the held request to reach the server', () => slow.requests() > 0, WAIT_MS);
  // HAProxy counts the session on the server before the server accepts it.
  const observation = await engine.observe();
  t.deepEqual(
    observation.services.map((s) => [s.address, s.scheduler]),
    [
      [BACKEND, 'roundrobin'],
      ['spare', 'roundrobin'],
    ],
  );
  t.like((await observed(engine)).get('slow'), {
    weight: 200,
    maxConnections: 3,
    activeConnections: 1,
    totalConnections: 1,
    inactiveConnections: null,
    up: true,
  });
  const state = await client.showServersState(BACKEND);
  t.deepEqual(
    state.map((s) => [s.backend, s.server, s.userWeight, s.initialWeight]),
    [[BACKEND, 'slow', 200, 7]],
  );

  release();
  t.deepEqual(await pending, { status: 200, body: 'slow' });
  await engine.apply([{ op: 'set-weight', service: BACKEND, destination: 'slow', weight: 200, maxConnections: 0 }]);
  t.like((await observed(engine)).get('slow'), { weight: 200, maxConnections: 0, totalConnections: 1 });
});

test('a stats socket without level admin: observe() works, apply() says the socket needs level admin', async (t) => {
  const { haproxy } = await threeServers(t);
  const engine = createHaproxyEngine({ socket: haproxy.userSocket });
  t.deepEqual(
    [...(await observed(engine)).values()].map((d) => d.weight),
    [10, 10, 10],
  );
  const error = await t.throwsAsync(engine.apply(weights(1, 2, 3)), { instanceOf: EnginePermissionError });
  t.is(error?.code, 'BRIDGE_PERMISSION_DENIED');
  t.regex(error?.message ?? '', /Permission denied/);
  t.regex(error?.message ?? '', /level "user"/);
  t.regex(error?.message ?? '', /level admin/);
  t.regex(error?.message ?? '', /stats socket \S+ mode 600 level admin/);
  t.deepEqual(
    [...(await observed(engine)).values()].map((d) => d.weight),
    [10, 10, 10],
  );
});

/**
 * A Unix socket in front of HAProxy's that counts connections and records
 * the line written on each, so a test can see how the engine batches.
 */
async function countingProxy(t: ExecutionContext, target: string): Promise<{ path: string; lines: string[] }> {
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  // Half-open both ways: the engine ends its side after writing and still reads the answer.
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ path: target, allowHalfOpen: true });
    sockets.add(client).add(upstream);
    const index = lines.push('') - 1;
    client.on('data', (chunk: Buffer) => (lines[index] += chunk.toString('utf8')));
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) s.on('error', () => client.destroy());
  });
  const socketPath = path.join(path.dirname(target), 'counting.sock');
  server.listen(socketPath);
  await once(server, 'listening', { signal: AbortSignal.timeout(WAIT_MS) });
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { path: socketPath, lines };
}

test('a batch of weight and limit changes is one connection; unchanged values are not written', async (t) => {
  const { haproxy } = await threeServers(t);
  const proxy = await countingProxy(t, haproxy.adminSocket);
  const engine = createHaproxyEngine({ socket: proxy.path });
  const batch: EngineOp[] = weights(5, 6, 7).map((op, i) => ({ ...op, maxConnections: 100 + i }));

  await engine.apply(batch);
  t.is(proxy.lines.length, 2, 'one connection to read, one to write');
  t.is(proxy.lines[0], 'show stat -1 6 -1\n');
  const written = proxy.lines[1] ?? '';
  t.true(written.endsWith('\n') && written.indexOf('\n') === written.length - 1, 'one line');
  t.deepEqual(
    written.split('; ').filter((command) => !command.startsWith('show cli level')),
    [
      'set server web/s1 weight 5',
      'set maxconn server web/s1 100',
      'set server web/s2 weight 6',
      'set maxconn server web/s2 101',
      'set server web/s3 weight 7',
      'set maxconn server web/s3 102',
    ],
  );
  t.deepEqual(
    [...(await observed(engine)).values()].map((d) => [d.weight, d.maxConnections]),
    [
      [5, 100],
      [6, 101],
      [7, 102],
    ],
  );

  proxy.lines.length = 0;
  await engine.apply(batch);
  await engine.apply([]);
  t.deepEqual(proxy.lines, ['show stat -1 6 -1\n'], 're-applying only reads; an empty batch does nothing');

  proxy.lines.length = 0;
  const narrow = createHaproxyEngine({ socket: proxy.path, maxLineBytes: 256 });
  await narrow.apply(weights(1, 2, 3).map((op) => ({ ...op, maxConnections: 9 })));
  t.true(proxy.lines.length >= 3, `lines over 256 bytes are split: ${proxy.lines.length} connections`);
  for (const line of proxy.lines) t.true(Buffer.byteLength(line) <= 257, `${Buffer.byteLength(line)} bytes`);
  t.deepEqual(
    [...(await observed(engine)).values()].map((d) => [d.weight, d.maxConnections]),
    [
      [1, 9],
      [2, 9],
      [3, 9],
    ],
  );
});

test('the engine also speaks to a TCP stats socket', async (t) => {
  const free = createServer().listen(0, '127.0.0.1');
  await once(free, 'listening', { signal: AbortSignal.timeout(WAIT_MS) });
  const port = (free.address() as { port: number }).port;
  await new Promise((resolve) => free.close(resolve));
  const { haproxy } = await threeServers(t, { tcpStatsPort: port });
  const engine = createHaproxyEngine({ socket: `127.0.0.1:${port}` });
  await engine.apply(weights(0, 1, 2));
  t.deepEqual(
    [...(await observed(engine)).values()].map((d) => d.weight),
    [0, 1, 2],
  );
  const answers = await countAnswers(haproxy.frontendSocket, 3);
  t.is(answers.s1, undefined, 'weight 0 set over TCP is in force');
  t.is((answers.s2 ?? 0) + (answers.s3 ?? 0), 3);
});

test('a server added at runtime takes traffic; removing it waits for its connections', async (t) => {
  const { haproxy, engine } = await threeServers(t);
  let release = (): void => {};
  let held: Promise<void> | null = null;
  const extra = await startHttpBackend(t, 'extra', () => held ?? Promise.resolve());
  await engine.apply([...weights(0, 0, 0), { op: 'add-destination', service: BACKEND, destination: extra.address, weight: 4 }]);
  t.like((await observed(engine)).get(extra.address), { weight: 4, up: true });
  t.deepEqual(await countAnswers(haproxy.frontendSocket, 8), { extra: 8 });

  held = new Promise<void>((resolve) => (release = resolve));
  const pending = get(haproxy.frontendSocket);
  await waitFor('the held request to reach the extra server', () => extra.requests() > 8, WAIT_MS);
  const remove: EngineOp = { op: 'remove-destination', service: BACKEND, destination: extra.address };
  const error = await t.throwsAsync(engine.apply([remove]), { instanceOf: TargetBusyError });
  t.is(error?.code, 'BRIDGE_TARGET_BUSY');
  t.regex(error?.message ?? '', /maintenance/);
  t.like((await observed(engine)).get(extra.address), { up: false, activeConnections: 1 });
  t.is((await get(haproxy.frontendSocket)).status, 503, 'no server left in rotation: maintenance takes no new requests');

  release();
  t.deepEqual(await pending, { status: 200, body: 'extra' }, 'the connection in flight finished normally');
  await retryWhileBusy(() => engine.apply([remove]));
  t.false((await observed(engine)).has(extra.address));
});

/** Run `attempt` until it stops failing with TargetBusyError, for at most WAIT_MS. */
async function retryWhileBusy(attempt: () => Promise<void>): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof TargetBusyError) || performance.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
