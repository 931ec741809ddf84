/**
 * Holds `--count` established TCP connections on loopback to `--port` (it
 * listens there itself), opened from local addresses 127.0.1.F, 127.0.1.F+1, ... (F = --first-address)
 * so that more than one ephemeral port range (28,232 ports here) is
 * available. Both ends live in this process: 2 × count descriptors (the bench
 * raises the limit). Prints "ready N" once all are up; exits when stdin closes.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, count: { type: 'string' }, 'first-address': { type: 'string', default: '1' } } });
const port = Number(values.port);
const count = Number(values.count);
const PER_ADDRESS = 20_000;
const firstAddress = Number(values['first-address']);
const BATCH = 500;

const accepted: net.Socket[] = [];
const clients: net.Socket[] = [];
const server = net.createServer((s) => {
  s.on('error', () => undefined);
  accepted.push(s);
});
server.maxConnections = count + 1000;
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => void open());

async function open(): Promise<void> {
  for (let i = 0; i < count; i += BATCH) {
    const n = Math.min(BATCH, count - i);
    await Promise.all(
      Array.from({ length: n }, (_, j) => {
        const k = i + j;
        const localAddress = `127.0.1.${firstAddress + Math.floor(k / PER_ADDRESS)}`;
        return new Promise<void>((resolve, reject) => {
          const c = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve());
          c.on('error', reject);
          clients.push(c);
        });
      }),
    );
  }
  while (accepted.length < count) await new Promise((r) => setTimeout(r, 20));
  process.stdout.write(`ready ${clients.length}\n`);
}

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
