// HAProxy runtime API client over the stats socket: the only file of the
// HAProxy engine that touches the OS. Without `prompt`, HAProxy reads one
// line (commands joined with `;`), answers each command, and closes the
// connection; so every exchange is connect, write one line, read until EOF.
// Replies are never framed by "\n\n" (some end with a single newline): the
// replies of a batch are told apart by markers (replies.ts).
import { connect, type Socket } from 'node:net';
import { parseHostPort } from '../address.js';
import { EnginePermissionError, EngineUnavailableError, MalformedReplyError, OptionError } from '../errors.js';
import {
  MarkedReplyReader,
  ReplyFormatError,
  markedLine,
  parseServersState,
  parseShowBackend,
  parseShowStat,
  type MarkedReplies,
  type ServerState,
  type StatBackend,
} from './replies.js';

export const DEFAULT_RUNTIME_API_TIMEOUT_MS = 5_000;

export interface RuntimeApiOptions {
  /**
   * The stats socket: a Unix socket path (`/run/haproxy/admin.sock`), or
   * `HOST:PORT` (`127.0.0.1:9999`, `[::1]:9999`) for `stats socket ipv4@…`.
   */
  readonly socket: string;
  /** Bound on one whole exchange (connect, write, read until HAProxy closes). */
  readonly timeoutMs?: number;
}

export interface RuntimeApiClient {
  readonly socket: string;
  /** Send one line (no newline in it) and return all HAProxy answered. One connection. */
  send(line: string): Promise<string>;
  /** Run `commands` on one connection, one reply per command (markers interleaved, see replies.ts). */
  run(commands: readonly string[]): Promise<MarkedReplies>;
  /** `show stat`, backends and servers only. */
  showStat(): Promise<StatBackend[]>;
  /** `show servers state [backend]`. */
  showServersState(backend?: string): Promise<ServerState[]>;
  /** `show backend`. */
  showBackends(): Promise<string[]>;
}

type Endpoint = { readonly path: string } | { readonly host: string; readonly port: number };

export function createRuntimeApiClient(options: RuntimeApiOptions): RuntimeApiClient {
  const endpoint = compileEndpoint(options.socket);
  const timeoutMs = options.timeoutMs ?? DEFAULT_RUNTIME_API_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new OptionError(`timeoutMs: ${timeoutMs} must be a positive number of milliseconds`);
  }
  const where = `HAProxy stats socket ${options.socket}`;

  /** One exchange; `onData` sees every chunk; resolves when HAProxy closes its side. */
  function exchange(line: string, onData: (chunk: Buffer) => void): Promise<void> {
    if (line.includes('\n')) throw new OptionError(`a runtime API line cannot contain a newline: ${JSON.stringify(line)}`);
    return new Promise((resolve, reject) => {
      const socket: Socket = connect(endpoint);
      let settled = false;
      const finish = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (error === undefined) resolve();
        else reject(error);
      };
      const timer = setTimeout(
        () => finish(new EngineUnavailableError(`${where} did not finish answering within ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.on('connect', () => socket.end(`${line}\n`));
      socket.on('data', (chunk: Buffer) => {
        try {
          onData(chunk);
        } catch (error) {
          finish(error as Error);
        }
      });
      socket.on('end', () => finish());
      socket.on('error', (error: NodeJS.ErrnoException) => finish(connectionError(where, error)));
    });
  }

  async function send(line: string): Promise<string> {
    const chunks: Buffer[] = [];
    await exchange(line, (chunk) => chunks.push(chunk));
    return Buffer.concat(chunks).toString('utf8');
  }

  async function parsed<T>(command: string, parse: (text: string) => T): Promise<T> {
    const text = await send(command);
    try {
      return parse(text);
    } catch (error) {
      throw malformed(where, error);
    }
  }

  return {
    socket: options.socket,
    send,
    async run(commands) {
      const reader = new MarkedReplyReader(commands.length);
      await exchange(markedLine(commands), (chunk) => reader.push(chunk));
      try {
        return reader.end();
      } catch (error) {
        throw malformed(where, error);
      }
    },
    showStat: () => parsed('show stat -1 6 -1', parseShowStat),
    showServersState: (backend) =>
      parsed(backend === undefined ? 'show servers state' : `show servers state ${backend}`, parseServersState),
    showBackends: () => parsed('show backend', parseShowBackend),
  };
}

function compileEndpoint(socket: string): Endpoint {
  if (socket.trim() === '') throw new OptionError('socket: the stats socket path or HOST:PORT is empty');
  try {
    const { host, port } = parseHostPort(socket);
    return { host, port };
  } catch {
    return { path: socket };
  }
}

function connectionError(where: string, error: NodeJS.ErrnoException): Error {
  switch (error.code) {
    case 'EACCES':
    case 'EPERM':
      return new EnginePermissionError(
        `cannot open the ${where}: ${error.code}; run as a user that may open it (see "stats socket … mode/user/group" in haproxy.cfg)`,
      );
    case 'ENOENT':
    case 'ECONNREFUSED':
    case 'ENOTSOCK':
    case 'ECONNRESET':
    case 'EPIPE':
      return new EngineUnavailableError(
        `cannot talk to the ${where}: ${error.code}; is HAProxy running with "stats socket <path> mode 600 level admin" in its global section?`,
        { cause: error },
      );
    default:
      return new EngineUnavailableError(`${where}: ${error.message}`, { cause: error });
  }
}

function malformed(where: string, error: unknown): Error {
  if (!(error instanceof ReplyFormatError)) return error as Error;
  return new MalformedReplyError(`${where}: ${error.message}`, { cause: error });
}
