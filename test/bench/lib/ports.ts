// Ports for bench processes that must be told one (nginx, HAProxy, node_exporter,
// connection holders): picked per run, so two runs on one machine, or anything
// else listening, never collide. Taken below the ephemeral range, where wrk's
// connect storm (thousands of ephemeral ports) cannot reach them.
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';

/** Lowest port handed out; below the usual privileged and well-known service ports. */
const LOWEST = 20_000;

/** The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range). */
function ephemeralStart(): number {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return low !== undefined && Number.isInteger(low) && low > LOWEST + 1000 ? low : 32_768;
}

/** Whether 127.0.0.1:`port` can be listened on now. */
function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * `count` distinct ports free on 127.0.0.1 now, from a random start below the
 * ephemeral range. Whoever is given one binds it at once; a process that
 * finds it taken in between fails loudly (EADDRINUSE), never silently.
 */
export async function freePorts(count: number): Promise<number[]> {
  const top = ephemeralStart();
  const span = top - LOWEST;
  const start = LOWEST + Math.floor(Math.random() * span);
  const out: number[] = [];
  for (let i = 0; i < span && out.length < count; i++) {
    const port = LOWEST + ((start - LOWEST + i) % span);
    if (await free(port)) out.push(port);
  }
  if (out.length < count) throw new Error(`only ${out.length} of ${count} free ports between ${LOWEST} and ${top}`);
  return out;
}
