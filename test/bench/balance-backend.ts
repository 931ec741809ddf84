/**
 * A bench backend: an HTTP server whose every request costs `--work-ms` of
 * CPU time, served one at a time (a single worker). Its capacity is whatever
 * CPU its cgroup's quota lets it have: the kernel enforces it, nothing here
 * does. Replies with its id as the body.
 *
 * Prints its port on the first stdout line. Reads commands on stdin, one a
 * line: `work MS` changes the cost per request (a slowdown). Exits when stdin
 * closes, so it never outlives the bench that started it.
 */
import http from 'node:http';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    id: { type: 'string', default: 'backend' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'work-ms': { type: 'string', default: '2' },
  },
});
const id = values.id;
let workUs = Number(values['work-ms']) * 1000;
if (!(workUs > 0)) throw new Error('--work-ms must be > 0');

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** The request's real work: `us` of CPU time, however long the quota makes it take. */
function work(us: number): number {
  const until = cpuUs() + us;
  let x = 0;
  while (cpuUs() < until) for (let i = 0; i < 200; i++) x += Math.sqrt(x + i);
  return x;
}

const body = Buffer.from(`${id}\n`);
let sink = 0;
const server = http.createServer((req, res) => {
  req.resume();
  sink += work(workUs);
  res.writeHead(200, { 'content-length': body.length, 'content-type': 'text/plain' });
  res.end(body);
});
server.keepAliveTimeout = 2_000;
server.listen({ host: values.host, port: Number(values.port), backlog: 4096 }, () => {
  const addr = server.address();
  process.stdout.write(`${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});

createInterface({ input: process.stdin }).on('line', (line) => {
  const m = /^work ([\d.]+)$/.exec(line.trim());
  if (m) workUs = Number(m[1]) * 1000;
});
process.stdin.on('end', () => process.exit(sink === -1 ? 1 : 0));
process.on('SIGTERM', () => process.exit(0));
