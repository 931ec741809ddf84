// The agent's own views: `--once --json` and `loadfeed-agent status`, which
// reads the running agent's read-only status socket. Real agent processes,
// streaming to a real poller over gRPC on loopback.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fetchAgentStatus, type AgentStatusDocument } from '@loadfeed/agent';
import { startHarness } from './harness.js';
import { binPath } from '../helpers/launcher.js';
import { waitFor } from '../helpers/wait.js';

const AGENT_BIN = binPath('@loadfeed/agent', 'loadfeed-agent');
// Generous: on a loaded CI machine an agent takes seconds to start.
const WAIT_MS = 45_000;

function tmpDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-agent-status-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Agent extends ChildProcess {
  stderrText(): string;
}

function startAgent(t: ExecutionContext, args: readonly string[]): Agent {
  const child = spawn(process.execPath, [AGENT_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return Object.assign(child, { stderrText: () => stderr });
}

/** Run `loadfeed-agent ARGS` to its end. */
async function run(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [AGENT_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** Run `loadfeed-agent ARGS` again until `done` holds (streams reconnect when a loaded machine misses a keepalive). */
async function runUntil(args: readonly string[], what: string, done: (r: Awaited<ReturnType<typeof run>>) => boolean): Promise<Awaited<ReturnType<typeof run>>> {
  const deadline = performance.now() + WAIT_MS;
  for (;;) {
    const r = await run(args);
    if (done(r)) return r;
    if (performance.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}; last: ${JSON.stringify(r)}`);
  }
}

/** Ask the socket until `ready` holds, within WAIT_MS. */
async function statusWhen(socket: string, what: string, ready: (d: AgentStatusDocument) => boolean): Promise<AgentStatusDocument> {
  const deadline = performance.now() + WAIT_MS;
  let last: unknown;
  for (;;) {
    try {
      const doc = await fetchAgentStatus(socket);
      if (ready(doc)) return doc;
      last = doc.streams;
    } catch (err) {
      last = (err as Error).message;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function until(what: string, ready: () => boolean): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (!ready()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('--once --json prints exactly one sample and exits', async (t) => {
  const r = await run(['--once', '--json', '--interval', '100ms', '--node-id', 'one-shot', '--service', 'ssh:22']);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines.length, 1);
  const sample = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  t.like(sample, { nodeId: 'one-shot', scope: 'host' });
  t.true(typeof sample['timestampMs'] === 'number' && Math.abs((sample['timestampMs'] as number) - Date.now()) < 60_000);
  const cpu = sample['cpuUtilization'] as number;
  t.true(cpu >= 0 && cpu <= 1, `cpu ${cpu}`);
  t.true((sample['memUtilization'] as number) > 0);
  t.true((sample['capacity'] as { cores: number }).cores > 0);
  t.deepEqual((sample['services'] as { name: string }[]).map((s) => s.name), ['ssh']);
});

test('status shows scope, services, every stream and whether it is connected; exit 1 while one is not', async (t) => {
  t.timeout(180_000);
  const h = await startHarness(t, { nodes: ['web-1'] });
  const dir = tmpDir(t);
  const socket = path.join(dir, 'agent.sock');
  const agent = startAgent(t, [
    '--poller', `127.0.0.1:${h.port}`,
    '--poller', '127.0.0.1:1', // nothing listens there
    '--node-id', 'web-1',
    '--service', 'http:9001',
    '--label', 'role=web',
    '--interval', '200ms',
    '--status-socket', socket,
  ]);
  const doc = await statusWhen(socket, 'the good stream connected with samples sent', (d) => d.streams.some((s) => s.state === 'connected' && s.sent > 0));
  t.is(doc.nodeId, 'web-1');
  t.is(doc.pid, agent.pid as number);
  t.deepEqual(doc.scope, { kind: 'host' });
  t.deepEqual(doc.services, [{ name: 'http', port: 9001 }]);
  t.deepEqual(doc.labels, { role: 'web' });
  t.deepEqual(doc.transport, { security: 'plaintext', token: false });
  t.true(doc.samples >= 1 && doc.lastSample !== null);
  t.deepEqual(doc.streams.map((s) => s.target), [`127.0.0.1:${h.port}`, '127.0.0.1:1']);
  t.is(doc.streams[0]?.state, 'connected');
  t.not(doc.streams[1]?.state, 'connected');

  const human = await runUntil(['status', '--status-socket', socket], 'the good stream shown connected', (r) => new RegExp(`127\\.0\\.0\\.1:${h.port} +connected`).test(r.stdout));
  t.is(human.code, 1, 'a stream is not connected');
  t.log(human.stdout);
  t.regex(human.stdout, /^loadfeed-agent web-1 {2}version \S+ {2}pid \d+ {2}up /);
  // The poller's policy says 1s (the default) and pushes it to the agent, which started at 200ms.
  t.regex(human.stdout, /\nmeasures {2}the host: [\d.]+ cores, [\d.]+ GiB memory, every 1s\n/);
  t.regex(human.stdout, /\nservices {2}http:9001\b/);
  t.regex(human.stdout, /\nlabels {4}role=web\n/);
  t.regex(human.stdout, /\nstreams {3}2 pollers, 1 connected {2}\(plaintext\)\n/);
  t.regex(human.stdout, new RegExp(`\\n {2}127\\.0\\.0\\.1:${h.port} +connected +for \\S+ +\\d+ sent, \\d+ dropped\\n`));
  t.regex(human.stdout, /\n {2}127\.0\.0\.1:1 +(waiting|connecting) /);
  // The poller sees the same agent.
  t.true(h.poller.snapshot().nodes.some((n) => n.id === 'web-1' && n.samples > 0));

  const json = await run(['status', '--status-socket', socket, '--json']);
  t.is(json.code, 1);
  t.is((JSON.parse(json.stdout) as AgentStatusDocument).nodeId, 'web-1');
});

test('status exits 0 when every stream is connected; the socket is 0660, read-only, and gone after the agent stops', async (t) => {
  t.timeout(180_000);
  const h = await startHarness(t, { nodes: ['web-2'] });
  const dir = tmpDir(t);
  const socket = path.join(dir, 'agent.sock');
  const agent = startAgent(t, ['--poller', `127.0.0.1:${h.port}`, '--node-id', 'web-2', '--interval', '200ms', '--status-socket', socket]);
  await statusWhen(socket, 'the stream connected', (d) => d.streams.every((s) => s.state === 'connected'));
  const ok = await runUntil(['status', '--status-socket', socket], 'exit 0', (r) => r.code === 0);
  t.is(ok.code, 0, ok.stdout + ok.stderr);
  t.regex(ok.stdout, /1 poller, 1 connected/);
  t.true(statSync(socket).isSocket());
  t.is(statSync(socket).mode & 0o777, 0o660);
  t.deepEqual(readdirSync(dir), ['agent.sock'], 'the agent creates nothing else');

  const post = await new Promise<number>((resolve, reject) => {
    const req = http.request({ socketPath: socket, path: '/status', method: 'POST', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  t.is(post, 405);

  agent.kill('SIGTERM');
  const [code] = (await once(agent, 'exit')) as [number];
  t.is(code, 0);
  t.deepEqual(readdirSync(dir), [], 'the socket file is removed on exit');
  const gone = await run(['status', '--status-socket', socket]);
  t.is(gone.code, 2);
  t.regex(gone.stderr, /cannot reach .*agent\.sock: no agent is listening there\.\nIs loadfeed-agent running on this host\?/);
});

test('a second agent leaves a live socket alone; a stale one (agent killed) is taken over', async (t) => {
  t.timeout(180_000);
  const h = await startHarness(t, { nodes: ['first', 'second', 'third'] });
  const dir = tmpDir(t);
  const socket = path.join(dir, 'agent.sock');
  const args = (id: string): string[] => ['--poller', `127.0.0.1:${h.port}`, '--node-id', id, '--interval', '200ms', '--status-socket', socket];
  const first = startAgent(t, args('first'));
  await statusWhen(socket, 'the first agent', (d) => d.nodeId === 'first');
  const second = startAgent(t, args('second'));
  await until('the second agent to give up the socket', () => second.stderrText().includes('status socket off: another agent answers on it'));
  t.is((await fetchAgentStatus(socket)).nodeId, 'first');

  first.kill('SIGKILL'); // leaves its socket file behind
  await once(first, 'exit');
  t.true(statSync(socket).isSocket());
  startAgent(t, args('third'));
  const doc = await statusWhen(socket, 'the third agent on the stale path', (d) => d.nodeId === 'third');
  t.is(doc.nodeId, 'third');
});

test('without its directory the agent streams anyway and says how to get a status socket', async (t) => {
  t.timeout(180_000);
  const h = await startHarness(t, { nodes: ['lone'] });
  const dir = tmpDir(t);
  const agent = startAgent(t, ['--poller', `127.0.0.1:${h.port}`, '--node-id', 'lone', '--interval', '200ms', '--status-socket', path.join(dir, 'missing', 'agent.sock')]);
  await until('the agent to report', () => h.poller.snapshot().nodes.some((n) => n.id === 'lone' && n.samples > 0));
  t.regex(agent.stderrText(), /status socket off: its directory is missing.*RuntimeDirectory=loadfeed/);
  t.deepEqual(readdirSync(dir), [], 'no directory created');
});

test('--status-socket is checked, and status --help says where it looks', async (t) => {
  const relative = await run(['--poller', '127.0.0.1:7415', '--status-socket', 'agent.sock']);
  t.is(relative.code, 2);
  t.regex(relative.stderr, /statusSocket: "agent\.sock" must be an absolute path/);
  const help = await run(['status', '--help'], { ...process.env, XDG_RUNTIME_DIR: '/run/user/1000' });
  t.is(help.code, 0);
  t.regex(help.stdout, /^Usage: loadfeed-agent status/);
  t.regex(help.stdout, /default \/run\/user\/1000\/loadfeed-agent\.sock/);
  const unknown = await run(['status', '--bogus']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /--bogus.*see loadfeed-agent status --help/s);
});

test('status lists each application metrics source, what it holds and why not; exit 1 while one is not fresh', async (t) => {
  t.timeout(180_000);
  const h = await startHarness(t, { nodes: ['app-1'] });
  const dir = tmpDir(t);
  const socket = path.join(dir, 'agent.sock');
  const push = path.join(dir, 'app.sock');
  startAgent(t, [
    '--poller', `127.0.0.1:${h.port}`,
    '--node-id', 'app-1',
    '--interval', '200ms',
    '--status-socket', socket,
    '--orca', '127.0.0.1:1', // nothing serves ORCA there
    '--app-socket', push,
    '--app-ttl', '600s', // pushed once: they must still be fresh when status asks on a loaded machine
  ]);
  await statusWhen(socket, 'the push socket listening and ORCA failing', (d) => d.app?.sources[0]?.state === 'failing' && d.app.sources[1]?.state === 'silent');
  // What the application writes on its socket.
  await new Promise<void>((resolve, reject) => {
    const c = net.connect(push, () => c.end('in_flight 7\nrps 12.5\n'));
    c.on('close', () => resolve());
    c.on('error', reject);
  });
  const doc = await statusWhen(socket, 'the pushed values in a sample', (d) => d.lastSample?.namedMetrics['in_flight'] === 7);
  t.like(doc.app?.sources[1], { kind: 'push', target: push, state: 'ok', updates: 2, refused: 0 });
  t.deepEqual([...(doc.app?.sources[1]?.names ?? [])].sort(), ['in_flight', 'rps']);
  t.like(doc.app?.sources[0], { kind: 'orca', target: '127.0.0.1:1', state: 'failing', names: [] });
  t.regex(doc.app?.sources[0]?.detail ?? '', /UNAVAILABLE.*retrying in \d+ ms/);
  t.is(doc.lastSample?.rpsFractional, 12.5);
  t.is(doc.lastSample?.applicationUtilization, null, 'no source gave it: absent, not 0');

  const human = await run(['status', '--status-socket', socket]);
  t.log(human.stdout);
  t.is(human.code, 1, 'the ORCA source is failing');
  t.regex(human.stdout, /\napp {7}2 sources, 1 with fresh values\n/);
  t.regex(human.stdout, /\n {2}orca +127\.0\.0\.1:1 +failing .*\n {6}no values: sent as absent\n {6}UNAVAILABLE/);
  t.regex(human.stdout, /\n {2}push +\S+app\.sock +ok .* 2 taken, 0 refused\n {6}(in_flight rps|rps in_flight)\n/);
  t.regex(human.stdout, /last sample: app rps 12\.5 {2}in_flight 7/);
  // The poller got them too.
  await waitFor('the poller to hold them', () => h.poller.snapshot().nodes.find((n) => n.id === 'app-1')?.namedMetrics['in_flight'] === 7, WAIT_MS);
});
