/**
 * A demo HTTP backend with a real, enforced CPU allowance. Each request costs
 * `--work-ms` of CPU; the process spends at most `--allowance` cores on
 * requests, metered with its own CPU clock in 100 ms periods (the same
 * bandwidth control CFS quotas apply, done in-process so the demo needs no
 * root). Requests beyond the allowance queue, so an overloaded backend really
 * gets slower, and its agent really sees it at 100 % of its capacity.
 *
 * Prints its port on the first stdout line. Exits when stdin closes, so it
 * never outlives the demo that started it.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

const PERIOD_MS = 100;

const { values } = parseArgs({
  options: {
    id: { type: 'string' },
    port: { type: 'string', default: '0' },
    allowance: { type: 'string' },
    'work-ms': { type: 'string', default: '5' },
  },
});
const id = values.id ?? 'backend';
const allowance = Number(values.allowance);
const workMs = Number(values['work-ms']);
if (!(allowance > 0) || !(workMs > 0)) throw new Error('--allowance CORES and --work-ms MS must be > 0');

const queue: http.ServerResponse[] = [];
let periodStart = performance.now();
let usedUs = 0;
let draining = false;

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Burn `ms` of CPU, the request's real work. */
function work(ms: number): void {
  const until = cpuUs() + ms * 1000;
  let x = 0;
  while (cpuUs() < until) x += Math.sqrt(x + 1);
  if (x < 0) throw new Error('unreachable');
}

function drain(): void {
  draining = false;
  const now = performance.now();
  if (now - periodStart >= PERIOD_MS) {
    periodStart = now - ((now - periodStart) % PERIOD_MS);
    usedUs = 0;
  }
  const budgetUs = allowance * PERIOD_MS * 1000;
  while (queue.length > 0 && usedUs < budgetUs) {
    const res = queue.shift() as http.ServerResponse;
    const before = cpuUs();
    work(workMs);
    res.setHeader('x-backend', id);
    res.end(`${id}\n`);
    usedUs += cpuUs() - before;
  }
  if (queue.length > 0) {
    draining = true;
    setTimeout(drain, Math.max(1, PERIOD_MS - (performance.now() - periodStart)));
  }
}

const server = http.createServer((req, res) => {
  req.resume();
  queue.push(res);
  if (!draining) {
    draining = true;
    setImmediate(drain);
  }
});
server.keepAliveTimeout = 1000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
