// A real poller (memory engine) with its real status server on loopback
// port 0, and a small HTTP client for the tests.
import http from 'node:http';
import { Writable } from 'node:stream';
import type { ExecutionContext } from 'ava';
import { pino } from 'pino';
import { compilePolicy, defaultEngines, defaultStrategies, Poller, StatusServer, type EngineRegistry } from '@loadfeed/poller';

export const SERVICE = 'tcp 127.0.0.1:18080';

/**
 * The harness's policy. staleAfter is long: these tests send samples when
 * they choose, and a node must not turn stale between two of their steps on
 * a loaded machine (with 1 s, a single sample's node went stale mid-test).
 */
export function policyText(nodes: readonly string[], extra = ''): string {
  return `apiVersion: loadfeed/v1
liveness: { staleAfter: 60s }
services:
  - name: web
    engine: memory
    address: ${SERVICE}
    strategy: { name: headroom }
    smoothing: { halfLife: 0s }
    slowStart: null
    deadband: 0
    servers:
${nodes.map((n, i) => `      - { node: ${n}, address: "127.0.0.1:${9001 + i}" }`).join('\n')}
${extra}`;
}

export interface Harness {
  readonly poller: Poller;
  readonly status: StatusServer;
  /** gRPC port for agents. */
  readonly port: number;
  /** http://127.0.0.1:PORT/ */
  readonly base: string;
  /** Every log record the poller wrote. */
  readonly logs: Record<string, unknown>[];
}

export interface HarnessOptions {
  readonly nodes?: readonly string[];
  readonly engines?: EngineRegistry;
  readonly maxNodeSeries?: number;
  readonly historyStepMs?: number;
  /** Policy text after the service's servers (e.g. guards), as policyText's `extra`. */
  readonly policyExtra?: string;
}

export async function startHarness(t: ExecutionContext, options: HarnessOptions = {}): Promise<Harness> {
  const engines = options.engines ?? defaultEngines();
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const policy = compilePolicy(policyText(options.nodes ?? ['a1', 'a2'], options.policyExtra), 'test.yaml', engines.limits());
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies: defaultStrategies(), logger });
  const status = new StatusServer({
    poller,
    logger,
    ...(options.maxNodeSeries === undefined ? {} : { maxNodeSeries: options.maxNodeSeries }),
    ...(options.historyStepMs === undefined ? {} : { historyStepMs: options.historyStepMs }),
  });
  const bound = await status.listen('127.0.0.1:0');
  const port = await poller.start();
  t.teardown(async () => {
    await status.close();
    await poller.stop();
  });
  return { poller, status, port, base: `http://127.0.0.1:${bound.port}/`, logs };
}

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One HTTP request without keep-alive. */
export function request(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function getJson<T>(url: string): Promise<T> {
  const reply = await request(url);
  if (reply.status !== 200) throw new Error(`${url}: HTTP ${reply.status}: ${reply.body}`);
  return JSON.parse(reply.body) as T;
}

/** The value of one sample line of the Prometheus text, e.g. `loadfeed_node_up{node="a1"}`; undefined when absent. */
export function metric(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
