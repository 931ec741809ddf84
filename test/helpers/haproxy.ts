// HAProxy configurations for tests and benches (Debian's haproxy): the
// config text and the wait for its runtime API. Free of ava, so benches,
// which run outside the test runner, use it too.
import path from 'node:path';
import { createRuntimeApiClient } from '@loadfeed/kernel-bridge';
import { waitFor } from './wait.js';

export interface ServerLine {
  readonly name: string;
  /** `127.0.0.1:PORT` */
  readonly address: string;
  readonly weight: number;
  /** Appended to the server line, e.g. `check inter 1s`. */
  readonly options?: string;
}

export interface BackendSection {
  readonly name: string;
  /** `roundrobin` by default. */
  readonly balance?: string;
  readonly servers?: readonly ServerLine[];
}

export interface HaproxyConfig {
  readonly backends: readonly BackendSection[];
  /** A frontend on `<dir>/fe.sock` sending to this backend; none when omitted. */
  readonly frontendBackend?: string;
  /** A TCP stats socket at level admin on this loopback port, besides the Unix ones. */
  readonly tcpStatsPort?: number;
  /** `http` (the default: one server connection per request) or `tcp` (layer 4, as the fast path). */
  readonly mode?: 'http' | 'tcp';
  /** The frontend's bind address instead of `<dir>/fe.sock`, e.g. `127.0.0.1:PORT backlog 4096`. */
  readonly frontendBind?: string;
  /** More lines for the global section, e.g. `nbthread 1`. */
  readonly global?: readonly string[];
}

export function renderConfig(dir: string, config: HaproxyConfig): string {
  const lines = [
    'global',
    `    stats socket ${path.join(dir, 'admin.sock')} mode 600 level admin`,
    `    stats socket ${path.join(dir, 'user.sock')} mode 600 level user`,
    ...(config.tcpStatsPort === undefined ? [] : [`    stats socket ipv4@127.0.0.1:${config.tcpStatsPort} level admin`]),
    '    stats timeout 30s',
    ...(config.global ?? []).map((l) => `    ${l}`),
    'defaults',
    `    mode ${config.mode ?? 'http'}`,
    // One server connection per request: HAProxy deletes a server only
    // without idle connections, and every request is balanced on its own.
    ...(config.mode === 'tcp' ? [] : ['    option http-server-close', '    http-reuse never']),
    '    timeout connect 2s',
    '    timeout client 10s',
    '    timeout server 10s',
  ];
  if (config.frontendBackend !== undefined) {
    lines.push('frontend fe', `    bind ${config.frontendBind ?? `unix@${path.join(dir, 'fe.sock')}`}`, `    default_backend ${config.frontendBackend}`);
  }
  for (const backend of config.backends) {
    lines.push(`backend ${backend.name}`, `    balance ${backend.balance ?? 'roundrobin'}`);
    for (const server of backend.servers ?? []) {
      lines.push(`    server ${server.name} ${server.address} weight ${server.weight}${server.options ? ` ${server.options}` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Wait until HAProxy answers at level admin on `adminSocket`; `exitedWith`
 * returns its stderr once it has exited (then this throws), else null.
 */
export async function waitForAdmin(adminSocket: string, exitedWith: () => string | null, timeoutMs: number): Promise<void> {
  const client = createRuntimeApiClient({ socket: adminSocket, timeoutMs: 1_000 });
  let ready = false;
  let probing = false;
  await waitFor(
    `haproxy to answer on ${adminSocket}`,
    () => {
      const stderr = exitedWith();
      if (stderr !== null) throw new Error(`haproxy exited at start: ${stderr.trim()}`);
      if (!ready && !probing) {
        probing = true;
        client
          .send('show cli level')
          .then((level) => (ready = level.startsWith('admin')))
          .catch(() => undefined)
          .finally(() => (probing = false));
      }
      return ready;
    },
    timeoutMs,
  );
}
