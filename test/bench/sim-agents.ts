/**
 * Simulated agents for bench:poller-scale: `--count` real gRPC streams, each
 * on its own channel and TCP connection (grpc.use_local_subchannel_pool), as
 * separate agents would open them; each sends Hello, then one Sample every
 * `--interval-ms` (start times spread over the first interval), with keepalive
 * as the real agent's. Prints "ready N" once every stream has sent Hello and
 * "stats SENT" on each line "stats" read from stdin; exits when stdin closes.
 */
import * as grpc from '@grpc/grpc-js';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createTelemetryClient, Scope, type AgentMessage, type PollerMessage } from '@loadfeed/proto';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    count: { type: 'string' },
    'first-id': { type: 'string', default: '0' },
    'interval-ms': { type: 'string', default: '1000' },
  },
});
const target = values.target ?? '';
const count = Number(values.count);
const firstId = Number(values['first-id']);
const intervalMs = Number(values['interval-ms']);

export const nodeId = (i: number): string => `sim-${String(i).padStart(6, '0')}`;
export const nodeAddress = (i: number): string => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

let sent = 0;
let ready = 0;
const streams: grpc.ClientDuplexStream<AgentMessage, PollerMessage>[] = [];
const timers: NodeJS.Timeout[] = [];

/** Streams opened per turn of the event loop, so samples of the open ones keep their pace. */
const OPEN_BATCH = 50;

function open(k: number): void {
  const i = firstId + k;
  const client = createTelemetryClient(target, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  const call = client.report();
  call.on('data', () => undefined);
  call.on('error', () => undefined);
  streams.push(call as unknown as grpc.ClientDuplexStream<AgentMessage, PollerMessage>);
  call.write({
    hello: {
      nodeId: nodeId(i),
      hostname: nodeId(i),
      addresses: [nodeAddress(i)],
      cores: 4,
      memoryBytes: 8 * 2 ** 30,
      labels: {},
      services: [{ name: 'web', port: 80 }],
      agentVersion: 'sim',
      scope: Scope.SCOPE_HOST,
      cpuModel: 'sim',
      intervalMs,
    },
  } as AgentMessage);
  ready++;
  let seq = 0;
  const send = (): void => {
    seq++;
    const busy = 0.3 + 0.4 * Math.random();
    call.write({
      sample: {
        seq,
        timestampMs: Date.now(),
        cpuUtilization: busy,
        memUtilization: 0.4,
        load1: 1,
        runnable: 1,
        psiCpuSome: null,
        psiMemorySome: null,
        psiIoSome: null,
        cpuThrottled: null,
        tcpInuse: 100,
        tcpEstablished: 50,
        tcpAcceptsPerSecond: 20,
        services: [{ name: 'web', established: 50 }],
        windowMs: intervalMs,
      },
    } as AgentMessage);
    sent++;
  };
  timers.push(setTimeout(() => {
    send();
    timers.push(setInterval(send, intervalMs));
  }, Math.random() * intervalMs));
}

for (let k = 0; k < count; k += OPEN_BATCH) {
  await new Promise((resolve) => setTimeout(resolve, 10));
  for (let j = k; j < Math.min(count, k + OPEN_BATCH); j++) open(j);
}
process.stdout.write(`ready ${ready}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'stats') process.stdout.write(`stats ${sent}\n`);
});
const stop = (): void => {
  for (const t of timers) clearTimeout(t);
  for (const s of streams) s.end();
  setTimeout(() => process.exit(0), 200).unref();
};
process.stdin.on('end', stop);
process.on('SIGTERM', () => process.exit(0));
