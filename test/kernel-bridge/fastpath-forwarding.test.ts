// The fast path forwarding real TCP on loopback: backends on listen(0) that
// say who they are, clients that count who answered. Every wait is for an
// event or a condition, bounded by WAIT_MS.
import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import {
  ListenerError,
  UnsupportedError,
  createFastpathEngine,
  type FastpathEngine,
  type ObservedDestination,
} from '@loadfeed/kernel-bridge';
import { waitFor } from '../helpers/wait.js';
import {
  HOST,
  SERVICE,
  WAIT_MS,
  echoWithName,
  exchange,
  finish,
  openClient,
  portOf,
  refusingAddress,
  request,
  silentAddress,
  spread,
  startBackend,
  startFastpath,
} from './loopback.js';

const MiB = 1024 * 1024;

async function destinations(engine: FastpathEngine): Promise<readonly ObservedDestination[]> {
  const [service] = (await engine.observe()).services;
  return service?.destinations ?? [];
}

async function destination(engine: FastpathEngine, address: string): Promise<ObservedDestination | undefined> {
  return (await destinations(engine)).find((d) => d.address === address);
}

/** Requests complete with (or before) their handle, and may still be listed just after their callback. */
const REQUEST_KINDS = new Set(['CloseReq', 'ConnectWrap', 'ShutdownWrap', 'WriteWrap']);

/**
 * Kinds of handles alive now (sockets, listeners, ref'd timers), sorted for
 * comparison. A socket's own timeout is an unref'd timer and is not listed:
 * the engine's only timers, cleared when their socket is destroyed.
 */
function activeResources(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((kind) => !REQUEST_KINDS.has(kind))
    .sort();
}

// Serial tests run before the concurrent ones, so nothing else holds handles.
test.serial('close() destroys forwarded connections and leaves no handle behind', async (t) => {
  const echo = await startBackend(t, 'echo', echoWithName('echo'));
  const baseline = activeResources();
  const { engine, port } = await startFastpath(t, [[echo.address, 1]]);
  const clients = await Promise.all([openClient(port), openClient(port), openClient(port, true)]);
  for (const client of clients) t.is(await exchange(client, 'hi'), 'echo:hi');
  clients[2]?.end();
  const clientsClosed = clients.map((client) => {
    client.on('error', () => {}); // a reset is as good as a FIN here
    return new Promise((resolve) => client.once('close', resolve));
  });
  t.like(engine.diagnostics(), { listeners: 1, connections: 3, sockets: 6 });

  await engine.close();
  t.deepEqual(engine.diagnostics(), { listeners: 0, connections: 0, sockets: 0, bufferedBytes: 0 });
  await Promise.all(clientsClosed);
  await waitFor('active handles back to the baseline', () => activeResources().join() === baseline.join(), WAIT_MS);
  t.deepEqual(activeResources(), baseline);
  await t.throwsAsync(engine.apply([]), { code: 'BRIDGE_ENGINE_CLOSED' });
});

test.serial('close() during a connect attempt leaves no handle behind', async (t) => {
  const silent = await silentAddress(t);
  const baseline = activeResources();
  const { engine, port } = await startFastpath(t, [[silent, 1]], 'wlc', { connectTimeoutMs: 60_000 });
  const client = connect({ host: HOST, port });
  client.on('error', () => {});
  const clientClosed = once(client, 'close', { signal: AbortSignal.timeout(WAIT_MS) });
  await waitFor('the engine connecting upstream', () => engine.diagnostics().sockets === 2, WAIT_MS);

  await engine.close();
  t.deepEqual(engine.diagnostics(), { listeners: 0, connections: 0, sockets: 0, bufferedBytes: 0 });
  await clientClosed;
  await waitFor('active handles back to the baseline', () => activeResources().join() === baseline.join(), WAIT_MS);
  t.deepEqual(activeResources(), baseline);
});

test('a destination that does not answer within connectTimeoutMs is skipped and shown down', async (t) => {
  const CONNECT_TIMEOUT_MS = 200;
  const silent = await silentAddress(t);
  const live = await startBackend(t, 'live');
  const { engine, port } = await startFastpath(t, [[silent, 5], [live.address, 1]], 'swrr', {
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    downPeriodMs: 60_000,
  });

  const started = performance.now();
  t.is(await request(port), 'live');
  t.true(performance.now() - started >= CONNECT_TIMEOUT_MS, 'the silent destination was tried first');
  t.like(await destination(engine, silent), { up: false, activeConnections: 0, totalConnections: 0 });
});

test('swrr: a few hundred short connections, 8 at a time, are shared 3:1', async (t) => {
  const COUNT = 400;
  const TOLERANCE = 0.05; // of the total; swrr is exact whatever the concurrency
  const a = await startBackend(t, 'a');
  const b = await startBackend(t, 'b');
  const { engine, port } = await startFastpath(t, [[a.address, 3], [b.address, 1]], 'swrr');

  const answered = await spread(port, COUNT, 8);
  const fromA = answered.get('a') ?? 0;
  t.deepEqual([...answered.keys()].sort(), ['a', 'b']);
  t.true(Math.abs(fromA / COUNT - 0.75) <= TOLERANCE, `a answered ${fromA} of ${COUNT}`);
  await waitFor('every forwarded connection finished', () => engine.diagnostics().connections === 0, WAIT_MS);
  t.deepEqual(
    (await destinations(engine)).map((d) => [d.address, d.totalConnections, d.activeConnections]),
    [
      [a.address, fromA, 0],
      [b.address, COUNT - fromA, 0],
    ],
  );
});

// wlc balances open connections. A connection still closing counts as open, and
// here client and engine share one event loop, so overlapping short connections
// measure close latency rather than load: test the two cases wlc is about.
test('wlc: short connections arriving while the engine is idle are shared 3:1', async (t) => {
  const COUNT = 200;
  const TOLERANCE = 0.05; // of the total; ties go to smooth WRR, which is exact
  const a = await startBackend(t, 'a');
  const b = await startBackend(t, 'b');
  const { engine, port } = await startFastpath(t, [[a.address, 3], [b.address, 1]], 'wlc');

  let fromA = 0;
  for (let i = 0; i < COUNT; i++) {
    if ((await request(port)) === 'a') fromA++;
    await waitFor('the engine to be idle', () => engine.diagnostics().connections === 0, WAIT_MS);
  }
  t.true(Math.abs(fromA / COUNT - 0.75) <= TOLERANCE, `a answered ${fromA} of ${COUNT}`);
  t.deepEqual(
    (await destinations(engine)).map((d) => d.totalConnections),
    [fromA, COUNT - fromA],
  );
});

test('wlc: connections held open are spread 3:1', async (t) => {
  const COUNT = 40;
  const a = await startBackend(t, 'a', echoWithName('a'));
  const b = await startBackend(t, 'b', echoWithName('b'));
  const { engine, port } = await startFastpath(t, [[a.address, 3], [b.address, 1]], 'wlc');

  const clients = await Promise.all(Array.from({ length: COUNT }, () => openClient(port)));
  const replies = await Promise.all(clients.map((client) => exchange(client, 'x')));
  t.is(replies.filter((r) => r === 'a:x').length, 30);
  t.is(replies.filter((r) => r === 'b:x').length, 10);
  t.deepEqual(
    (await destinations(engine)).map((d) => d.activeConnections),
    [30, 10],
  );
  await Promise.all(clients.map(finish));
});

// peak-ewma learns each destination's connection time from the connections
// it forwards: a destination that answers late is left alone until its
// estimate fades (a time constant of 500 ms) below the fast one's: after
// 500 ms × ln(1 s / the fast one's time), during which the fast one serves
// several connections even if a busy machine made each take 100 ms (ln 10:
// 1.15 s), so the bound below holds on a loaded machine too.
test('peak-ewma: a destination that answers late gets few of the short connections; equal weights', async (t) => {
  const COUNT = 40;
  const fast = await startBackend(t, 'fast');
  const slow = await startBackend(t, 'slow', (socket) => {
    const timer = setTimeout(() => socket.end('slow'), 1_000);
    socket.once('close', () => clearTimeout(timer));
  });
  const { engine, port } = await startFastpath(t, [[fast.address, 1], [slow.address, 1]], 'peak-ewma');

  let fromSlow = 0;
  for (let i = 0; i < COUNT; i++) {
    if ((await request(port)) === 'slow') fromSlow++;
    await waitFor('the engine to be idle', () => engine.diagnostics().connections === 0, WAIT_MS);
  }
  t.true(fromSlow >= 1, 'the slow destination was tried');
  t.true(fromSlow <= COUNT / 4, `slow answered ${fromSlow} of ${COUNT} (swrr-sed would give it half)`);
});

test('weights change live while a long-lived connection keeps working', async (t) => {
  const a = await startBackend(t, 'a', echoWithName('a'));
  const b = await startBackend(t, 'b', echoWithName('b'));
  const { engine, port } = await startFastpath(t, [[a.address, 1], [b.address, 0]], 'swrr');
  const longLived = await openClient(port);
  t.is(await exchange(longLived, 'one'), 'a:one');

  await engine.apply([
    { op: 'set-weight', service: SERVICE, destination: b.address, weight: 3 },
    { op: 'set-weight', service: SERVICE, destination: a.address, weight: 1 },
  ]);
  t.is(await exchange(longLived, 'two'), 'a:two');
  const answered = { a: 0, b: 0 };
  for (let i = 0; i < 40; i++) answered[(await request(port, 'x')) === 'a:x' ? 'a' : 'b']++;
  t.deepEqual(answered, { a: 10, b: 30 });
  t.is(await exchange(longLived, 'three'), 'a:three');
  await finish(longLived);
});

test('weight 0 takes no new connections while an existing one finishes', async (t) => {
  const a = await startBackend(t, 'a', echoWithName('a'));
  const b = await startBackend(t, 'b', echoWithName('b'));
  const { engine, port } = await startFastpath(t, [[a.address, 1], [b.address, 1]]);
  const existing = await openClient(port);
  const first = await exchange(existing, 'hello');
  const [drained, other] = first.startsWith('a:') ? [a, b] : [b, a];

  await engine.apply([{ op: 'set-weight', service: SERVICE, destination: drained.address, weight: 0 }]);
  for (let i = 0; i < 20; i++) t.is(await request(port, 'x'), `${other.name}:x`);
  t.like(await destination(engine, drained.address), { weight: 0, activeConnections: 1, totalConnections: 1 });
  t.is(await exchange(existing, 'still there'), `${drained.name}:still there`);

  await finish(existing);
  await waitFor('the drained connection finished', () => engine.diagnostics().connections === 0, WAIT_MS);
  t.like(await destination(engine, drained.address), { weight: 0, activeConnections: 0, totalConnections: 1 });
  t.like(await destination(engine, other.address), { activeConnections: 0, totalConnections: 20 });
});

test('a refused destination is retried on the next one and shown down', async (t) => {
  const dead = await refusingAddress();
  const live = await startBackend(t, 'live');
  // swrr with the larger weight on the dead one: it is tried first.
  const { engine, port } = await startFastpath(t, [[dead, 5], [live.address, 1]], 'swrr', { downPeriodMs: 60_000 });

  t.is(await request(port), 'live');
  t.like(await destination(engine, dead), { up: false, activeConnections: 0, totalConnections: 0 });
  t.like(await destination(engine, live.address), { up: true, totalConnections: 1 });
  for (let i = 0; i < 5; i++) t.is(await request(port), 'live', 'the down destination is skipped');
});

test('a down destination is tried again once the down period has passed', async (t) => {
  const ATTEMPTS = 1_000;
  const dead = await refusingAddress();
  const live = await startBackend(t, 'live');
  const { engine, port } = await startFastpath(t, [[dead, 5], [live.address, 1]], 'swrr', { downPeriodMs: 50 });
  // swrr tries the heavier, dead destination first; "shown down" is asserted
  // above with a down period that cannot run out during the test.
  t.is(await request(port), 'live');

  await startBackend(t, 'revived', undefined, dead);
  let reply = '';
  for (let i = 0; i < ATTEMPTS && reply !== 'revived'; i++) reply = await request(port);
  t.is(reply, 'revived', `within ${ATTEMPTS} requests`);
  t.like(await destination(engine, dead), { up: true });
});

test('when no destination accepts, the client is reset and every one is shown down', async (t) => {
  const deadA = await refusingAddress();
  const deadB = await refusingAddress();
  const { engine, port } = await startFastpath(t, [[deadA, 1], [deadB, 1]], 'wlc', { downPeriodMs: 60_000 });
  const client = connect({ host: HOST, port });
  let received = 0;
  client.on('data', (chunk: Buffer) => (received += chunk.length));
  const [error] = (await once(client, 'error', { signal: AbortSignal.timeout(WAIT_MS) })) as [NodeJS.ErrnoException];
  t.is(error.code, 'ECONNRESET');
  t.is(received, 0);
  t.deepEqual(
    (await destinations(engine)).map((d) => d.up),
    [false, false],
  );
  await waitFor('the refused connection finished', () => engine.diagnostics().connections === 0, WAIT_MS);
});

test('half-close: the client ends first and still receives the reply', async (t) => {
  const backend = await startBackend(t, 'b', (socket) => {
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => socket.end(`b got ${received}`));
  });
  const { port } = await startFastpath(t, [[backend.address, 1]]);
  t.is(await request(port, 'ping'), 'b got ping');
});

test('half-close: the server ends first and still receives what the client sends after', async (t) => {
  let lateData = '';
  let markEnded = (): void => {};
  const backendEnded = new Promise<void>((resolve) => (markEnded = resolve));
  const backend = await startBackend(t, 'b', (socket) => {
    socket.end('greeting');
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (lateData += chunk));
    socket.on('end', markEnded);
  });
  const { port } = await startFastpath(t, [[backend.address, 1]]);

  const client = await openClient(port, true);
  const closed = once(client, 'close', { signal: AbortSignal.timeout(WAIT_MS) });
  client.setEncoding('utf8');
  let greeting = '';
  client.on('data', (chunk: string) => (greeting += chunk));
  await once(client, 'end', { signal: AbortSignal.timeout(WAIT_MS) });
  t.is(greeting, 'greeting');
  client.end('sent after the server ended');
  await backendEnded;
  t.is(lateData, 'sent after the server ended');
  await closed;
});

const BACKPRESSURE_BYTES = 32 * MiB;
const BACKPRESSURE_CHUNK = 64 * 1024;
/** What the engine may hold in its buffers while one side is slow. */
const MAX_ENGINE_BUFFER = 1 * MiB;

/** Write `payload` in chunks, waiting for 'drain' whenever the stream asks; resolves with how often it had to wait. */
async function writeWithBackpressure(stream: NodeJS.WritableStream, payload: Buffer, onWait: () => void): Promise<number> {
  let waited = 0;
  for (let offset = 0; offset < payload.length; offset += BACKPRESSURE_CHUNK) {
    if (stream.write(payload.subarray(offset, offset + BACKPRESSURE_CHUNK))) continue;
    waited++;
    onWait();
    await once(stream as unknown as NodeJS.EventEmitter, 'drain', { signal: AbortSignal.timeout(WAIT_MS) });
  }
  return waited;
}

/** Read slowly (the workload, not synchronisation: at most one chunk per millisecond), hashing what arrives. */
function readSlowly(socket: Socket, onChunk: () => void): { bytes: () => number; digest: () => string } {
  const hash = createHash('sha256');
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    received += chunk.length;
    onChunk();
    socket.pause();
    setTimeout(() => socket.resume(), 1);
  });
  return { bytes: () => received, digest: () => hash.digest('hex') };
}

/** A fast path with no destination yet, a random payload and its digest, and a watch on the engine's buffered bytes. */
async function backpressureSetup(t: ExecutionContext) {
  const payload = randomBytes(BACKPRESSURE_BYTES);
  const digest = createHash('sha256').update(payload).digest('hex');
  const { engine, port } = await startFastpath(t, []);
  let max = 0;
  const sample = (): void => {
    max = Math.max(max, engine.diagnostics().bufferedBytes);
  };
  return { engine, port, payload, digest, sample, maxBuffered: () => max };
}

test('backpressure: a slow backend holds the client back; the engine buffers little and loses nothing', async (t) => {
  const { engine, port, payload, digest, sample, maxBuffered } = await backpressureSetup(t);

  const slow = await startBackend(t, 'slow', (socket) => {
    const read = readSlowly(socket, sample);
    socket.on('end', () => socket.end(`${read.bytes()} ${read.digest()}`));
  });
  await engine.apply([{ op: 'add-destination', service: SERVICE, destination: slow.address, weight: 1 }]);
  const client = await openClient(port);
  client.setEncoding('utf8');
  let reply = '';
  client.on('data', (chunk: string) => (reply += chunk));
  const closed = once(client, 'close', { signal: AbortSignal.timeout(4 * WAIT_MS) });
  const heldBack = await writeWithBackpressure(client, payload, sample);
  client.end();
  await closed;

  t.is(reply, `${BACKPRESSURE_BYTES} ${digest}`);
  t.true(heldBack > 0, 'the client was made to wait');
  t.true(maxBuffered() < MAX_ENGINE_BUFFER, `the engine buffered at most ${maxBuffered()} bytes`);
  t.log(`engine buffered at most ${maxBuffered()} bytes; client waited for drain ${heldBack} times`);
});

test('backpressure: a slow client holds the backend back; the engine buffers little and loses nothing', async (t) => {
  const { engine, port, payload, digest, sample, maxBuffered } = await backpressureSetup(t);
  let heldBack = 0;
  const sending = await startBackend(t, 'sending', (socket) => {
    void writeWithBackpressure(socket, payload, sample)
      .then((waited) => {
        heldBack = waited;
        socket.end();
      })
      .catch(() => socket.destroy());
  });
  await engine.apply([{ op: 'add-destination', service: SERVICE, destination: sending.address, weight: 1 }]);
  const client = await openClient(port);
  const read = readSlowly(client, sample);
  await once(client, 'end', { signal: AbortSignal.timeout(4 * WAIT_MS) });
  client.end();

  t.is(read.bytes(), BACKPRESSURE_BYTES);
  t.is(read.digest(), digest);
  t.true(heldBack > 0, 'the backend was made to wait');
  t.true(maxBuffered() < MAX_ENGINE_BUFFER, `the engine buffered at most ${maxBuffered()} bytes`);
  t.log(`engine buffered at most ${maxBuffered()} bytes; backend waited for drain ${heldBack} times`);
});

// Upstream sockets share one read buffer (forwarder.ts): a chunk must be
// copied out before the next read of any connection overwrites it.
test('replies of many concurrent connections arrive intact', async (t) => {
  const CONNECTIONS = 16;
  const REPLY_BYTES = 2 * MiB;
  const replies = Array.from({ length: CONNECTIONS }, () => randomBytes(REPLY_BYTES));
  const digests = replies.map((r) => createHash('sha256').update(r).digest('hex'));
  const backend = await startBackend(t, 'big', (socket) => {
    socket.once('data', (chunk: Buffer) => socket.end(replies[Number(chunk.toString())] ?? ""));
  });
  const { port } = await startFastpath(t, [[backend.address, 1]]);
  const received = await Promise.all(
    replies.map(async (_, i) => {
      const client = await openClient(port);
      const hash = createHash('sha256');
      client.on('data', (chunk: Buffer) => hash.update(chunk));
      client.write(String(i));
      await once(client, 'end', { signal: AbortSignal.timeout(4 * WAIT_MS) });
      client.end();
      return hash.digest('hex');
    }),
  );
  t.deepEqual(received, digests);
});

test('remove-service stops accepting; existing connections finish', async (t) => {
  const echo = await startBackend(t, 'echo', echoWithName('echo'));
  const { engine, port } = await startFastpath(t, [[echo.address, 1]]);
  const existing = await openClient(port);
  t.is(await exchange(existing, 'before'), 'echo:before');

  await engine.apply([{ op: 'remove-service', service: SERVICE }]);
  const refused = connect({ host: HOST, port });
  const [error] = (await once(refused, 'error', { signal: AbortSignal.timeout(WAIT_MS) })) as [NodeJS.ErrnoException];
  t.is(error.code, 'ECONNREFUSED');
  t.is(await exchange(existing, 'after'), 'echo:after');
  t.like(engine.diagnostics(), { listeners: 0, connections: 1 });
  await finish(existing);
  await waitFor('the last connection finished', () => engine.diagnostics().connections === 0, WAIT_MS);
});

test('add-service rejects a busy address, UDP and unknown schedulers, naming them', async (t) => {
  const busy = createServer();
  busy.listen(0, HOST);
  await once(busy, 'listening', { signal: AbortSignal.timeout(WAIT_MS) });
  t.teardown(() => new Promise((resolve) => busy.close(() => resolve(undefined))));
  const busyService = `tcp ${HOST}:${portOf(busy)}`;
  const engine = createFastpathEngine();
  t.teardown(() => engine.close());

  const listener = await t.throwsAsync(engine.apply([{ op: 'add-service', service: { address: busyService } }]), {
    instanceOf: ListenerError,
    message: (m) => m.includes(busyService) && m.includes('EADDRINUSE'),
  });
  t.is(listener?.code, 'BRIDGE_LISTENER_FAILED');
  t.is((listener?.cause as NodeJS.ErrnoException | undefined)?.code, 'EADDRINUSE');

  // Checked before anything in the batch is applied.
  const udp = await t.throwsAsync(
    engine.apply([
      { op: 'add-service', service: { address: SERVICE } },
      { op: 'add-service', service: { address: `udp ${HOST}:53` } },
    ]),
    { instanceOf: UnsupportedError, message: /udp 127\.0\.0\.1:53.*TCP only/ },
  );
  t.is(udp?.code, 'BRIDGE_UNSUPPORTED');
  await t.throwsAsync(engine.apply([{ op: 'add-service', service: { address: SERVICE, scheduler: 'rr' } }]), {
    instanceOf: UnsupportedError,
    message: /scheduler "rr".*wlc, swrr/,
  });
  t.deepEqual(await engine.observe(), { services: [] });
  t.is(engine.diagnostics().listeners, 0);
});

test('boundAddress() reports the port chosen for port 0; addresses are canonical', async (t) => {
  const engine = createFastpathEngine();
  t.teardown(() => engine.close());
  await engine.apply([{ op: 'add-service', service: { address: ` TCP ${HOST}:0 `, scheduler: 'swrr' } }]);
  const bound = engine.boundAddress(`${HOST}:0`);
  t.is(bound.host, HOST);
  t.true(bound.port > 0);
  t.deepEqual(await engine.observe(), { services: [{ address: SERVICE, scheduler: 'swrr', destinations: [] }] });
  t.throws(() => engine.boundAddress(`tcp ${HOST}:1`), { code: 'BRIDGE_UNKNOWN_TARGET' });
});

test('options out of range are rejected', (t) => {
  t.throws(() => createFastpathEngine({ connectTimeoutMs: 0 }), { code: 'BRIDGE_OPTION_INVALID' });
  t.throws(() => createFastpathEngine({ downPeriodMs: Number.NaN }), { code: 'BRIDGE_OPTION_INVALID' });
});

test('a destination at its connection limit takes no new connection; with every one full the client is reset', async (t) => {
  const a = await startBackend(t, 'a', echoWithName('a'));
  const b = await startBackend(t, 'b', echoWithName('b'));
  // a's weight alone would win every pick; its limit of 1 sends the rest to b.
  const { engine, port } = await startFastpath(t, [[a.address, 100], [b.address, 1]], 'wlc');
  await engine.apply([
    { op: 'set-weight', service: SERVICE, destination: a.address, weight: 100, maxConnections: 1 },
    { op: 'set-weight', service: SERVICE, destination: b.address, weight: 1, maxConnections: 1 },
  ]);
  t.deepEqual((await destinations(engine)).map((d) => d.maxConnections), [1, 1]);
  const first = await openClient(port);
  t.is(await exchange(first, 'x'), 'a:x');
  const second = await openClient(port);
  t.is(await exchange(second, 'y'), 'b:y', 'a is full: the next connection goes to b');

  const third = connect({ host: HOST, port });
  const [error] = (await once(third, 'error', { signal: AbortSignal.timeout(WAIT_MS) })) as [NodeJS.ErrnoException];
  t.is(error.code, 'ECONNRESET', 'both full: nowhere to go');
  t.like(await destination(engine, a.address), { up: true, activeConnections: 1 }, 'a full destination is not down');

  // A connection ending frees its place; a limit of 0 lifts the limit.
  await finish(first);
  await waitFor('a has room again', () => engine.diagnostics().connections === 1, WAIT_MS);
  const fourth = await openClient(port);
  t.is(await exchange(fourth, 'z'), 'a:z');
  await engine.apply([{ op: 'set-weight', service: SERVICE, destination: a.address, weight: 100, maxConnections: 0 }]);
  const fifth = await openClient(port);
  t.is(await exchange(fifth, 'w'), 'a:w', 'no limit: a takes a second connection');
  await Promise.all([second, fourth, fifth].map(finish));
});

test('a connection limit that is not a non-negative integer rejects the whole batch', async (t) => {
  const a = await startBackend(t, 'a');
  const { engine } = await startFastpath(t, [[a.address, 5]]);
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 31]) {
    const error = await t.throwsAsync(
      engine.apply([
        { op: 'set-weight', service: SERVICE, destination: a.address, weight: 7 },
        { op: 'set-weight', service: SERVICE, destination: a.address, weight: 7, maxConnections: bad },
      ]),
      { code: 'BRIDGE_CONNECTION_LIMIT_RANGE' },
    );
    t.true(error?.message.includes(`maxConnections ${bad}`) && error.message.includes(a.address), error?.message);
  }
  t.like(await destination(engine, a.address), { weight: 5, maxConnections: 0 }, 'nothing of the batch was applied');
});
