/**
 * The real poller (library), alone in a process for bench:poller-scale: one
 * service per 100 simulated agents, each server named by node id, memory
 * engine. Measures sample-to-decision latency: from the agent's sample
 * timestamp to the moment the weights of the policy cycle that included that
 * sample are in the engine (the poller's weightsApplied hook). Prints
 * "ready PORT"; on the stdin line "mark" it starts a new measuring window, on
 * "report" it prints one JSON line of that window's figures.
 */
import * as grpc from '@grpc/grpc-js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { compilePolicy, DEFAULT_LIMITS, defaultEngines, defaultStrategies, Poller, type TraceRecord } from '@loadfeed/poller';
import { Histogram } from './lib/histogram.js';

const { values } = parseArgs({ options: { agents: { type: 'string' }, listen: { type: 'string', default: '127.0.0.1:0' }, 'per-service': { type: 'string', default: '100' } } });
const agents = Number(values.agents);
const perService = Number(values['per-service']);
const nodeId = (i: number): string => `sim-${String(i).padStart(6, '0')}`;
const nodeAddress = (i: number): string => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

const lines = ['apiVersion: loadfeed/v1', 'services:'];
for (let s = 0; s * perService < agents; s++) {
  lines.push(`  - name: svc-${s}`, '    engine: memory', `    address: tcp 192.0.2.${1 + (s % 250)}:${1000 + s}`, '    servers:');
  for (let i = s * perService; i < Math.min(agents, (s + 1) * perService); i++) lines.push(`      - { node: ${nodeId(i)}, address: "${nodeAddress(i)}:80" }`);
}

/** Accepted samples not yet acted on, in arrival order: their timestamp and when accepted. */
let pending: { sentAt: number; acceptedAt: number }[] = [];
let latency = new Histogram();
/** How late the poller's event loop ran timers: stalls there delay every sample behind them. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
let accepted = 0;
let cycles = 0;

const engines = defaultEngines();
const policy = compilePolicy(lines.join('\n'), '<poller-scale policy>', engines.limits());
const recorder = {
  record(e: TraceRecord): void {
    if (e.type === 'sample') {
      accepted++;
      pending.push({ sentAt: Number(e.sample.timestampMs), acceptedAt: performance.now() });
    }
  },
  close: async (): Promise<void> => undefined,
};
const poller = new Poller({
  listen: values.listen,
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
    for (const p of acted) latency.record((now - p.sentAt) * 1000);
    pending = done === -1 ? [] : pending.slice(done);
    cycles++;
  },
});
const port = await poller.start();
process.stdout.write(`ready ${port}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'mark') {
    latency = new Histogram();
    loopDelay.reset();
    accepted = 0;
    cycles = 0;
  } else if (cmd === 'report') {
    const snapshot = poller.snapshot();
    const live = snapshot.nodes.filter((n) => n.state === 'live').length;
    // Messages refused since start, by reason: why streams were cut, if they were.
    const rejected = snapshot.ingest.rejected;
    process.stdout.write(`${JSON.stringify({ accepted, cycles, live, rejected, p50Ms: latency.quantile(0.5) / 1000, p99Ms: latency.quantile(0.99) / 1000, maxMs: latency.max / 1000, decided: latency.count, loopDelayP99Ms: loopDelay.percentile(99) / 1e6, loopDelayMaxMs: loopDelay.max / 1e6 })}\n`);
  }
});
const stop = (): void => void poller.stop().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
