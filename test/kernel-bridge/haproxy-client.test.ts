// The runtime API client against fake stats sockets (Unix sockets served by
// the test): what it writes, how it reads, and the errors it gives when the
// peer is missing, silent, or answers something else. No haproxy needed.
import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WAIT_DEFAULT_MS } from '../helpers/wait.js';
import {
  EngineUnavailableError,
  MalformedReplyError,
  OptionError,
  createHaproxyEngine,
  createRuntimeApiClient,
} from '@loadfeed/kernel-bridge';

const WAIT_MS = WAIT_DEFAULT_MS;

/** A Unix socket that hands each received line to `answer`; returns its path and the lines seen. */
async function fakeSocket(
  t: ExecutionContext,
  answer: (line: string, socket: Socket) => void,
): Promise<{ path: string; lines: string[] }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lf-fake-haproxy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const newline = text.indexOf('\n');
      if (newline >= 0) {
        const line = text.slice(0, newline);
        lines.push(line);
        answer(line, socket);
      }
    });
  });
  const socketPath = path.join(dir, 'admin.sock');
  server.listen(socketPath);
  await once(server, 'listening', { signal: AbortSignal.timeout(WAIT_MS) });
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { path: socketPath, lines };
}

test('run() writes one marked line and splits the answer, sent in small pieces', async (t) => {
  const answer = 'admin\n\n\nadmin\n\nNo such server.\n\nadmin\n\n';
  const fake = await fakeSocket(t, (_line, socket) => {
    for (let i = 0; i < answer.length; i += 3) socket.write(answer.slice(i, i + 3));
    socket.end();
  });
  const client = createRuntimeApiClient({ socket: fake.path });
  t.deepEqual(await client.run(['set server a/b weight 1', 'set server a/c weight 2']), {
    level: 'admin',
    replies: ['', 'No such server.'],
  });
  t.deepEqual(fake.lines, [
    'show cli level; set server a/b weight 1; show cli level; set server a/c weight 2; show cli level',
  ]);
});

test('a missing socket is EngineUnavailableError saying what HAProxy needs', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'lf-fake-haproxy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const engine = createHaproxyEngine({ socket: path.join(dir, 'none.sock') });
  const error = await t.throwsAsync(engine.observe(), { instanceOf: EngineUnavailableError });
  t.is(error?.code, 'BRIDGE_ENGINE_UNAVAILABLE');
  t.regex(error?.message ?? '', /ENOENT/);
  t.regex(error?.message ?? '', /stats socket <path> mode 600 level admin/);
});

test('a peer that never finishes answering times out', async (t) => {
  const fake = await fakeSocket(t, (_line, socket) => socket.write('admin\n\n'));
  const client = createRuntimeApiClient({ socket: fake.path, timeoutMs: 200 });
  const started = performance.now();
  const error = await t.throwsAsync(client.run(['set server a/b weight 1']), { instanceOf: EngineUnavailableError });
  t.regex(error?.message ?? '', /did not finish answering within 200 ms/);
  t.true(performance.now() - started < WAIT_MS);
});

test('answers that are not HAProxy\'s are MalformedReplyError', async (t) => {
  const fake = await fakeSocket(t, (line, socket) => socket.end(line.startsWith('show stat') ? 'HTTP/1.1 400 Bad Request\r\n' : 'admin\n\n'));
  const client = createRuntimeApiClient({ socket: fake.path });
  const stat = await t.throwsAsync(client.showStat(), { instanceOf: MalformedReplyError });
  t.regex(stat?.message ?? '', /show stat: header "HTTP\/1.1 400 Bad Request/);
  const run = await t.throwsAsync(client.run(['set server a/b weight 1']), { instanceOf: MalformedReplyError });
  t.regex(run?.message ?? '', /answered 0 of 1 commands before closing/);
  t.is(run?.code, 'BRIDGE_MALFORMED_REPLY');
});

test('options are checked', (t) => {
  t.throws(() => createRuntimeApiClient({ socket: '' }), { instanceOf: OptionError });
  t.throws(() => createRuntimeApiClient({ socket: '/x', timeoutMs: 0 }), { instanceOf: OptionError });
  t.throws(() => createHaproxyEngine({ socket: '/x', maxLineBytes: 10 }), { instanceOf: OptionError });
});
