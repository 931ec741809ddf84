/**
 * Simulated agents for bench:poller-scale: `--count` real gRPC streams, each
 * on its own HTTP/2 connection as separate agents would open them; each sends
 * Hello, then one Sample every `--interval-ms` (start times spread over the
 * first interval), and pings the poller as often as the real agent's keepalive. The wire is gRPC's (length-prefixed protobuf messages on a POST
 * to the Report path), written with node:http2 directly: grpc-js's client
 * machinery cost these processes more CPU than the poller they measure, on a
 * machine where both share two cores. Prints "ready N" once every stream has
 * sent Hello and "stats SENT" on each line "stats" read from stdin; exits when
 * stdin closes.
 */
import http2 from 'node:http2';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { KEEPALIVE_TIME_MS } from '@loadfeed/agent';
import { AgentMessage, Scope, TELEMETRY_REPORT_PATH } from '@loadfeed/proto';
import { nodeAddress, nodeId } from './lib/scale.js';

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

let sent = 0;
let ready = 0;
/** Closes each simulated agent's current connection. */
const sessions: (() => void)[] = [];
let stopping = false;
const timers: NodeJS.Timeout[] = [];

/**
 * Connections opened per 100 ms: 250/s per process. Faster, the connect
 * storm overflows the poller's listen backlog, and the SYNs the kernel drops
 * are retried only after 1, 3, 7 … s.
 */
const OPEN_BATCH = 25;

/** One gRPC message: uncompressed flag, big-endian length, the encoded AgentMessage. */
function frame(message: Parameters<typeof AgentMessage.encode>[0]): Buffer {
  const body = AgentMessage.encode(message).finish();
  const out = Buffer.allocUnsafe(5 + body.length);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}

function open(k: number): void {
  const i = firstId + k;
  let session: http2.ClientHttp2Session;
  let stream: http2.ClientHttp2Stream;
  let seq = 0;
  // Like the real agent, a stream that fails or is cut comes back after a pause.
  const connect = (): void => {
    session = http2.connect(`http://${target}`);
    session.on('error', () => undefined);
    session.on('close', () => {
      if (!stopping) setTimeout(connect, 500 + Math.random() * 500);
    });
    stream = session.request({ ':method': 'POST', ':path': TELEMETRY_REPORT_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    stream.on('error', () => undefined);
    stream.resume(); // the poller's Config and Acks are of no interest here
    seq = 0;
    stream.write(
      frame({
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
      }),
    );
  };
  connect();
  sessions.push(() => session.close());
  ready++;
  const send = (): void => {
    if (stream.destroyed) return;
    seq++;
    const busy = 0.3 + 0.4 * Math.random();
    stream.write(
      frame({
        sample: {
          seq,
          timestampMs: Date.now(),
          cpuUtilization: busy,
          memUtilization: 0.4,
          load1: 1,
          runnable: 1,
          tcpInuse: 100,
          tcpEstablished: 50,
          tcpAcceptsPerSecond: 20,
          services: [{ name: 'web', established: 50 }],
          windowMs: intervalMs,
        },
      }),
    );
    sent++;
  };
  timers.push(
    setTimeout(() => {
      send();
      timers.push(setInterval(send, intervalMs));
    }, Math.random() * intervalMs),
    setInterval(() => {
      if (!session.destroyed) session.ping(() => undefined);
    }, KEEPALIVE_TIME_MS),
  );
}

for (let k = 0; k < count; k += OPEN_BATCH) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (let j = k; j < Math.min(count, k + OPEN_BATCH); j++) open(j);
}
process.stdout.write(`ready ${ready}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'stats') process.stdout.write(`stats ${sent}\n`);
});
const stop = (): void => {
  stopping = true;
  for (const t of timers) clearTimeout(t);
  for (const close of sessions) close();
  setTimeout(() => process.exit(0), 200).unref();
};
process.stdin.on('end', stop);
process.on('SIGTERM', () => process.exit(0));
