/**
 * A bench backend whose bottleneck the kernel cannot see: an HTTP server that
 * serves each request with one of `--pool` workers, which holds it for
 * `--delay-ms` waiting on a simulated dependency (a timer, no CPU). Requests
 * beyond the pool wait in a FIFO queue. Capacity is pool / delay requests a
 * second; CPU stays low whatever the load. Replies with its id as the body.
 *
 * It reports what it knows about its queue, the two ways an application
 * would: ORCA load reports through grpc-js's ServerMetricRecorder on
 * `--orca-port` (rps, application_utilization = busy workers / pool), and
 * `name value` lines pushed every 100 ms to the agent's `--push` socket
 * (in_flight, latency_seconds = the mean time a request held a worker over the
 * last completed `--latency-window-ms`, 1 s by default, concurrency = the pool size).
 *
 * Prints its HTTP port on the first stdout line. Reads commands on stdin, one
 * a line: `delay MS` changes the dependency's latency (a slowdown). Exits when
 * stdin closes, so it never outlives the bench that started it.
 */
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    id: { type: 'string', default: 'backend' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    pool: { type: 'string', default: '4' },
    'delay-ms': { type: 'string', default: '50' },
    'orca-port': { type: 'string', default: '0' },
    push: { type: 'string' },
    'latency-window-ms': { type: 'string', default: '1000' },
  },
});
const id = values.id;
const pool = Number(values.pool);
let delayMs = Number(values['delay-ms']);
const latencyWindowMs = Number(values['latency-window-ms']);
if (!(pool >= 1) || !(delayMs > 0) || !(latencyWindowMs >= 100)) throw new Error('--pool must be >= 1, --delay-ms > 0 and --latency-window-ms >= 100');

const body = Buffer.from(`${id}\n`);
let busy = 0;
const waiting: (() => void)[] = [];
/** Completions in the current second (for rps) and latency window: count and summed worker time, ms. */
let done = 0;
let held = { n: 0, heldMs: 0 };
let last = { n: 0, heldMs: 0 };

function serve(res: http.ServerResponse): void {
  busy++;
  const started = performance.now();
  setTimeout(() => {
    done++;
    held.n++;
    held.heldMs += performance.now() - started;
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'text/plain' });
    res.end(body);
    busy--;
    waiting.shift()?.();
  }, delayMs);
}

const server = http.createServer((req, res) => {
  req.resume();
  if (busy < pool) serve(res);
  else waiting.push(() => serve(res));
});
server.keepAliveTimeout = 2_000;
// The load generator half-closes its connection once the request is sent; a
// server that is not half-open then aborts every request whose answer is
// still waiting on the dependency (the CPU-bound backend answers before it
// reads the FIN). Node has this switch, not in its typings.
(server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
server.listen({ host: values.host, port: Number(values.port), backlog: 4096 }, () => {
  const addr = server.address();
  process.stdout.write(`${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});

const inFlight = (): number => busy + waiting.length;
const latencySeconds = (): number => (last.n > 0 ? last.heldMs / last.n / 1000 : delayMs / 1000);

const recorder = new grpc.ServerMetricRecorder();
const orca = new grpc.Server();
recorder.addToServer(orca);
orca.bindAsync(`127.0.0.1:${values['orca-port']}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) process.stderr.write(`orca: ${err.message}\n`);
});

setInterval(() => {
  recorder.setQpsMetric(done);
  recorder.setEpsMetric(0);
  done = 0;
}, 1000).unref();
setInterval(() => {
  last = held;
  held = { n: 0, heldMs: 0 };
}, latencyWindowMs).unref();
setInterval(() => recorder.setApplicationUtilizationMetric(Math.max(1e-3, busy / pool)), 100).unref();

// The push socket is the agent's; it may not listen yet (or restart): reconnect each tick until it does.
let push: net.Socket | null = null;
if (values.push) {
  const path = values.push;
  setInterval(() => {
    if (push === null) {
      const s = net.connect(path);
      s.on('error', () => {
        if (push === s) push = null;
      });
      s.on('close', () => {
        if (push === s) push = null;
      });
      push = s;
    }
    if (push.writable) push.write(`in_flight ${inFlight()}\nlatency_seconds ${latencySeconds().toFixed(4)}\nconcurrency ${pool}\n`);
  }, 100).unref();
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const m = /^delay ([\d.]+)$/.exec(line.trim());
  if (m) delayMs = Number(m[1]);
});
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
