/**
 * The built-in fast path alone in a process, for bench:fastpath: one service
 * on 127.0.0.1 (port 0) forwarding to `--backend HOST:PORT` (repeatable) with
 * equal weights. Prints its port on the first stdout line; exits when stdin
 * closes.
 */
import { parseArgs } from 'node:util';
import { createFastpathEngine } from '@loadfeed/kernel-bridge';

const { values } = parseArgs({
  options: { backend: { type: 'string', multiple: true, default: [] }, scheduler: { type: 'string', default: 'wlc' } },
});
const SERVICE = 'tcp 127.0.0.1:0';
const engine = createFastpathEngine();
await engine.apply([
  { op: 'add-service', service: { address: SERVICE, scheduler: values.scheduler } },
  ...values.backend.map((b) => ({ op: 'add-destination' as const, service: SERVICE, destination: b, weight: 100 })),
]);
process.stdout.write(`${engine.boundAddress(SERVICE).port}\n`);
const stop = (): void => void engine.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
