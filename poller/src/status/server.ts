// The poller's status server (node:http, read-only, 127.0.0.1:7416 by default):
//
//   GET /                   live dashboard (poller/assets/, uPlot)
//   GET /status             the status document (status/document.ts), JSON
//   GET /status/history     charts' data: ?since=MS returns only newer frames
//   GET /metrics            Prometheus text (status/metrics.ts)
//   GET /healthz            200 "ok", or 503 "degraded: <why>" while the
//                           newest policy is refused, an engine or a policy cycle fails (for
//                           keepalived track_script and Kubernetes probes)
//
// Nothing here changes the poller. On a loopback address it answers only to
// loopback host names, so a web page cannot read it through DNS rebinding.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { HostPort } from '@loadfeed/kernel-bridge';
import { listenOn } from '../ingest/listen.js';
import type { PollerObserver, WeightChangeEvent } from '../cycle/observer.js';
import type { PollerSnapshot } from './snapshot.js';
import { loadAssets, type Asset } from './assets.js';
import { buildStatus, healthOf, type StatusDocument } from './document.js';
import { History, HISTORY_STEP_MS } from './history.js';
import { METRICS_MAX_NODES, StatusMetrics } from './metrics.js';

export const DEFAULT_STATUS_LISTEN = '127.0.0.1:7416';
/** Weight changes kept for /status and the dashboard. */
export const RECENT_CHANGES = 200;
/** Concurrent HTTP connections; scrapers, probes and a few browsers need far fewer. */
export const MAX_STATUS_CONNECTIONS = 64;
const REQUEST_TIMEOUT_MS = 10_000;

const VERSION = (JSON.parse(readFileSync(new URL(import.meta.resolve('@loadfeed/poller/package.json')), 'utf8')) as { version: string }).version;

/** What the status server needs of the poller. */
export interface StatusSource {
  snapshot(): PollerSnapshot;
  observe(observer: PollerObserver): () => void;
}

export interface StatusServerOptions {
  readonly poller: StatusSource;
  readonly logger: Logger;
  /** Cap on nodes (and servers) with their own metric series (default METRICS_MAX_NODES). */
  readonly maxNodeSeries?: number;
  /** How often a chart frame is recorded (default HISTORY_STEP_MS). */
  readonly historyStepMs?: number;
}

export class StatusServer {
  private readonly server: http.Server;
  private readonly metrics: StatusMetrics;
  private readonly history = new History();
  private readonly changes: WeightChangeEvent[] = [];
  private readonly reloads = { ok: 0, refused: 0 };
  private readonly assets: Map<string, Asset> | Error;
  private readonly unsubscribe: () => void;
  private readonly startedAt = Date.now();
  private readonly stepMs: number;
  private timer: NodeJS.Timeout | null = null;
  private loopbackOnly = false;

  constructor(private readonly options: StatusServerOptions) {
    this.stepMs = options.historyStepMs ?? HISTORY_STEP_MS;
    this.metrics = new StatusMetrics(options.maxNodeSeries ?? METRICS_MAX_NODES);
    try {
      this.assets = loadAssets();
    } catch (err) {
      // /metrics and /healthz matter more than the dashboard: keep serving them.
      this.assets = err as Error;
      options.logger.error({ err }, 'dashboard unavailable');
    }
    this.unsubscribe = options.poller.observe({
      weightChanged: (change) => {
        this.changes.push(change);
        if (this.changes.length > RECENT_CHANGES) this.changes.shift();
        this.metrics.weightChanged(change);
      },
      weightsApplied: (ms) => this.metrics.weightsApplied(ms),
      engineApplied: (engine, ops, ms, ok) => this.metrics.engineApplied(engine, ops, ms, ok),
      policyReloaded: (ok) => {
        if (ok) this.reloads.ok += 1;
        else this.reloads.refused += 1;
        this.metrics.policyReloaded(ok);
      },
    });
    this.server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        options.logger.error({ err, url: req.url }, 'status request failed');
        if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `internal error: ${(err as Error).message}\n`);
        else res.destroy();
      });
    });
    this.server.maxConnections = MAX_STATUS_CONNECTIONS;
  }

  /** Bind `HOST:PORT` (an IP; port 0 picks one) and start recording chart frames. */
  async listen(address: string): Promise<HostPort> {
    const { host, port } = await listenOn(this.server, '--status', address, { orElse: '--status off' });
    this.loopbackOnly = host === '::1' || host.startsWith('127.');
    this.history.record(this.document());
    this.timer = setInterval(() => this.history.record(this.document()), this.stepMs);
    this.timer.unref();
    return { host, port };
  }

  document(): StatusDocument {
    return buildStatus(this.options.poller.snapshot(), {
      now: Date.now(),
      poller: { version: VERSION, pid: process.pid, startedAt: this.startedAt },
      reloads: { ...this.reloads },
      changes: [...this.changes],
    });
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe();
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'read-only: use GET\n');
      return;
    }
    if (this.loopbackOnly && !isLoopbackHost(req.headers.host)) {
      send(res, 421, 'text/plain; charset=utf-8', 'this status server is bound to loopback and answers only to localhost, 127.0.0.1 or [::1]\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://status.invalid');
    switch (url.pathname) {
      case '/healthz': {
        const health = healthOf(this.options.poller.snapshot());
        if (health.status === 'ok') send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
        else send(res, 503, 'text/plain; charset=utf-8', `degraded: ${health.reasons.join('; ')}\n`);
        return;
      }
      case '/status':
        sendJson(res, this.document());
        return;
      case '/status/history': {
        const since = Number(url.searchParams.get('since') ?? '0');
        if (!Number.isFinite(since)) {
          send(res, 400, 'text/plain; charset=utf-8', 'since: expected wall-clock milliseconds, e.g. ?since=1700000000000\n');
          return;
        }
        sendJson(res, this.history.since(since, this.stepMs));
        return;
      }
      case '/metrics': {
        const text = await this.metrics.render(this.document());
        send(res, 200, this.metrics.registry.contentType, text);
        return;
      }
      default: {
        if (this.assets instanceof Error) {
          if (url.pathname === '/' || url.pathname.startsWith('/assets/')) {
            send(res, 503, 'text/plain; charset=utf-8', `${this.assets.message}\n`);
            return;
          }
        } else {
          const asset = this.assets.get(url.pathname);
          if (asset) {
            send(res, 200, asset.type, asset.body);
            return;
          }
        }
        send(res, 404, 'text/plain; charset=utf-8', 'not found: try / (dashboard), /status, /status/history, /metrics or /healthz\n');
      }
    }
  }
}

function send(res: http.ServerResponse, code: number, type: string, body: string | Buffer): void {
  res.writeHead(code, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    // uPlot sizes its elements through inline styles; scripts come only from here.
    'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(body);
}

function sendJson(res: http.ServerResponse, value: unknown): void {
  send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`);
}

/** `localhost`, `127.x.y.z` or `[::1]`, with or without a port; a missing Host (HTTP/1.0) passes. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = /^\[([^\]]+)\](?::\d+)?$/.exec(host)?.[1] ?? host.replace(/:\d+$/, '');
  if (name === 'localhost') return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  return name === '::1';
}
