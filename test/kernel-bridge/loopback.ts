// Loopback TCP fixtures for the fast path: backends on listen(0) that say who
// they are, clients with bounded waits, and an engine wired to them.
import type { ExecutionContext } from 'ava';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { createFastpathEngine, type FastpathEngine, type FastpathOptions } from '@loadfeed/kernel-bridge';
import { WAIT_DEFAULT_MS } from '../helpers/wait.js';

export const HOST = '127.0.0.1';
export const SERVICE = `tcp ${HOST}:0`;
/** Bound on every single wait for an event; a hang fails with a message (generous for a loaded machine, as waitFor's). */
export const WAIT_MS = WAIT_DEFAULT_MS;

export interface Backend {
  readonly name: string;
  /** `127.0.0.1:PORT`, as a destination address. */
  readonly address: string;
  readonly server: Server;
}

/** Reply with the backend's name and end (the client then ends too). */
export function replyName(name: string): (socket: Socket) => void {
  return (socket) => socket.end(name);
}

/** Answer each chunk with `name:chunk`; end when the client ends. */
export function echoWithName(name: string): (socket: Socket) => void {
  return (socket) => {
    socket.on('data', (chunk: Buffer) => socket.write(`${name}:${chunk.toString()}`));
    socket.on('end', () => socket.end());
  };
}

/**
 * A backend on 127.0.0.1 (any free port by default, or the given `host:port`,
 * e.g. to revive a refusingAddress(); half-open allowed), closed with its
 * connections at teardown.
 */
export async function startBackend(
  t: ExecutionContext,
  name: string,
  handle: (socket: Socket) => void = replyName(name),
  at = `${HOST}:0`,
): Promise<Backend> {
  const [host = HOST, port = '0'] = at.split(':');
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // The engine may reset a connection (close()); that is not a test failure.
    socket.on('error', () => {});
    handle(socket);
  });
  server.listen(Number(port), host);
  await once(server, 'listening', { signal: AbortSignal.timeout(WAIT_MS) });
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { name, address: `${host}:${portOf(server)}`, server };
}

export function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server is not listening on TCP');
  return address.port;
}

/**
 * Another loopback address, where no fixture listens: a port freed there
 * cannot be taken over by a concurrent test's listen(0) on HOST, so it keeps
 * refusing connections.
 */
const REFUSING_HOST = '127.0.0.2';

/** A loopback address that refuses connections: bound by us, then closed. */
export async function refusingAddress(): Promise<string> {
  const server = createServer();
  server.listen(0, REFUSING_HOST);
  await once(server, 'listening', { signal: AbortSignal.timeout(WAIT_MS) });
  const port = portOf(server);
  await new Promise((resolve) => server.close(resolve));
  return `${REFUSING_HOST}:${port}`;
}

// Listens with a backlog of 1 from a worker thread that then blocks, so nothing
// is ever accepted: once two connections wait in the accept queue, Linux drops
// further SYNs and a connect hangs, as with a host that does not answer.
const SILENT_LISTENER = `
const { parentPort, workerData } = require('node:worker_threads');
const server = require('node:net').createServer();
server.listen({ host: '${HOST}', port: 0, backlog: 1 }, () => {
  parentPort.postMessage(server.address().port);
  Atomics.wait(workerData, 0, 0);
});`;
const SILENT_QUEUE_FILLERS = 2;

/** A loopback address where connecting hangs (see SILENT_LISTENER); released at teardown. */
export async function silentAddress(t: ExecutionContext): Promise<string> {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(SILENT_LISTENER, { eval: true, workerData: gate });
  const fillers: Socket[] = [];
  t.teardown(async () => {
    for (const filler of fillers) filler.destroy();
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    await worker.terminate();
  });
  const [port] = (await once(worker, 'message', { signal: AbortSignal.timeout(WAIT_MS) })) as [number];
  for (let i = 0; i < SILENT_QUEUE_FILLERS; i++) {
    const filler = connect({ host: HOST, port });
    // Reset when the listener goes at teardown, also after a failed wait below.
    filler.on('error', () => {});
    fillers.push(filler);
    await once(filler, 'connect', { signal: AbortSignal.timeout(WAIT_MS) });
  }
  return `${HOST}:${port}`;
}

/** A fast-path engine with one service on 127.0.0.1:0; returns it and the port clients use. */
export async function startFastpath(
  t: ExecutionContext,
  destinations: ReadonlyArray<readonly [address: string, weight: number]>,
  scheduler = 'wlc',
  options: FastpathOptions = {},
): Promise<{ engine: FastpathEngine; port: number }> {
  const engine = createFastpathEngine(options);
  t.teardown(() => engine.close());
  await engine.apply([
    { op: 'add-service', service: { address: SERVICE, scheduler } },
    ...destinations.map(([destination, weight]) => ({
      op: 'add-destination' as const,
      service: SERVICE,
      destination,
      weight,
    })),
  ]);
  return { engine, port: engine.boundAddress(SERVICE).port };
}

/** Connect, optionally send `payload` and end, and collect the reply until the connection closes. */
export async function request(port: number, payload?: string): Promise<string> {
  const socket = connect({ host: HOST, port });
  socket.setEncoding('utf8');
  let reply = '';
  socket.on('data', (chunk: string) => (reply += chunk));
  if (payload !== undefined) socket.end(payload);
  await once(socket, 'close', { signal: AbortSignal.timeout(WAIT_MS) });
  return reply;
}

/** `count` requests, `concurrency` at a time; how many each backend answered. */
export async function spread(port: number, count: number, concurrency: number): Promise<Map<string, number>> {
  const answered = new Map<string, number>();
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < count) {
      started++;
      const name = await request(port);
      answered.set(name, (answered.get(name) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return answered;
}

/** A client connection kept open across exchanges. */
export async function openClient(port: number, allowHalfOpen = false): Promise<Socket> {
  const socket = connect({ host: HOST, port, allowHalfOpen });
  await once(socket, 'connect', { signal: AbortSignal.timeout(WAIT_MS) });
  return socket;
}

/** Write `message` and return the next chunk received (small messages arrive whole on loopback). */
export async function exchange(socket: Socket, message: string): Promise<string> {
  socket.write(message);
  const [chunk] = (await once(socket, 'data', { signal: AbortSignal.timeout(WAIT_MS) })) as [Buffer];
  return chunk.toString();
}

/** End our side and wait until the connection has closed. */
export async function finish(socket: Socket): Promise<void> {
  socket.end();
  socket.resume();
  await once(socket, 'close', { signal: AbortSignal.timeout(WAIT_MS) });
}
