/**
 * The server side of bench:poller-scale, alone in a process. `--mode`:
 *
 * - `full`: the real poller (library), one service per 100 simulated agents,
 *   each server named by node id, memory engine. Latency runs from the
 *   agent's sample timestamp to the moment the weights of the policy cycle
 *   that included that sample are in the engine (the weightsApplied hook).
 * - `transport`: the real poller with a policy naming no agent: transport,
 *   ingest checks and the node table, no policy work. Latency: timestamp →
 *   sample accepted.
 * - `grpc`: a bare grpc-js server (no keepalive pings, no Acks, no Config)
 *   decoding every message with the generated code and discarding it.
 * - `http2`: a bare node:http2 server (no grpc-js) splitting the gRPC
 *   length-prefixed messages and decoding them the same way.
 *
 * The bare modes measure the floor the poller's own work sits on; their
 * latency is timestamp → decoded. Every mode accepts connections on a
 * backlog of the poller's LISTEN_BACKLOG (the default 511 drops SYNs in the
 * connect storm) with the Node options of the poller's launcher line. Prints
 * "ready PORT"; on the stdin line "mark" it starts a new measuring window, on
 * "report" it prints one JSON line of that window's figures.
 */
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { createServer, type Server } from 'node:net';
import { constants as perf, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { compilePolicy, DEFAULT_LIMITS, defaultEngines, defaultStrategies, LISTEN_BACKLOG, Poller, type TraceRecord } from '@loadfeed/poller';
import { AgentMessage, telemetryService, TELEMETRY_REPORT_PATH, type TelemetryReportCall } from '@loadfeed/proto';
import { Histogram } from './lib/histogram.js';
import { HOST_MODES, nodeAddress, nodeId, type HostMode, type HostReport } from './lib/scale.js';

const { values } = parseArgs({ options: { mode: { type: 'string', default: 'full' }, agents: { type: 'string' }, listen: { type: 'string', default: '127.0.0.1:0' }, 'per-service': { type: 'string', default: '100' } } });
const mode = values.mode as HostMode;
if (!HOST_MODES.includes(mode)) throw new Error(`--mode ${values.mode}: one of ${HOST_MODES.join(', ')}`);
const agents = Number(values.agents);
const perService = Number(values['per-service']);
const [listenHost = '127.0.0.1', listenPort = '0'] = values.listen.split(/:(?=\d+$)/);

interface Host {
  readonly port: number;
  /** See HostReport.live. */
  live(): number;
  rejected(): Readonly<Record<string, number>>;
  stop(): unknown;
}

let latency = new Histogram();
/** Full poller: timestamp → sample accepted, the part of `latency` before the poller's own code saw the sample. */
let ingestLatency = new Histogram();
/** Full poller: sample accepted → evaluated by a cycle, the part of `latency` spent waiting for a cycle to start. */
let cycleWait = new Histogram();
/** How late the event loop ran timers: stalls there delay every sample behind them. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
let accepted = 0;
let cycles = 0;
/** Garbage-collection pauses in the window: a long one holds every sample behind it, as a long cycle does. */
let gcMs = 0;
let gcMajorMs = 0;
let gcMaxMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === perf.NODE_PERFORMANCE_GC_MAJOR) gcMajorMs += e.duration;
    gcMaxMs = Math.max(gcMaxMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });
/** A sample came in: count it and record its timestamp → now. */
function received(timestampMs: number): void {
  accepted++;
  latency.record((Date.now() - timestampMs) * 1000);
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listenHost, port: Number(listenPort), backlog: LISTEN_BACKLOG }, resolve);
  });
  const bound = server.address();
  return typeof bound === 'object' && bound !== null ? bound.port : 0;
}

/** Bare grpc-js: the poller's service definition (and so its decoder), nothing else. */
async function startGrpc(): Promise<Host> {
  const server = new grpc.Server();
  let open = 0;
  server.addService(telemetryService, {
    report: (call: TelemetryReportCall) => {
      let hello = false;
      call.on('data', (msg: AgentMessage) => {
        if (msg.body === 'hello' && !hello) {
          hello = true;
          open++;
        }
        if (msg.sample) received(Number(msg.sample.timestampMs));
      });
      let closed = false;
      const close = (): void => {
        if (closed) return;
        closed = true;
        if (hello) open--;
      };
      call.on('end', () => {
        close();
        call.end();
      });
      call.on('error', close);
      call.on('close', close);
      call.on('cancelled', close);
    },
  });
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const listener = createServer((socket) => injector.injectConnection(socket));
  const port = await listen(listener);
  return { port, live: () => open, rejected: () => ({}), stop: () => listener.close() };
}

/** Bare node:http2: gRPC's length-prefixed framing split by hand, each message decoded. */
async function startHttp2(): Promise<Host> {
  const server = http2.createServer();
  let open = 0;
  server.on('session', (s) => s.on('error', () => undefined));
  server.on('stream', (stream, headers) => {
    if (headers[':path'] !== TELEMETRY_REPORT_PATH) {
      stream.respond({ ':status': 404 }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    let hello = false;
    let pending: Buffer = Buffer.alloc(0);
    stream.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 5) {
        const size = pending.readUInt32BE(1);
        if (pending.length < 5 + size) break;
        const msg = AgentMessage.decode(pending.subarray(5, 5 + size));
        pending = pending.subarray(5 + size);
        if (msg.body === 'hello' && !hello) {
          hello = true;
          open++;
        }
        if (msg.sample) received(Number(msg.sample.timestampMs));
      }
    });
    stream.on('error', () => undefined);
    stream.on('close', () => {
      if (hello) open--;
    });
  });
  const port = await listen(server);
  return { port, live: () => open, rejected: () => ({}), stop: () => server.close() };
}

/** The real poller; `transport` gives it a policy naming no agent. */
async function startPoller(): Promise<Host> {
  const lines = ['apiVersion: loadfeed/v1', 'services:'];
  if (mode === 'transport') {
    lines.push('  - name: nobody', '    engine: memory', '    address: tcp 192.0.2.1:1000', '    servers:', '      - { node: no-such-agent, address: "192.0.2.2:80" }');
  } else {
    for (let s = 0; s * perService < agents; s++) {
      lines.push(`  - name: svc-${s}`, '    engine: memory', `    address: tcp 192.0.2.${1 + (s % 250)}:${1000 + s}`, '    servers:');
      for (let i = s * perService; i < Math.min(agents, (s + 1) * perService); i++) lines.push(`      - { node: ${nodeId(i)}, address: "${nodeAddress(i)}:80" }`);
    }
  }
  /** Accepted samples not yet acted on, in arrival order: their timestamp and when accepted. */
  let pending: { sentAt: number; acceptedAt: number }[] = [];
  const engines = defaultEngines();
  const policy = compilePolicy(lines.join('\n'), '<poller-scale policy>', engines.limits());
  const recorder = {
    record(e: TraceRecord): void {
      if (e.type !== 'sample') return;
      if (mode === 'transport') {
        received(Number(e.sample.timestampMs));
        return;
      }
      accepted++;
      const sentAt = Number(e.sample.timestampMs);
      ingestLatency.record((Date.now() - sentAt) * 1000);
      pending.push({ sentAt, acceptedAt: performance.now() });
    },
    close: async (): Promise<void> => undefined,
  };
  const poller = new Poller({
    listen: `${listenHost}:${listenPort}`,
    policy,
    engines,
    strategies: defaultStrategies(),
    logger: pino({ level: 'warn' }, pino.destination(2)),
    recorder: recorder as unknown as ConstructorParameters<typeof Poller>[0]['recorder'],
    security: { credentials: grpc.ServerCredentials.createInsecure(), auth: { tokens: new Map(), mutualTls: false, allowPlaintext: false } },
    // Every simulated agent connects from 127.0.0.1: one peer address for the whole fleet.
    limits: { ...DEFAULT_LIMITS, maxPendingPerPeer: DEFAULT_LIMITS.maxPendingConnections },
  });
  poller.observe({
    weightsApplied(_ms, evaluatedAt) {
      const now = Date.now();
      const done = pending.findIndex((p) => p.acceptedAt >= evaluatedAt);
      const acted = done === -1 ? pending : pending.slice(0, done);
      for (const p of acted) {
        latency.record((now - p.sentAt) * 1000);
        cycleWait.record((evaluatedAt - p.acceptedAt) * 1000);
      }
      pending = done === -1 ? [] : pending.slice(done);
      cycles++;
    },
  });
  const port = await poller.start();
  return {
    port,
    live: () => poller.snapshot().nodes.filter((n) => n.state === 'live').length,
    rejected: () => poller.snapshot().ingest.rejected,
    stop: () => poller.stop(),
  };
}

const host = mode === 'grpc' ? await startGrpc() : mode === 'http2' ? await startHttp2() : await startPoller();
process.stdout.write(`ready ${host.port}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'mark') {
    latency = new Histogram();
    ingestLatency = new Histogram();
    cycleWait = new Histogram();
    loopDelay.reset();
    accepted = 0;
    cycles = 0;
    gcMs = 0;
    gcMajorMs = 0;
    gcMaxMs = 0;
  } else if (cmd === 'report') {
    const report: HostReport = {
      accepted,
      cycles,
      live: host.live(),
      rejected: host.rejected(),
      p50Ms: latency.quantile(0.5) / 1000,
      p99Ms: latency.quantile(0.99) / 1000,
      ingestP99Ms: (mode === 'full' ? ingestLatency : latency).quantile(0.99) / 1000,
      cycleWaitP99Ms: cycleWait.quantile(0.99) / 1000,
      cycleWaitMaxMs: cycleWait.count === 0 ? Number.NaN : cycleWait.max / 1000,
      maxMs: latency.max / 1000,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      gcMs,
      gcMajorMs,
      gcMaxMs,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  }
});
const stop = (): void => void Promise.resolve(host.stop()).finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
