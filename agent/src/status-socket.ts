// The running agent's local, read-only status endpoint: HTTP on a Unix
// socket (`GET /status`, JSON), read by `loadfeed-agent status` or
// `curl --unix-socket PATH http://agent/status`. It answers from what the
// agent already holds in memory, so it costs nothing until asked, and the
// socket file is the only thing the agent ever creates on disk: it never
// creates directories (systemd's RuntimeDirectory=loadfeed makes /run/loadfeed).
import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { ScopeConfig } from './config.js';
import type { Capacity, Reading } from './reading.js';
import type { StreamState } from './reporter.js';

export const AGENT_STATUS_VERSION = 1;
/** Owner and group may connect (connecting needs write permission on the socket). */
export const STATUS_SOCKET_MODE = 0o660;
const MAX_CONNECTIONS = 8;
const REQUEST_TIMEOUT_MS = 5_000;

export interface StreamStatus {
  readonly target: string;
  readonly state: StreamState;
  /** Wall-clock ms of the last state change. */
  readonly since: number;
  /** The last error and retry delay while not connected; empty when connected. */
  readonly detail: string;
  /** Samples handed to this stream, and dropped because it was down or full. */
  readonly sent: number;
  readonly dropped: number;
}

export interface AgentStatusDocument {
  readonly version: typeof AGENT_STATUS_VERSION;
  readonly nodeId: string;
  readonly agentVersion: string;
  readonly pid: number;
  readonly startedAt: number;
  readonly now: number;
  readonly scope: ScopeConfig;
  readonly capacity: Capacity;
  readonly intervalMs: number;
  readonly services: readonly { readonly name: string; readonly port: number }[];
  readonly labels: Readonly<Record<string, string>>;
  /** `plaintext`, `tls` or `mutual-tls`, and whether a bearer token is sent. */
  readonly transport: { readonly security: 'plaintext' | 'tls' | 'mutual-tls'; readonly token: boolean };
  readonly samples: number;
  readonly lastSample: (Reading & { readonly at: number }) | null;
  readonly streams: readonly StreamStatus[];
}

type Fixed = Omit<AgentStatusDocument, 'version' | 'pid' | 'startedAt' | 'now' | 'intervalMs' | 'samples' | 'lastSample' | 'streams'>;

/** What the agent knows about itself, updated from the sampling loop and the streams' events. */
export class AgentStatus {
  private readonly startedAt = Date.now();
  private readonly streams = new Map<string, { state: StreamState; since: number; detail: string; sent: number; dropped: number }>();
  private samples = 0;
  private last: (Reading & { at: number }) | null = null;

  constructor(
    private readonly fixed: Fixed,
    targets: readonly string[],
    private readonly intervalMs: () => number,
  ) {
    for (const t of targets) this.streams.set(t, { state: 'connecting', since: this.startedAt, detail: '', sent: 0, dropped: 0 });
  }

  streamState(target: string, state: StreamState, detail: string): void {
    const s = this.streams.get(target);
    if (!s) return;
    if (s.state !== state) s.since = Date.now();
    s.state = state;
    s.detail = detail;
  }

  sampled(reading: Reading, at: number): void {
    this.samples += 1;
    this.last = { ...reading, at };
  }

  /** One reading offered to a stream: `sent` false when it was dropped. */
  offered(target: string, sent: boolean): void {
    const s = this.streams.get(target);
    if (!s) return;
    if (sent) s.sent += 1;
    else s.dropped += 1;
  }

  document(): AgentStatusDocument {
    return {
      version: AGENT_STATUS_VERSION,
      ...this.fixed,
      pid: process.pid,
      startedAt: this.startedAt,
      now: Date.now(),
      intervalMs: this.intervalMs(),
      samples: this.samples,
      lastSample: this.last,
      streams: [...this.streams].map(([target, s]) => ({ target, ...s })),
    };
  }
}

/**
 * Serves `document()` on the Unix socket `socketPath`. Never fails the agent:
 * a missing directory or a socket held by another live agent is logged and
 * the agent runs without it; a stale socket file (no one listening) is replaced.
 */
export class AgentStatusSocket {
  private server: http.Server | null = null;
  private bound = false;
  private closed = false;

  constructor(
    readonly socketPath: string,
    private readonly document: () => AgentStatusDocument,
    private readonly log: (line: Record<string, unknown>) => void,
  ) {}

  async start(): Promise<boolean> {
    const dir = path.dirname(this.socketPath);
    try {
      if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    } catch (err) {
      this.log({
        msg: 'status socket off: its directory is missing',
        socket: this.socketPath,
        detail: `${dir}: ${(err as Error).message}; create it (systemd: RuntimeDirectory=loadfeed) or pass --status-socket PATH (or off)`,
      });
      return false;
    }
    const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => this.handle(req, res));
    server.maxConnections = MAX_CONNECTIONS;
    this.server = server;
    let error = await listen(server, this.socketPath);
    if (error?.code === 'EADDRINUSE') {
      if (await answers(this.socketPath)) {
        this.log({ msg: 'status socket off: another agent answers on it', socket: this.socketPath, detail: 'give each agent on this host its own --status-socket PATH' });
        this.server = null;
        return false;
      }
      if (!isSocket(this.socketPath)) {
        this.log({ msg: 'status socket off: the path exists and is not a socket', socket: this.socketPath, detail: 'pass --status-socket with a free path' });
        this.server = null;
        return false;
      }
      try {
        unlinkSync(this.socketPath); // left behind by an agent that died
      } catch {
        // gone meanwhile
      }
      error = await listen(server, this.socketPath);
    }
    if (error) {
      this.log({ msg: 'status socket off', socket: this.socketPath, detail: error.message });
      this.server = null;
      return false;
    }
    this.bound = true;
    if (this.closed) {
      this.close();
      return false;
    }
    try {
      chmodSync(this.socketPath, STATUS_SOCKET_MODE);
    } catch {
      // the umask's mode stays
    }
    return true;
  }

  /** Stop answering and remove the socket file (synchronously, so it is gone before the process exits). */
  close(): void {
    this.closed = true;
    if (!this.server || !this.bound) return;
    this.bound = false;
    try {
      unlinkSync(this.socketPath);
    } catch {
      // already removed
    }
    this.server.close();
    this.server.closeAllConnections();
    this.server = null;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('read-only: use GET /status\n');
      return;
    }
    if (url !== '/status' && url !== '/') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: GET /status\n');
      return;
    }
    const body = `${JSON.stringify(this.document())}\n`;
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' }).end(body);
  }
}

function listen(server: http.Server, socketPath: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException): void => resolve(err);
    server.once('error', onError);
    server.listen(socketPath, () => {
      server.off('error', onError);
      resolve(null);
    });
  });
}

function isSocket(file: string): boolean {
  try {
    return lstatSync(file).isSocket();
  } catch {
    return false;
  }
}

/** Whether something accepts connections on the socket (a live agent) rather than a stale file. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
