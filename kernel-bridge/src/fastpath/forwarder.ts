// One forwarded TCP connection: pick a destination, connect (retrying on the
// next destination when one refuses or times out), then pipe both directions.
//
// Hot path: each chunk read is written to the other socket as it is, with
// backpressure (a socket whose peer's buffer is full is paused until the peer
// drains). This is what stream.pipe does, without pipe's per-connection
// machinery (seven listeners per direction, unpipe bookkeeping), which
// profiling showed as a visible share of a short connection's cost
// (bench:fastpath). The event listeners are shared module functions that find
// their connection through a symbol on the socket, so a connection costs two
// sockets and one small object, and no closures.
//
// Upstream sockets read into one buffer shared by all of them (net.Socket's
// `onread`) and the callback writes a copy of each chunk to the client: no
// 64 KiB allocation per read and no Readable push/'data' machinery for the
// responses. The copy is needed because a write the kernel does not take at
// once keeps a reference to its buffer, which the next read would overwrite.
// Accepted client sockets cannot be given `onread` (net.Server builds them),
// so requests still travel through 'data'.
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { observeLatency, type Scheduler, type SchedulerTarget } from './scheduler.js';

export interface Destination extends SchedulerTarget {
  readonly host: string;
  readonly port: number;
  weight: number;
  active: number;
  maxConnections: number;
  downUntil: number;
  /** Connections forwarded (connected) since the destination was added. */
  total: number;
}

/** What all connections of one engine share. */
export interface ForwarderContext {
  readonly connectTimeoutMs: number;
  /** How long a destination that refused or timed out is skipped. */
  readonly downPeriodMs: number;
  /** Every connection not yet finished, so that close() can destroy them. */
  readonly connections: Set<Connection>;
}

/** The destinations of one service and how to choose among them. */
export interface Pool {
  /** Replaced, never mutated, when destinations come and go. */
  destinations: readonly Destination[];
  readonly pick: Scheduler;
  readonly context: ForwarderContext;
}

export class Connection {
  /** The current upstream attempt, or the established upstream. */
  upstream: Socket | null = null;
  /** The destination counted in `active` for this connection, if any. */
  destination: Destination | null = null;
  connected = false;
  finished = false;
  /** When `destination` was picked (monotonic ms): the connection's time there runs from it. */
  pickedAt = 0;
  attemptsLeft: number;

  constructor(
    readonly client: Socket,
    readonly pool: Pool,
  ) {
    this.attemptsLeft = pool.destinations.length;
  }
}

const kConnection = Symbol('loadfeed.fastpath.connection');
type TaggedSocket = Socket & { [kConnection]: Connection };

/** Take over an accepted client socket (created paused, half-open allowed). */
export function forward(client: Socket, pool: Pool): void {
  const conn = new Connection(client, pool);
  (client as TaggedSocket)[kConnection] = conn;
  client.on('error', onSocketError);
  client.on('close', onSocketClose);
  pool.context.connections.add(conn);
  connectNext(conn);
}

/** Abort a connection in whatever state it is; its sockets then close and it finishes. */
export function destroyConnection(conn: Connection): void {
  conn.client.destroy();
  conn.upstream?.destroy();
}

function connectNext(conn: Connection): void {
  const { pool, client } = conn;
  if (client.destroyed) return;
  const destination = conn.attemptsLeft > 0 ? pool.pick(pool.destinations, performance.now()) : undefined;
  if (destination === undefined) {
    // Nowhere to go (every destination down, at weight 0 or full): a reset
    // tells the client at once, as IPVS does with no real server.
    client.resetAndDestroy();
    return;
  }
  conn.attemptsLeft--;
  destination.active++;
  conn.destination = destination;
  conn.pickedAt = performance.now();
  const upstream = connect({
    host: destination.host,
    port: destination.port,
    allowHalfOpen: true,
    noDelay: true,
    timeout: pool.context.connectTimeoutMs,
    onread: UPSTREAM_ONREAD,
  }) as TaggedSocket;
  upstream[kConnection] = conn;
  conn.upstream = upstream;
  // 'connect' and 'timeout' fire at most once per attempt that matters (both
  // handlers check), so plain listeners spare once()'s wrapper closures.
  upstream.on('connect', onUpstreamConnect);
  upstream.on('timeout', onUpstreamTimeout);
  upstream.on('error', onSocketError);
  upstream.on('close', onSocketClose);
}

/** The current attempt failed: skip its destination for a while and try the next one. */
function failAttempt(conn: Connection): void {
  const destination = conn.destination;
  if (destination !== null) {
    destination.active--;
    destination.downUntil = performance.now() + conn.pool.context.downPeriodMs;
    conn.destination = null;
  }
  connectNext(conn);
}

function onUpstreamConnect(this: TaggedSocket): void {
  const conn = this[kConnection];
  this.setTimeout(0);
  conn.connected = true;
  if (conn.destination !== null) conn.destination.total++;
  const client = conn.client as TaggedSocket;
  client.on('data', onClientData);
  client.on('end', onRelayEnd);
  client.on('drain', onRelayDrain);
  // Upstream data arrives through onUpstreamRead.
  this.on('end', onRelayEnd);
  this.on('drain', onRelayDrain);
  // Accepted paused (pauseOnConnect sets readableFlowing to false, so a 'data'
  // listener alone does not start it): start reading the client now.
  conn.client.resume();
}

function peerOf(socket: TaggedSocket): Socket | null {
  const conn = socket[kConnection];
  return socket === conn.client ? conn.upstream : conn.client;
}

/** Read buffer of every upstream socket; never referenced after onUpstreamRead returns. */
const upstreamReadBuffer = Buffer.allocUnsafe(64 * 1024);
const UPSTREAM_ONREAD = { buffer: upstreamReadBuffer, callback: onUpstreamRead };

/**
 * `nread` bytes from upstream, in `buffer`; returning false stops reading
 * until the client drains (onRelayDrain resumes it). A FIN arrives as 'end'.
 */
function onUpstreamRead(this: TaggedSocket, nread: number, buffer: Buffer): boolean {
  return this[kConnection].client.write(Buffer.copyBytesFrom(buffer, 0, nread));
}

function onClientData(this: TaggedSocket, chunk: Buffer): void {
  const upstream = this[kConnection].upstream;
  if (upstream !== null && !upstream.write(chunk)) this.pause();
}

/**
 * This socket's write buffer emptied: let its peer read again. A FIN is
 * carried across with end() (onRelayEnd) while the other direction keeps
 * flowing (allowHalfOpen on both).
 */
function onRelayDrain(this: TaggedSocket): void {
  const peer = peerOf(this);
  if (peer !== null && !peer.destroyed) peer.resume();
}

function onRelayEnd(this: TaggedSocket): void {
  peerOf(this)?.end();
}

function onUpstreamTimeout(this: TaggedSocket): void {
  const conn = this[kConnection];
  if (this !== conn.upstream || conn.connected) return;
  this.destroy();
  failAttempt(conn);
}

function onSocketError(this: TaggedSocket): void {
  const conn = this[kConnection];
  if (this === conn.upstream && !conn.connected) failAttempt(conn);
  else if (this === conn.client || this === conn.upstream) destroyConnection(conn);
}

function onSocketClose(this: TaggedSocket, hadError: boolean): void {
  const conn = this[kConnection];
  if (this !== conn.client && this !== conn.upstream) return; // an earlier, failed attempt
  // A clean close means both FINs went through this socket, so the other one
  // closes by itself once it has flushed: destroying it now would cut that data.
  if (hadError) destroyConnection(conn);
  if (conn.finished || !conn.client.closed || (conn.upstream !== null && !conn.upstream.closed)) return;
  conn.finished = true;
  if (conn.destination !== null) {
    conn.destination.active--;
    if (conn.connected) {
      const now = performance.now();
      observeLatency(conn.destination, now - conn.pickedAt, now);
    }
  }
  conn.destination = null;
  conn.pool.context.connections.delete(conn);
}
