// The running agent's local, read-only status endpoint: HTTP on a Unix
// socket (`GET /status`, JSON), read by `loadfeed-agent status` or
// `curl --unix-socket PATH http://agent/status`. It answers from what the
// agent already holds in memory, so it costs nothing until asked, and the
// socket file is the only thing the agent ever creates on disk: it never
// creates directories (systemd's RuntimeDirectory=loadfeed makes /run/loadfeed).
import http from 'node:http';
import type { ScopeConfig } from './config.js';
import type { Capacity, Reading } from './reading.js';
import type { StreamState } from './reporter.js';
import { bindUnixSocket, unlinkSocket } from './unix-socket.js';
import type { AppMetricsStatus } from './app/metrics.js';

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
  /** Application metrics sources and their state; null when none is configured. */
  readonly app: AppMetricsStatus | null;
}

type Fixed = Omit<AgentStatusDocument, 'version' | 'pid' | 'startedAt' | 'now' | 'intervalMs' | 'samples' | 'lastSample' | 'streams' | 'app'>;

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
    private readonly app: (() => AppMetricsStatus) | null = null,
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
      app: this.app === null ? null : this.app(),
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
    const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => this.handle(req, res));
    server.maxConnections = MAX_CONNECTIONS;
    this.server = server;
    const failed = await bindUnixSocket(server, this.socketPath, STATUS_SOCKET_MODE);
    if (failed) {
      const how = {
        'no-directory': ['status socket off: its directory is missing', `${failed.detail}; create it (systemd: RuntimeDirectory=loadfeed) or pass --status-socket PATH (or off)`],
        'in-use': ['status socket off: another agent answers on it', 'give each agent on this host its own --status-socket PATH'],
        'not-a-socket': ['status socket off: the path exists and is not a socket', 'pass --status-socket with a free path'],
        error: ['status socket off', failed.detail],
      }[failed.why];
      this.log({ msg: how[0], socket: this.socketPath, detail: how[1] });
      this.server = null;
      return false;
    }
    this.bound = true;
    if (this.closed) {
      this.close();
      return false;
    }
    return true;
  }

  /** Stop answering and remove the socket file (synchronously, so it is gone before the process exits). */
  close(): void {
    this.closed = true;
    if (!this.server || !this.bound) return;
    this.bound = false;
    unlinkSocket(this.socketPath);
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
