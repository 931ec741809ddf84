// Debian's haproxy started by a test: a config written to a temporary
// directory, stats sockets there (`level admin` and `level user`), HTTP
// backends on listen(0) that answer with their name, and a frontend on a Unix
// socket so no TCP port has to be guessed. HAProxy runs in the foreground as
// our child, is stopped by its PID at teardown, and the directory is removed.
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { binary, findExecutable, realEngineGate } from '../helpers/real-engine.js';
import { renderConfig, waitForAdmin, type HaproxyConfig } from '../helpers/haproxy.js';

export { renderConfig, type BackendSection, type HaproxyConfig, type ServerLine } from '../helpers/haproxy.js';

export const haproxyGate = realEngineGate('haproxy', [binary('haproxy', 'haproxy')]);

/** Bound on every single wait (HAProxy start and stop, one HTTP request). */
export const WAIT_MS = 10_000;

export interface HaproxyInstance {
  readonly dir: string;
  /** Unix stats socket at level admin. */
  readonly adminSocket: string;
  /** Unix stats socket at level user (reads only). */
  readonly userSocket: string;
  /** Unix socket of the frontend (HTTP), when the config has one. */
  readonly frontendSocket: string;
  readonly pid: number;
}

/** Start haproxy with `config`; it is stopped (by PID) and its directory removed at teardown. */
export async function startHaproxy(t: ExecutionContext, config: HaproxyConfig): Promise<HaproxyInstance> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lf-haproxy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, renderConfig(dir, config));
  const executable = findExecutable('haproxy') ?? 'haproxy';
  const child = spawn(executable, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  let exited = false;
  const exit = once(child, 'exit').then(() => (exited = true));
  t.teardown(async () => {
    if (!exited) child.kill('SIGTERM');
    await Promise.race([
      exit,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`haproxy ${child.pid} did not stop within ${WAIT_MS} ms`)), WAIT_MS).unref(),
      ),
    ]);
  });
  const adminSocket = path.join(dir, 'admin.sock');
  await waitForAdmin(adminSocket, () => (exited ? stderr : null), WAIT_MS);
  if (child.pid === undefined) throw new Error('haproxy has no PID');
  return {
    dir,
    adminSocket,
    userSocket: path.join(dir, 'user.sock'),
    frontendSocket: path.join(dir, 'fe.sock'),
    pid: child.pid,
  };
}

export interface HttpBackend {
  readonly name: string;
  /** `127.0.0.1:PORT` */
  readonly address: string;
  readonly server: Server;
  /** Requests received so far (answered or held). */
  requests(): number;
}

/**
 * An HTTP server on 127.0.0.1:0 answering every request with its name;
 * `hold`, when given, delays each answer until it resolves.
 */
export async function startHttpBackend(
  t: ExecutionContext,
  name: string,
  hold?: () => Promise<void>,
): Promise<HttpBackend> {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    req.resume();
    const answer = (): void => {
      res.setHeader('connection', 'close');
      res.end(name);
    };
    if (hold === undefined) answer();
    else void hold().then(answer);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening', { signal: AbortSignal.timeout(WAIT_MS) });
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  return { name, address: `127.0.0.1:${address.port}`, server, requests: () => requests };
}

/** One HTTP GET through the frontend on a new connection; the body (the backend's name) and status. */
export async function get(frontendSocket: string): Promise<{ status: number; body: string }> {
  const req = request({ socketPath: frontendSocket, path: '/', agent: false, headers: { connection: 'close' } });
  req.end();
  const [res] = (await once(req, 'response', { signal: AbortSignal.timeout(WAIT_MS) })) as [IncomingMessage];
  res.setEncoding('utf8');
  let body = '';
  res.on('data', (chunk: string) => (body += chunk));
  await once(res, 'end', { signal: AbortSignal.timeout(WAIT_MS) });
  return { status: res.statusCode ?? 0, body };
}

/** `count` requests one after another; how many each backend answered. */
export async function countAnswers(frontendSocket: string, count: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const { status, body } = await get(frontendSocket);
    const key = status === 200 ? body : `HTTP ${status}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
