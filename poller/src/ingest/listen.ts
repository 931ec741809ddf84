// Listening sockets of the poller (agents' gRPC, the status server), with
// errors that name the flag and say what to do.
import type { Server } from 'node:net';
import { parseHostPort, type HostPort } from '@loadfeed/kernel-bridge';
import { ListenError } from '../errors.js';

export interface ListenOptions {
  /** Pending connections the kernel may queue (capped by net.core.somaxconn). */
  readonly backlog?: number;
  /** The other way out when the address is in use, e.g. "--status off". */
  readonly orElse?: string;
}

/** Listen on `address` (IP:PORT; port 0 picks one), given with `flag`; resolves with the address bound. */
export async function listenOn(server: Server, flag: string, address: string, options: ListenOptions = {}): Promise<HostPort> {
  const { host, port } = parseHostPort(address, { allowPortZero: true });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const hint =
        err.code === 'EADDRINUSE'
          ? `the address is in use (another poller?); pass ${flag} HOST:PORT${options.orElse ? `, or ${options.orElse}` : ''}`
          : err.code === 'EADDRNOTAVAIL'
            ? `no interface has that address; pass ${flag} with one of this host's addresses`
            : err.message;
      reject(new ListenError(`${flag} ${address}: ${hint}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host, port, ...(options.backlog === undefined ? {} : { backlog: options.backlog }) }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address();
  return { host, port: typeof bound === 'object' && bound !== null ? bound.port : port };
}
