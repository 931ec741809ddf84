// Bounds on agents' connections before they authenticate (their Hello).
// Authentication happens at Hello, so until then a connection is anyone's:
// these limits keep what an unauthenticated peer can hold small and known.
//
// - A connection is `pending` while none of its streams has an accepted
//   Hello; at most `maxPendingConnections` of them in all and
//   `maxPendingPerPeer` from one address. Beyond, it is closed as accepted.
// - A pending connection that brings no Hello within `helloTimeoutMs` is
//   closed (idle HTTP/2 sessions, streams that never finish a message).
// - A pending connection has one stream (it is closed when it opens a
//   second); one with an agent at most `maxStreamsPerConnection` (HTTP/2
//   refuses more itself, see AgentServer).
// So before authentication the poller holds at most maxPendingConnections
// unfinished messages of at most maxMessageBytes (grpc-js refuses larger ones
// as their length prefix arrives). Everything here runs when a connection or
// stream opens or a Hello is accepted, never per sample.
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  readonly maxPendingConnections: number;
  readonly maxPendingPerPeer: number;
  readonly helloTimeoutMs: number;
  readonly maxStreamsPerConnection: number;
}

export type ConnectionRefusal = 'pending-connections' | 'pending-per-peer' | 'hello-timeout' | 'streams-per-connection';

/** The connection a served stream came on, as its stream handler sees it. */
export interface StreamConnection {
  /**
   * The limit this guard closed the connection for, or null. That closing is
   * counted once, under the limit: the streams that end with the connection
   * (inside a message, as often as not) are not refusals of their own.
   */
  readonly closedFor: ConnectionRefusal | null;
}

interface Connection extends StreamConnection {
  readonly socket: Socket;
  readonly peer: string;
  streams: number;
  /** Streams with an accepted Hello: the connection is pending while 0. */
  agents: number;
  timer: NodeJS.Timeout | null;
  closedFor: ConnectionRefusal | null;
}

/** A stream on a connection not accepted through admit (in-process tests): never closed by the guard. */
const UNGUARDED: StreamConnection = { closedFor: null };

export class ConnectionGuard {
  /** By the key grpc-js's getPeer() gives a call on that connection. */
  private readonly connections = new Map<string, Connection>();
  private readonly pendingByPeer = new Map<string, number>();
  private pending = 0;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly refused: (reason: ConnectionRefusal, peer: string, detail: string) => void,
  ) {}

  /** A connection was accepted: true to serve it, false when it was closed for a limit. */
  admit(socket: Socket): boolean {
    const peer = socket.remoteAddress ?? 'unknown';
    if (this.pending >= this.limits.maxPendingConnections) {
      return this.reject(socket, 'pending-connections', peer, `${this.pending} connections without a Hello already, at most ${this.limits.maxPendingConnections}`);
    }
    const fromPeer = this.pendingByPeer.get(peer) ?? 0;
    if (fromPeer >= this.limits.maxPendingPerPeer) {
      return this.reject(socket, 'pending-per-peer', peer, `${fromPeer} connections without a Hello from ${peer} already, at most ${this.limits.maxPendingPerPeer}`);
    }
    const key = peerKey(socket);
    const c: Connection = { socket, peer, streams: 0, agents: 0, timer: null, closedFor: null };
    this.connections.set(key, c);
    this.enterPending(c);
    socket.once('close', () => {
      if (this.connections.get(key) !== c) return;
      this.connections.delete(key);
      if (c.agents === 0) this.leavePending(c);
    });
    return true;
  }

  /** A stream opened on the connection `peer` (getPeer()): its connection to serve it, else why not. */
  streamOpened(peer: string): StreamConnection | string {
    const c = this.connections.get(peer);
    if (!c) return UNGUARDED;
    if (c.agents === 0 && c.streams >= 1) {
      // A refused stream keeps what its peer sent (up to its flow-control
      // window) until the connection closes: close it, so a connection
      // without a Hello holds one unfinished message at most.
      c.closedFor = 'streams-per-connection';
      c.socket.destroy();
      return 'a connection without a Hello has one stream: connection closed';
    }
    if (c.streams >= this.limits.maxStreamsPerConnection) return `${c.streams} streams on this connection already, at most ${this.limits.maxStreamsPerConnection}`;
    c.streams += 1;
    return c;
  }

  streamClosed(peer: string, hadAgent: boolean): void {
    const c = this.connections.get(peer);
    if (!c) return;
    c.streams -= 1;
    if (!hadAgent) return;
    c.agents -= 1;
    // Its agent left but the connection stays: it is anyone's again.
    if (c.agents === 0) this.enterPending(c);
  }

  /** A Hello was accepted on a stream of `peer`. */
  helloAccepted(peer: string): void {
    const c = this.connections.get(peer);
    if (!c) return;
    c.agents += 1;
    if (c.agents === 1) this.leavePending(c);
  }

  /** Connections without an accepted Hello, now. */
  pendingConnections(): number {
    return this.pending;
  }

  close(): void {
    for (const c of this.connections.values()) if (c.timer) clearTimeout(c.timer);
  }

  private enterPending(c: Connection): void {
    this.pending += 1;
    this.pendingByPeer.set(c.peer, (this.pendingByPeer.get(c.peer) ?? 0) + 1);
    c.timer = setTimeout(() => {
      c.timer = null;
      this.refused('hello-timeout', c.peer, `no Hello within ${this.limits.helloTimeoutMs} ms`);
      c.closedFor = 'hello-timeout';
      c.socket.destroy();
    }, this.limits.helloTimeoutMs);
    c.timer.unref();
  }

  private leavePending(c: Connection): void {
    if (c.timer) clearTimeout(c.timer);
    c.timer = null;
    this.pending -= 1;
    const n = (this.pendingByPeer.get(c.peer) ?? 1) - 1;
    if (n === 0) this.pendingByPeer.delete(c.peer);
    else this.pendingByPeer.set(c.peer, n);
  }

  private reject(socket: Socket, reason: ConnectionRefusal, peer: string, detail: string): false {
    this.refused(reason, peer, detail);
    socket.destroy();
    return false;
  }
}

/** The connection's name as grpc-js's call.getPeer() spells it. */
function peerKey(socket: Socket): string {
  return socket.remotePort ? `${socket.remoteAddress}:${socket.remotePort}` : (socket.remoteAddress ?? 'unknown');
}
