// Binding a Unix socket the agent serves (status, application push): a
// missing directory, a socket held by another live process, or a path that
// is not a socket is an error the caller logs; a stale socket file left by a
// process that died (no one accepts on it) is replaced.
import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface BindFailure {
  readonly why: 'no-directory' | 'in-use' | 'not-a-socket' | 'error';
  readonly detail: string;
}

/** Null once `server` listens on `socketPath` with `mode`; else why not. */
export async function bindUnixSocket(server: net.Server, socketPath: string, mode: number): Promise<BindFailure | null> {
  const dir = path.dirname(socketPath);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    return { why: 'no-directory', detail: `${dir}: ${(err as Error).message}` };
  }
  let error = await listen(server, socketPath);
  if (error?.code === 'EADDRINUSE') {
    if (await answers(socketPath)) return { why: 'in-use', detail: 'another process answers on it' };
    if (!isSocket(socketPath)) return { why: 'not-a-socket', detail: 'the path exists and is not a socket' };
    try {
      unlinkSync(socketPath); // left behind by a process that died
    } catch {
      // gone meanwhile
    }
    error = await listen(server, socketPath);
  }
  if (error) return { why: 'error', detail: error.message };
  try {
    chmodSync(socketPath, mode);
  } catch {
    // the umask's mode stays
  }
  return null;
}

/** Removes the socket file, synchronously so it is gone before the process exits. */
export function unlinkSocket(socketPath: string): void {
  try {
    unlinkSync(socketPath);
  } catch {
    // already removed
  }
}

function listen(server: net.Server, socketPath: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException): void => resolve(err);
    server.once('error', onError);
    server.listen(socketPath, () => {
      server.off('error', onError);
      resolve(null);
    });
  });
}

function isSocket(file: string): boolean {
  try {
    return lstatSync(file).isSocket();
  } catch {
    return false;
  }
}

/** Whether something accepts connections on the socket rather than a stale file. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
