/**
 * Open-loop load: requests start at Poisson-distributed times whatever the
 * service's latency, each on a new TCP connection (so an L4 balancer decides
 * every one), and each request's latency is measured from the time it was
 * *meant* to start. A stalled balancer or backend therefore shows up in full
 * instead of slowing the generator down (no coordinated omission).
 *
 * `--schedule` is JSON [[fromSecond, requestsPerSecond], ...]. Writes one
 * line per request to `--out`: intended start (ms since start), latency (µs,
 * up to the failure for errors), backend id or "-", outcome (ok, timeout,
 * refused, reset, bad, overflow). Prints the start (epoch ms) on its first
 * stdout line and "done" at the end.
 */
import { createWriteStream } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    schedule: { type: 'string' },
    duration: { type: 'string' },
    out: { type: 'string' },
    'timeout-ms': { type: 'string', default: '5000' },
    'max-in-flight': { type: 'string', default: '4000' },
  },
});
const [host, portText] = (values.target ?? '').split(/:(?=\d+$)/);
const port = Number(portText);
const schedule = JSON.parse(values.schedule ?? '[]') as [number, number][];
const durationMs = Number(values.duration) * 1000;
const timeoutMs = Number(values['timeout-ms']);
const maxInFlight = Number(values['max-in-flight']);
if (!host || !(port > 0) || schedule.length === 0 || !(durationMs > 0) || !values.out) {
  throw new Error('usage: --target HOST:PORT --schedule JSON --duration S --out FILE');
}
const out = createWriteStream(values.out);
const REQUEST = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

function rateAt(ms: number): number {
  let rate = 0;
  for (const [from, r] of schedule) if (ms >= from * 1000) rate = r;
  return rate;
}

const startEpoch = Date.now();
const t0 = performance.now();
const elapsed = (): number => performance.now() - t0;
let inFlight = 0;
let next = 0;
let pending = 0;

function fire(intended: number): void {
  if (inFlight >= maxInFlight) {
    out.write(`${intended.toFixed(3)} 0 - overflow\n`);
    return;
  }
  inFlight++;
  pending++;
  let chunks = '';
  let done = false;
  const finish = (outcome: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    inFlight--;
    let backend = '-';
    if (outcome === 'ok') {
      const status = chunks.slice(9, 12);
      const bodyAt = chunks.indexOf('\r\n\r\n');
      backend = bodyAt < 0 ? '' : chunks.slice(bodyAt + 4).trim();
      if (status !== '200' || backend === '') {
        outcome = 'bad';
        backend = '-';
      }
    }
    out.write(`${intended.toFixed(3)} ${Math.round((elapsed() - intended) * 1000)} ${backend} ${outcome}\n`);
    pending--;
    if (pending === 0 && next >= durationMs) end();
  };
  const sock = net.connect({ host, port, noDelay: true });
  const timer = setTimeout(() => {
    sock.destroy();
    finish('timeout');
  }, Math.max(1, timeoutMs - (elapsed() - intended)));
  sock.on('connect', () => sock.end(REQUEST));
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => {
    chunks += d;
  });
  sock.on('end', () => finish('ok'));
  sock.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? 'refused' : 'reset'));
  sock.on('close', () => finish(chunks.length > 0 ? 'ok' : 'reset'));
}

function exp(rate: number): number {
  return (-Math.log(1 - Math.random()) * 1000) / rate;
}

let ended = false;
function end(): void {
  if (ended) return;
  ended = true;
  out.end(() => {
    process.stdout.write('done\n');
    process.exit(0);
  });
}

function tick(): void {
  const now = elapsed();
  while (next <= now && next < durationMs) {
    fire(next);
    const r = rateAt(next);
    next += r > 0 ? exp(r) : 100;
  }
  if (next < durationMs) setTimeout(tick, Math.max(0, next - elapsed()));
  else if (pending === 0) end();
}

process.stdout.write(`${startEpoch}\n`);
next = exp(rateAt(0) || 1);
tick();
// A safety net: never outlive the run by more than the timeout.
setTimeout(end, durationMs + timeoutMs + 2_000).unref();
process.on('SIGTERM', end);
