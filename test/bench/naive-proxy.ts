/**
 * The reference point of bench:fastpath: the naive Node TCP proxy the fast
 * path has to beat (issue 8 quotes one at 0.85× HAProxy's keep-alive rate and
 * 0.53× its connection rate). Each accepted connection goes to the next
 * `--backend HOST:PORT` in turn and the two sockets are joined with
 * `pipe()` both ways; an error on either side destroys both. Prints its port
 * on the first stdout line; exits when stdin closes.
 */
import { connect, createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { backend: { type: 'string', multiple: true, default: [] } } });
const backends = values.backend.map((b) => {
  const i = b.lastIndexOf(':');
  return { host: b.slice(0, i), port: Number(b.slice(i + 1)) };
});
let next = 0;
const server = createServer((client) => {
  const backend = backends[next++ % backends.length];
  if (backend === undefined) {
    client.destroy();
    return;
  }
  const upstream = connect(backend);
  const destroy = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', destroy);
  upstream.on('error', destroy);
  client.pipe(upstream).pipe(client);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : 0}\n`);
});
// Nothing to flush: open connections go with the process.
const stop = (): never => process.exit(0);
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
