// Hostile clients and hostile policy files against the real poller process
// (the loadfeed-poller executable) on loopback: raw HTTP/2 sessions that
// never say Hello, that open streams beyond the limits, that announce
// messages larger than the limit or end inside one; Hellos with fields
// beyond their bounds; policy files that compile to values the running
// poller cannot live with. Each refusal must be counted by reason in
// /metrics, and nothing may end a stream with OK unnoticed.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { AgentMessage, TELEMETRY_REPORT_PATH } from '@loadfeed/proto';
import { LOG_BURST, LOG_WINDOW_MS, MAX_POLICY_SERVERS, MAX_PROBLEM_CHARS, MAX_POLICY_PROBLEMS } from '@loadfeed/poller';
import { binPath } from '../helpers/launcher.js';
import { waitFor } from '../helpers/wait.js';

const POLLER = binPath('@loadfeed/poller', 'loadfeed-poller');
const AGENT = binPath('@loadfeed/agent', 'loadfeed-agent');
const ORCA_SERVER = fileURLToPath(new URL('../helpers/orca-server.js', import.meta.url));

const POLICY = `apiVersion: loadfeed/v1
agents: { interval: 200ms }
services:
  - name: web
    engine: memory
    address: tcp 127.0.0.1:18000
    servers:
      - { node: n1, address: "127.0.0.1:9000" }
`;

interface RunningPoller {
  readonly port: number;
  readonly statusUrl: string;
  readonly policyFile: string;
  /** Log records so far. */
  logs(): Record<string, unknown>[];
  /** /metrics value of loadfeed_samples_rejected_total for `reason` (0 when absent). */
  refused(reason: string): Promise<number>;
  get(route: string): Promise<{ status: number; body: string }>;
}

async function startPoller(t: ExecutionContext, flags: string[] = [], policy = POLICY): Promise<RunningPoller> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-hostile-'));
  const policyFile = path.join(dir, 'policy.yaml');
  writeFileSync(policyFile, policy);
  const child = spawn(
    process.execPath,
    [POLLER, '--policy', policyFile, '--listen', '127.0.0.1:0', '--status', '127.0.0.1:0', '--log-format', 'json', ...flags],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const logs = (): Record<string, unknown>[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor('the poller to start', () => logs().some((l) => l['msg'] === 'poller started') || child.exitCode !== null, 30_000);
  const started = logs().find((l) => l['msg'] === 'poller started');
  if (!started) throw new Error(`the poller did not start: ${err}`);
  const statusUrl = String(started['status']);
  const get = (route: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      http
        .get(new URL(route, statusUrl), { agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        })
        .on('error', reject);
    });
  const refused = async (reason: string): Promise<number> => {
    const { body } = await get('/metrics');
    const line = body.split('\n').find((l) => l.startsWith(`loadfeed_samples_rejected_total{reason="${reason}"} `));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  };
  return { port: Number(started['port']), statusUrl, policyFile, logs, refused, get };
}

/** One gRPC message on the wire: flag, big-endian length, body. */
function frame(message: Parameters<typeof AgentMessage.encode>[0]): Buffer {
  const body = AgentMessage.encode(message).finish();
  return Buffer.concat([prefix(body.length), body]);
}

function prefix(length: number): Buffer {
  const out = Buffer.alloc(5);
  out.writeUInt32BE(length, 1);
  return out;
}

const HELLO = { hello: { nodeId: 'n1', cores: 2, memoryBytes: 2 ** 30, addresses: ['127.0.0.1'] } };

/** A raw HTTP/2 session to the poller; closed at teardown. */
function session(t: ExecutionContext, port: number): http2.ClientHttp2Session {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  s.on('error', () => undefined);
  t.teardown(() => {
    s.destroy();
  });
  return s;
}

interface StreamEnd {
  /** gRPC status from the trailers (or trailers-only headers); null if the stream closed without one. */
  readonly code: number | null;
  readonly message: string;
}

/**
 * Open a Report stream on `s`, send `chunks`, optionally end; resolves with
 * the status the poller ended it with (then closes our side), or code null
 * when the stream closed without one.
 */
function report(s: http2.ClientHttp2Session, chunks: Buffer[], end: boolean): Promise<StreamEnd> {
  return new Promise((resolve) => {
    const stream = s.request({ ':method': 'POST', ':path': TELEMETRY_REPORT_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    const take = (h: http2.IncomingHttpHeaders): void => {
      const code = h['grpc-status'];
      if (code === undefined) return;
      resolve({ code: Number(code), message: decodeURIComponent(String(h['grpc-message'] ?? '')) });
      stream.close();
    };
    stream.on('response', take);
    stream.on('trailers', take);
    stream.on('error', () => undefined);
    stream.resume();
    stream.on('close', () => resolve({ code: null, message: `closed (rst ${stream.rstCode})` }));
    for (const c of chunks) stream.write(c);
    if (end) stream.end();
  });
}

const closed = (s: http2.ClientHttp2Session): Promise<void> => new Promise((resolve) => (s.closed || s.destroyed ? resolve() : s.once('close', () => resolve())));

test.serial('connections without a Hello are bounded per peer, closed after the Hello timeout, and counted', async (t) => {
  const p = await startPoller(t, ['--max-pending-per-peer', '3', '--hello-timeout', '1s']);
  const idle = [0, 1, 2, 3, 4].map(() => session(t, p.port));
  // Two of the five are over the bound: closed as accepted.
  await waitFor('two connections refused', () => p.logs().filter((l) => l['kind'] === 'pending-per-peer').length >= 2);
  t.is(await p.refused('pending-per-peer'), 2);
  // The other three said nothing: closed by the Hello timeout.
  await Promise.all(idle.map(closed));
  await waitFor('hello timeouts counted', () => p.logs().filter((l) => l['kind'] === 'hello-timeout').length >= 3);
  t.is(await p.refused('hello-timeout'), 3);
  t.regex((await p.get('/metrics')).body, /^loadfeed_agent_connections_pending 0$/m);
});

test.serial('a connection that said Hello is no longer pending; one without has one stream only', async (t) => {
  const p = await startPoller(t, ['--hello-timeout', '2s']);
  const agent = session(t, p.port);
  void report(agent, [frame(HELLO), frame({ sample: { seq: 1, timestampMs: Date.now(), cpuUtilization: 0.5, memUtilization: 0.5, windowMs: 200 } })], false);
  const lurker = session(t, p.port);
  const first = report(lurker, [prefix(1000)], false); // an unfinished message: the stream stays open
  // A second stream before a Hello closes the lurker's connection: a refused
  // stream would go on holding what was sent on it.
  const second = await report(lurker, [frame(HELLO)], false);
  t.is(second.code, null, second.message);
  t.true((await p.refused('streams-per-connection')) >= 1);
  await closed(lurker);
  t.is((await first).code, null, 'the lurker stream was cut with its connection');
  // A silent connection is closed by the Hello timeout; the agent, past it, is not.
  const silent = session(t, p.port);
  void report(silent, [prefix(1000)], false);
  await closed(silent);
  t.false(agent.closed || agent.destroyed);
  t.regex((await p.get('/metrics')).body, /^loadfeed_agent_connections_pending 0$/m);
  // Both closings were counted under their limit only, though each cut a
  // stream inside a message: a stream truncated by its client, refused
  // after both, is the one `truncated`.
  const cut = await report(session(t, p.port), [prefix(1000)], true);
  t.is(cut.code, grpc.status.INVALID_ARGUMENT, cut.message);
  t.is(await p.refused('truncated'), 1);
  t.true((await p.refused('hello-timeout')) >= 1);
});

test.serial('an oversize message is refused with RESOURCE_EXHAUSTED and counted; a truncated one is refused, not ended with OK', async (t) => {
  const p = await startPoller(t, ['--max-message-bytes', '4096']);
  const big = await report(session(t, p.port), [prefix(100 * 1024 * 1024), Buffer.alloc(1024)], false);
  t.is(big.code, grpc.status.RESOURCE_EXHAUSTED, big.message);
  await waitFor('oversize counted', () => p.logs().some((l) => l['kind'] === 'oversize'));
  t.is(await p.refused('oversize'), 1);

  // The length prefix promises 1000 bytes, 10 come, then the client half-closes.
  const cut = await report(session(t, p.port), [prefix(1000), Buffer.alloc(10)], true);
  t.is(cut.code, grpc.status.INVALID_ARGUMENT, cut.message);
  t.regex(cut.message, /truncated: .*10 of the 1000 bytes/);
  // Even inside the 5-byte prefix.
  const stub = await report(session(t, p.port), [Buffer.alloc(3)], true);
  t.is(stub.code, grpc.status.INVALID_ARGUMENT, stub.message);
  t.is(await p.refused('truncated'), 2);
});

test.serial('Hello fields beyond their bounds are refused and counted; refusals are logged at a bounded rate', async (t) => {
  const p = await startPoller(t);
  const s = session(t, p.port);
  const hostname = await report(s, [frame({ hello: { ...HELLO.hello, hostname: 'h'.repeat(1000) } })], false);
  t.is(hostname.code, grpc.status.INVALID_ARGUMENT);
  t.regex(hostname.message, /^hello\.hostname: "h{60}"… \(1000 characters\) is longer than 253 characters$/);
  const labels = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`l${i}`, 'v']));
  const many = await report(session(t, p.port), [frame({ hello: { ...HELLO.hello, labels } })], false);
  t.regex(many.message, /^hello\.labels: 200 labels, at most 32$/);
  const addresses = await report(session(t, p.port), [frame({ hello: { ...HELLO.hello, addresses: ['not-an-ip'] } })], false);
  t.regex(addresses.message, /^hello\.addresses: "not-an-ip" is not an IP address$/);

  // Fifty more refusals of one kind: counted exactly, logged LOG_BURST times in the window.
  const flood = session(t, p.port);
  const started = performance.now();
  for (let i = 0; i < 50; i += 1) await report(flood, [frame({ hello: { ...HELLO.hello, cpuModel: 'c'.repeat(200) } })], false);
  const windows = Math.ceil((performance.now() - started) / LOG_WINDOW_MS);
  t.is(await p.refused('hello.cpu_model'), 50);
  const logged = p.logs().filter((l) => l['kind'] === 'hello.cpu_model' && l['suppressed'] === undefined).length;
  t.true(logged >= LOG_BURST && logged <= LOG_BURST * windows, `${logged} lines logged in ${windows} windows of ${LOG_WINDOW_MS} ms`);
});

test.serial('a Hello claiming an agentless ORCA node id (orca:…) is refused and counted; the ORCA backend keeps its node', async (t) => {
  const orca = spawn(process.execPath, [ORCA_SERVER, '0.5', '100'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    orca.kill('SIGKILL');
  });
  const [line] = (await once(orca.stdout, 'data')) as [Buffer];
  const node = `orca:127.0.0.1:${Number(line.toString().trim())}`;
  const p = await startPoller(t, [], `${POLICY}      - { orca: "${node.slice('orca:'.length)}", address: "127.0.0.1:9001" }\n`);
  const status = async (): Promise<{ nodes: { id: string; agentVersion: string }[] }> => JSON.parse((await p.get('/status')).body) as never;
  await waitFor('the ORCA backend to connect', () => p.logs().some((l) => l['msg'] === 'orca backend connected' && l['node'] === node));

  for (const nodeId of [node, 'ORCA:web-1']) {
    const impostor = await report(session(t, p.port), [frame({ hello: { ...HELLO.hello, nodeId } })], false);
    t.is(impostor.code, grpc.status.INVALID_ARGUMENT, impostor.message);
    t.is(impostor.message, `hello.node_id: "${nodeId}" starts with "orca:", the node ids of the poller's own agentless ORCA backends; an agent must use another id`);
  }
  t.is(await p.refused('hello.node_id.reserved'), 2);
  const nodes = (await status()).nodes;
  t.deepEqual(nodes.filter((n) => n.id.toLowerCase().startsWith('orca:')).map((n) => [n.id, n.agentVersion]), [[node, 'orca']], 'the backend\'s node is still the poller\'s own');
});

test.serial('policy files the running poller could not live with are refused at reload, with a bounded excerpt in /healthz', async (t) => {
  const p = await startPoller(t);
  const reloads = (): number => p.logs().filter((l) => l['msg'] === 'policy refused; the last good policy stays in force' || l['msg'] === 'policy reloaded').length;
  const refusedWith = async (text: string): Promise<string> => {
    const before = reloads();
    writeFileSync(p.policyFile, text);
    await waitFor('the reload', () => reloads() > before);
    const health = await p.get('/healthz');
    t.is(health.status, 503, health.body);
    return health.body;
  };
  const terms = Array.from({ length: 20_000 }, () => 'cpu').join(' + ');
  const expression = await refusedWith(`${POLICY}    strategy: { name: expression, score: "${terms}" }\n`);
  t.regex(expression, /services\[0\]\.strategy\.score: .*119997 characters, at most 2000/);
  t.true(expression.length < 1000, `${expression.length} characters`);
  const guard = await refusedWith(`${POLICY}    guards: [{ when: "${terms}", weight: 0 }]\n`);
  t.regex(guard, /services\[0\]\.guards\[0\]\.when/);

  const timer = await refusedWith(POLICY.replace('agents:', 'reconcile: { every: 1000h }\nagents:'));
  t.regex(timer, /reconcile\.every: "1000h" must be at most 24h/);
  const huge = await refusedWith(POLICY.replace('agents:', 'reconcile: { every: 1e308 }\nagents:'));
  t.regex(huge, /reconcile\.every: 1e\+308 must be at most 24h/);
  const stale = await refusedWith(POLICY.replace('agents: { interval: 200ms }', 'agents: { interval: 200ms }\nliveness: { staleAfter: 0 }'));
  t.regex(stale, /liveness\.staleAfter: 0 must be at least 1\.5 × agents\.interval \(300ms\)/);

  // 20 MB: refused unread; /healthz, /status and the log line stay small.
  const twenty = await refusedWith(`${POLICY}# ${'x'.repeat(20 * 1024 * 1024)}\n`);
  t.regex(twenty, /bytes or more, at most 4194304/);
  t.true(twenty.length < 1000);
  t.true((await p.get('/status')).body.length < 100_000);
  const line = JSON.stringify(p.logs().at(-1));
  t.true(line.length < (MAX_PROBLEM_CHARS + 200) * (MAX_POLICY_PROBLEMS + 1), `log line of ${line.length} characters`);

  // A good file again: ok.
  writeFileSync(p.policyFile, POLICY.replace('200ms', '300ms'));
  await waitFor('the good reload', () => p.logs().at(-1)?.['msg'] === 'policy reloaded');
  t.is((await p.get('/healthz')).status, 200);
});

/** A process spinning on a core until `ms` have passed (or teardown kills it). */
function burner(t: ExecutionContext, ms: number): void {
  const child = spawn(process.execPath, ['-e', `const end = Date.now() + ${ms}; while (Date.now() < end);`], { stdio: 'ignore' });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
}

test.serial('reloading a policy of the largest size on a loaded machine: live servers stay live at their weight', async (t) => {
  // Agents sample every 200 ms and are stale after 1 s of silence: compiling
  // this policy on the event loop held it 0.4–1 s on an idle core and
  // several seconds on a loaded one, so reloads quiesced live servers.
  const servers = Array.from({ length: MAX_POLICY_SERVERS }, (_, i) => `      - { node: n${i}, address: "10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:80" }`).join('\n');
  const policy = (mark: number): string => `apiVersion: loadfeed/v1
agents: { interval: 200ms }
liveness: { staleAfter: 1s }
services:
  - name: web
    engine: memory
    address: tcp 127.0.0.1:18000
    strategy: { name: expression, score: "1" }
    slowStart: null
    servers:
${servers}
# reload ${mark}
`;
  const p = await startPoller(t, [], policy(0));
  const live = ['n0', 'n1', 'n2'];
  for (const node of live) {
    const agent = spawn(process.execPath, [AGENT, '--poller', `127.0.0.1:${p.port}`, '--node-id', node], { stdio: 'ignore' });
    t.teardown(() => {
      agent.kill('SIGKILL');
    });
  }
  const weights = (node: string): number[] => p.logs().filter((l) => l['msg'] === 'weight changed' && l['node'] === node).map((l) => Number(l['to']));
  await waitFor('the live servers at the full weight', () => live.every((n) => weights(n).at(-1) === 100));
  const logsBefore = p.logs().length;

  for (let i = 0; i < 3; i += 1) burner(t, 120_000);
  const reloaded = (): number => p.logs().filter((l) => l['msg'] === 'policy reloaded').length;
  for (let mark = 1; mark <= 3; mark += 1) {
    writeFileSync(p.policyFile, policy(mark));
    await waitFor(`reload ${mark}`, () => reloaded() >= mark);
  }
  // Every reload ran a full cycle over the 10,000 servers; /status answers from the same event loop.
  const status = JSON.parse((await p.get('/status')).body) as { nodes: { id: string; state: string }[] };
  const during = p.logs().slice(logsBefore);
  t.deepEqual(
    during.filter((l) => l['msg'] === 'node state changed'),
    [],
    'no live node turned stale or went away',
  );
  t.deepEqual(
    during.filter((l) => l['msg'] === 'weight changed' && live.includes(String(l['node']))),
    [],
    'no live server lost weight',
  );
  t.deepEqual(
    live.map((n) => status.nodes.find((s) => s.id === n)?.state),
    ['live', 'live', 'live'],
  );
});
