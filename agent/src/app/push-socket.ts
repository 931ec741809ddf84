// `--app-socket PATH`: a local Unix socket where the application writes its
// own figures as lines of `name value` (`in_flight 12`, `rps 340.5`), the way
// HAProxy's agent-check keeps it simple: `printf 'in_flight %d\n' "$n" |
// socat - UNIX-CONNECT:PATH` from a shell, or one long-lived connection from
// the application. A value expires when it is not written again within the
// TTL. Malformed lines and names over the limit are refused and counted; a
// line longer than MAX_LINE_BYTES closes that connection.
import net from 'node:net';
import { APP_METRIC_NAME, MAX_NAMED_METRICS } from '@loadfeed/proto';
import { bindUnixSocket, unlinkSocket } from '../unix-socket.js';
import { FIXED_APP_METRICS, SourceState, excerpt, type AppSource, type AppSourceStatus } from './source.js';

export const MAX_LINE_BYTES = 256;
export const MAX_PUSH_CONNECTIONS = 16;
/** Owner and group may write (connecting needs write permission on the socket). */
export const PUSH_SOCKET_MODE = 0o660;
/** Distinct names held at once: the named metrics the contract allows plus the three fixed ones. */
export const MAX_PUSH_NAMES = MAX_NAMED_METRICS + Object.keys(FIXED_APP_METRICS).length;

export type PushLine = { readonly name: string; readonly value: number } | { readonly error: string };

/** One line without its newline; null for a blank line or a # comment. */
export function parsePushLine(line: string): PushLine | null {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line;
  if (text.trim() === '' || text.trimStart().startsWith('#')) return null;
  const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(text);
  if (!m?.[1] || m[2] === undefined) return { error: `expected "name value", got "${excerpt(text)}"` };
  if (!APP_METRIC_NAME.test(m[1])) return { error: `name "${excerpt(m[1])}" must be 1..64 characters of a-z 0-9 _ starting with a letter` };
  const value = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(m[2]) ? Number(m[2]) : Number.NaN;
  if (!Number.isFinite(value)) return { error: `${m[1]}: value "${excerpt(m[2])}" is not a finite number` };
  return { name: m[1], value };
}

export class PushSource implements AppSource {
  readonly kind = 'push';
  private readonly st = new SourceState();
  private readonly values = new Map<string, { value: number; expiresAt: number }>();
  private readonly server: net.Server;
  private bound = false;
  private closed = false;

  constructor(
    readonly target: string,
    private readonly ttlMs: number,
    private readonly log: (line: Record<string, unknown>) => void,
  ) {
    this.server = net.createServer((socket) => this.onConnection(socket));
    this.server.maxConnections = MAX_PUSH_CONNECTIONS;
  }

  start(): void {
    bindUnixSocket(this.server, this.target, PUSH_SOCKET_MODE).then(
      (failed) => {
        if (failed) {
          this.st.set('failing', `cannot listen: ${failed.detail}`);
          this.log({ msg: 'application push socket off', socket: this.target, detail: failed.detail });
          return;
        }
        this.bound = true;
        if (this.closed) this.close();
        else this.st.set('silent', 'listening; nothing written yet');
      },
      (err: unknown) => this.st.set('failing', (err as Error).message),
    );
  }

  collect(now: number, into: Map<string, number>): void {
    for (const [name, v] of this.values) {
      if (now > v.expiresAt) this.values.delete(name);
      else into.set(name, v.value);
    }
    if (this.values.size === 0 && this.st.state === 'ok') this.st.set('silent', `nothing written within ${this.ttlMs} ms`);
  }

  status(now: number): AppSourceStatus {
    return this.st.report(this.kind, this.target, [...this.values].filter(([, v]) => now <= v.expiresAt).map(([n]) => n));
  }

  close(): void {
    this.closed = true;
    if (!this.bound) return;
    this.bound = false;
    unlinkSocket(this.target);
    this.server.close();
  }

  private onConnection(socket: net.Socket): void {
    socket.setEncoding('utf8');
    let pending = '';
    socket.on('data', (chunk: string) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) !== -1) {
        this.take(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      if (Buffer.byteLength(pending) > MAX_LINE_BYTES) {
        this.refuse(`line longer than ${MAX_LINE_BYTES} bytes; connection closed`);
        socket.destroy();
      }
    });
    socket.on('end', () => {
      if (pending !== '') this.take(pending); // a last line without its newline
      pending = '';
      socket.end();
    });
    socket.on('error', () => undefined);
  }

  private take(line: string): void {
    const parsed = parsePushLine(line);
    if (parsed === null) return;
    if ('error' in parsed) return this.refuse(parsed.error);
    if (!this.values.has(parsed.name) && this.values.size >= MAX_PUSH_NAMES) {
      return this.refuse(`${parsed.name}: already ${MAX_PUSH_NAMES} names held`);
    }
    this.values.set(parsed.name, { value: parsed.value, expiresAt: Date.now() + this.ttlMs });
    this.st.updates += 1;
    if (this.st.state !== 'ok' || this.st.detail !== '') this.st.set('ok', '');
  }

  private refuse(why: string): void {
    this.st.refused += 1;
    this.st.set(this.values.size > 0 ? 'ok' : this.st.state, `refused: ${why}`);
  }
}
