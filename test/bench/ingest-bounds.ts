/**
 * bench:ingest-bounds — the memory the poller holds for what peers can send
 * before and at authentication, under its default bounds (docs/RELIABILITY.md):
 * idle HTTP/2 sessions, streams holding an unfinished message, extra streams,
 * messages announcing more than the limit, agents with Hellos at every field's
 * bound, and the departed state of agents that said Hello and left. Each run
 * starts two real poller processes (the loadfeed-poller executable) on
 * loopback: one is attacked, the other is left bare, and both RSS are read at
 * the same moment after a settling time; the figure is the difference (median
 * of the runs). Connections come from several loopback source addresses, as
 * from several hosts, so the total bound is reached, not only the per-peer one.
 *
 * It must never leave a process behind.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AgentMessage, Hello, TELEMETRY_REPORT_PATH } from '@loadfeed/proto';
import { DEFAULT_LIMITS, DEPARTED_MAX_BYTES, helloBytes, MAX_ADDRESSES, MAX_AGENT_VERSION_CHARS, MAX_CPU_MODEL_CHARS, MAX_HOSTNAME_CHARS, MAX_LABEL_NAME_CHARS, MAX_LABEL_VALUE_CHARS, MAX_LABELS, MAX_SERVICE_NAME_CHARS, MAX_SERVICES_PER_AGENT } from '@loadfeed/poller';
import { binPath } from '../helpers/launcher.js';
import { Children, LineReader, sleep, withCleanup, type Started } from './lib/children.js';
import { benchLog, fmt, loadAverage1, machineLine, median, processRssBytes, QUICK, table, waitForQuietMachine } from './lib/measure.js';

const POLLER = binPath('@loadfeed/poller', 'loadfeed-poller');
const POLICY = `apiVersion: loadfeed/v1
services:
  - name: web
    engine: memory
    address: tcp 127.0.0.1:18000
    servers:
      - { node: n1, address: "127.0.0.1:9000" }
`;
/** Source addresses the connections come from (127.0.0.2 …), so the total bound is reached before the per-peer one. */
const PEERS = 20;
/** Connections opened at once. */
const CONCURRENCY = 100;
const MB = 1024 * 1024;

interface Poller {
  readonly started: Started;
  readonly port: number;
  readonly statusUrl: string;
}

async function startPoller(children: Children, name: string, dir: string): Promise<Poller> {
  const started = children.node(name, POLLER, ['--policy', path.join(dir, 'policy.yaml'), '--listen', '127.0.0.1:0', '--status', '127.0.0.1:0', '--log-format', 'json']);
  const lines = new LineReader(started);
  for (;;) {
    const record = JSON.parse(await lines.next(60_000)) as Record<string, unknown>;
    if (record['msg'] === 'poller started') return { started, port: Number(record['port']), statusUrl: String(record['status']) };
  }
}

/** From /metrics: refusals by reason, and the V8 heap in use (MB). */
async function metrics(p: Poller): Promise<{ refused: Record<string, number>; heapMb: number }> {
  const text = await (await fetch(new URL('metrics', p.statusUrl))).text();
  const refused: Record<string, number> = {};
  for (const m of text.matchAll(/^loadfeed_samples_rejected_total\{reason="([^"]+)"\} (\d+)$/gm)) refused[m[1] ?? ''] = Number(m[2]);
  return { refused, heapMb: Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1]) / MB };
}

/** An HTTP/2 session to `port` from source address 127.0.0.(2 + i % PEERS); resolves once connected or closed. */
function session(port: number, i: number): Promise<http2.ClientHttp2Session> {
  const s = http2.connect(`http://127.0.0.1:${port}`, {
    createConnection: () => net.connect({ host: '127.0.0.1', port, localAddress: `127.0.0.${2 + (i % PEERS)}` }),
  });
  s.on('error', () => undefined);
  return new Promise((resolve) => {
    s.once('remoteSettings', () => resolve(s));
    s.once('close', () => resolve(s));
  });
}

function stream(s: http2.ClientHttp2Session): http2.ClientHttp2Stream {
  const st = s.request({ ':method': 'POST', ':path': TELEMETRY_REPORT_PATH, 'content-type': 'application/grpc', te: 'trailers' });
  st.on('error', () => undefined);
  st.resume();
  return st;
}

function prefix(length: number): Buffer {
  const out = Buffer.alloc(5);
  out.writeUInt32BE(length, 1);
  return out;
}

function frame(message: Parameters<typeof AgentMessage.encode>[0]): Buffer {
  const body = AgentMessage.encode(message).finish();
  return Buffer.concat([prefix(body.length), body]);
}

/** A Hello with every field at its bound (~13 KB on the wire). */
function largestHello(nodeId: string): Hello {
  const pad = (s: string, n: number): string => s + 'x'.repeat(n - s.length);
  return Hello.create({
    nodeId,
    hostname: pad(nodeId, MAX_HOSTNAME_CHARS),
    cpuModel: 'c'.repeat(MAX_CPU_MODEL_CHARS),
    agentVersion: 'v'.repeat(MAX_AGENT_VERSION_CHARS),
    cores: 64,
    memoryBytes: 2 ** 40,
    addresses: Array.from({ length: MAX_ADDRESSES }, (_, i) => `2001:db8:ffff:ffff:ffff:ffff:ffff:${i.toString(16)}`),
    labels: Object.fromEntries(Array.from({ length: MAX_LABELS }, (_, i) => [pad(`label-${i}-`, MAX_LABEL_NAME_CHARS), 'v'.repeat(MAX_LABEL_VALUE_CHARS)])),
    services: Array.from({ length: MAX_SERVICES_PER_AGENT }, (_, i) => ({ name: pad(`svc-${i}-`, MAX_SERVICE_NAME_CHARS), port: 1000 + i })),
  });
}

/** Run `f` for 0 … n-1, at most CONCURRENCY at a time. */
async function each(n: number, f: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, n) }, async () => {
      while (next < n) await f(next++);
    }),
  );
}

/** Sessions kept open by an attack; closed when the run ends. */
type Held = http2.ClientHttp2Session[];

interface Scenario {
  readonly name: string;
  readonly what: string;
  attack(port: number, held: Held): Promise<void>;
}

function scenarios(connections: number, agents: number, departed: number): Scenario[] {
  const max = DEFAULT_LIMITS.maxMessageBytes;
  const pending = (name: string, what: string, streams: number, announce: number, send: number): Scenario => ({
    name,
    what,
    attack: (port, held) =>
      each(connections, async (i) => {
        const s = await session(port, i);
        held.push(s);
        if (s.closed || s.destroyed) return;
        for (let j = 0; j < streams; j += 1) stream(s).write(Buffer.concat([prefix(announce), Buffer.alloc(send)]));
      }),
  });
  const hello = (port: number, i: number, held: Held | null): Promise<void> =>
    session(port, i).then(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.closed || s.destroyed) return resolve();
          const st = stream(s);
          // The poller answers an accepted Hello with its Config.
          st.once('data', () => {
            if (held) held.push(s);
            else s.destroy();
            resolve();
          });
          st.once('close', () => {
            s.destroy();
            resolve();
          });
          st.write(frame({ hello: largestHello(`bench-${held ? 'live' : 'gone'}-${i}`) }));
        }),
    );
  return [
    { name: 'idle sessions', what: `${connections} HTTP/2 sessions without a stream`, attack: (port, held) => each(connections, async (i) => void held.push(await session(port, i))) },
    pending('unfinished messages', `${connections} sessions, each a stream holding ${max - 1} of the ${max} bytes its prefix announced`, 1, max, max - 1),
    pending('extra streams', `${connections} sessions, each 8 streams holding an unfinished message`, 8, max, max - 1),
    pending('oversize', `${connections} sessions, each a stream announcing 100 MB and sending 16 KB`, 1, 100 * MB, 16 * 1024),
    { name: 'largest hellos', what: `${agents} agents, each with a Hello at every field's bound`, attack: (port, held) => each(agents, (i) => hello(port, i, held)) },
    { name: 'departed', what: `${departed} agents with the largest Hello that connect and leave (departed state: at most ${DEPARTED_MAX_BYTES / MB} MiB as estimated)`, attack: (port) => each(departed, (i) => hello(port, i, null)) },
  ];
}

/**
 * What one decoded largest Hello holds in the heap (what a node record or
 * the departed state keeps), against its size on the wire and the estimate
 * the departed state's byte bound counts. Runs in a child with --expose-gc.
 */
interface HelloHeap {
  readonly wireBytes: number;
  readonly estimatedBytes: number;
  readonly heapBytes: number;
}

const HELLO_HEAP_FLAG = '--hello-heap';
const HELLO_HEAP_COUNT = 1000;

function measureHelloHeapHere(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('needs --expose-gc');
  const wire = Array.from({ length: HELLO_HEAP_COUNT }, (_, i) => AgentMessage.encode({ hello: largestHello(`bench-${i}`) }).finish());
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = wire.map((b) => AgentMessage.decode(b).hello as Hello);
  gc();
  const heapBytes = (process.memoryUsage().heapUsed - before) / kept.length;
  const first = kept[0];
  const result: HelloHeap = { wireBytes: wire[0]?.length ?? 0, estimatedBytes: first ? helloBytes(first) : 0, heapBytes };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function helloHeap(): HelloHeap {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), HELLO_HEAP_FLAG], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`hello heap: ${r.stderr}`);
  return JSON.parse(r.stdout) as HelloHeap;
}

interface Run {
  readonly scenario: string;
  readonly bareMb: number;
  readonly attackedMb: number;
  readonly bareHeapMb: number;
  readonly attackedHeapMb: number;
  readonly refused: Record<string, number>;
}

async function run(children: Children, scenario: Scenario, dir: string, settleMs: number, log: (s: string) => void): Promise<Run> {
  const [bare, attacked] = await Promise.all([startPoller(children, 'bare poller', dir), startPoller(children, 'attacked poller', dir)]);
  const held: Held = [];
  try {
    await scenario.attack(attacked.port, held);
    await sleep(settleMs);
    const rss = (p: Poller): number => (processRssBytes(p.started.child.pid ?? 0) ?? Number.NaN) / MB;
    const [b, a] = [rss(bare), rss(attacked)];
    const [bm, am] = await Promise.all([metrics(bare), metrics(attacked)]);
    const result: Run = { scenario: scenario.name, bareMb: b, attackedMb: a, bareHeapMb: bm.heapMb, attackedHeapMb: am.heapMb, refused: am.refused };
    log(`${scenario.name}: RSS bare ${fmt(b)} MB, attacked ${fmt(a)} MB; heap bare ${fmt(bm.heapMb)} MB, attacked ${fmt(am.heapMb)} MB; refused ${JSON.stringify(am.refused)}`);
    return result;
  } finally {
    for (const s of held) s.destroy();
    await Promise.all([children.stop(bare.started), children.stop(attacked.started)]);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: QUICK ? '200' : '1200' },
      agents: { type: 'string', default: QUICK ? '100' : '1000' },
      departed: { type: 'string', default: QUICK ? '300' : '3000' },
      'settle-s': { type: 'string', default: QUICK ? '1' : '5' },
      runs: { type: 'string', default: QUICK ? '1' : '3' },
      'out-dir': { type: 'string', default: QUICK ? path.join(tmpdir(), `loadfeed-bench-${process.pid}`) : 'docs/bench' },
      'max-load': { type: 'string', default: QUICK ? '100' : '1.5' },
    },
  });
  const outDir = values['out-dir'];
  mkdirSync(outDir, { recursive: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'loadfeed-ingest-bounds-'));
  writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
  const log = benchLog('ingest-bounds');
  const children = new Children();
  const all = scenarios(Number(values.connections), Number(values.agents), Number(values.departed));
  const runs: Run[] = [];
  const started = new Date();
  let loadBefore = 0;
  await withCleanup(
    () => children.close(),
    async () => {
      loadBefore = await waitForQuietMachine(Number(values['max-load']), 20 * 60_000, log);
      for (let r = 0; r < Number(values.runs); r++) {
        for (const s of all) runs.push(await run(children, s, dir, Number(values['settle-s']) * 1000, log));
      }
    },
  );
  const hello = helloHeap();
  const loadAfter = loadAverage1();
  const rows = all.map((s) => {
    const of = runs.filter((r) => r.scenario === s.name);
    const refused = of.at(-1)?.refused ?? {};
    return {
      scenario: s.name,
      what: s.what,
      bareMb: median(of.map((r) => r.bareMb)),
      deltaMb: median(of.map((r) => r.attackedMb - r.bareMb)),
      heapDeltaMb: median(of.map((r) => r.attackedHeapMb - r.bareHeapMb)),
      refused,
    };
  });
  const text = [
    `bench:ingest-bounds ${started.toISOString()} on ${machineLine()}`,
    `default bounds; connections from ${PEERS} loopback addresses; RSS and V8 heap in use ${values['settle-s']} s after the attack (connections still open), attacked poller minus a bare one started with it; median of ${values.runs} runs; load average ${loadBefore} before, ${loadAfter} after`,
    '',
    table(
      ['attack', 'bare poller RSS MB', 'RSS attacked − bare MB', 'V8 heap attacked − bare MB', 'refused (last run, by reason)'],
      rows.map((r) => [r.scenario, fmt(r.bareMb), fmt(r.deltaMb), fmt(r.heapDeltaMb), Object.entries(r.refused).map(([k, v]) => `${k} ${v}`).join(', ') || '-']),
    ),
    '',
    ...rows.map((r) => `${r.scenario}: ${r.what}`),
    '',
    `one decoded largest Hello (${HELLO_HEAP_COUNT} kept, after gc): ${fmt(hello.heapBytes / 1024)} KiB of heap; ${fmt(hello.wireBytes / 1024)} KiB on the wire; the departed state's estimate ${fmt(hello.estimatedBytes / 1024)} KiB (heap / estimate ${fmt(hello.heapBytes / hello.estimatedBytes, 2)}×)`,
  ].join('\n');
  process.stdout.write(`${text}\n`);
  const stamp = QUICK ? 'quick' : started.toISOString().slice(0, 10);
  writeFileSync(path.join(outDir, `ingest-bounds-${stamp}.json`), JSON.stringify({ bench: 'ingest-bounds', date: started.toISOString(), machine: machineLine(), loadAverage: { before: loadBefore, after: loadAfter }, values, runs, rows, hello }, null, 1));
  writeFileSync(path.join(outDir, `ingest-bounds-${stamp}.txt`), `${text}\n`);
}

if (process.argv.includes(HELLO_HEAP_FLAG)) measureHelloHeapHere();
else main().catch((err: unknown) => {
  process.stderr.write(`bench:ingest-bounds failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
