// Every bench in quick mode (LOADFEED_BENCH_QUICK=1), end to end on this
// machine: real cgroups, namespaces, nginx, HAProxy, wrk, node_exporter. The
// figures are not judged here (the machine is shared); what is checked is
// that each bench ran and reported every figure it promises. Without the
// prerequisites these tests are skipped, or fail under LOADFEED_REQUIRE_ENGINES=1.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { binary, realEngineGate, ROOT, type Prerequisite } from '../helpers/real-engine.js';
import { listDir, pidAlive } from '../helpers/process.js';
import { cgroupUnavailable } from './lib/cgroup.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Longest a quick bench may take here (they take 15-90 s on an idle 2-vCPU machine). */
const BENCH_TIMEOUT_MS = 6 * 60_000;

const CGROUP_CPU: Prerequisite = {
  what: 'a cgroup CPU controller this process can use',
  howTo: 'run as root on a host with the cgroup v1 cpu+cpuacct controllers or cgroup v2 with cpu',
  probe: () => cgroupUnavailable(),
};

const gate = realEngineGate('bench', [
  ROOT,
  CGROUP_CPU,
  binary('nsenter', 'util-linux'),
  binary('ip', 'iproute2'),
  binary('wrk', 'wrk'),
  binary('nginx', 'nginx-light'),
  binary('haproxy', 'haproxy'),
  binary('prometheus-node-exporter', 'prometheus-node-exporter'),
]);

const outDir = mkdtempSync(path.join(tmpdir(), 'loadfeed-bench-test-'));

/** Run one bench in quick mode; resolves with its stdout, rejects with its stderr on failure. */
function runQuick(t: ExecutionContext, bench: string): Promise<string> {
  t.timeout(BENCH_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, `${bench}.js`), '--out-dir', outDir], {
      env: { ...process.env, LOADFEED_BENCH_QUICK: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // A bench that outlives its test (a timeout) would keep ava's worker, and the whole run, waiting.
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-8000)));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`bench:${bench} exited ${code}:\n${err}`))));
  });
}

const json = (name: string): Record<string, unknown> => JSON.parse(readFileSync(path.join(outDir, name), 'utf8')) as Record<string, unknown>;
const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x);

gate.serial('bench:fastpath quick: req/s of the three proxies in both modes, and the ratios', async (t) => {
  const out = await runQuick(t, 'fastpath');
  t.regex(out, /fast path \/ HAProxy: keep-alive [\d.]+ .*new connections [\d.]+/);
  t.regex(out, /naive pipe \/ HAProxy \(reference\): keep-alive [\d.]+, new connections [\d.]+/);
  const r = json('fastpath-quick.json') as { ratios: { keepAlive: number; newConnections: number; naive: { keepAlive: number; newConnections: number } }; results: Record<string, { rps: number }[]> };
  for (const x of [r.ratios.keepAlive, r.ratios.newConnections, r.ratios.naive.keepAlive, r.ratios.naive.newConnections]) t.true(finite(x) && x > 0, JSON.stringify(r.ratios));
  t.deepEqual(Object.keys(r.results).sort(), ['keep-alive/fastpath', 'keep-alive/haproxy', 'keep-alive/naive pipe', 'new connections/fastpath', 'new connections/haproxy', 'new connections/naive pipe']);
});

gate.serial('bench:agent-cost quick: agent and node_exporter CPU and RSS at both rates', async (t) => {
  const out = await runQuick(t, 'agent-cost');
  t.regex(out, /agent\/node_exporter cpu/);
  const r = json('agent-cost-quick.json') as {
    rows: { connections: number; hz: number; agentCpuPct: number; floorCpuPct: number; agentRssMb: number; exporterCpuPct: number; samples: number; scrapes: number }[];
  };
  t.deepEqual(r.rows.map((x) => `${x.connections}@${x.hz}`), ['0@1', '0@10', '2000@1', '2000@10']);
  for (const x of r.rows) {
    t.true(finite(x.agentCpuPct) && finite(x.floorCpuPct) && finite(x.exporterCpuPct) && x.agentRssMb > 10, JSON.stringify(x));
    t.true(x.samples > 0 && x.scrapes > 0, `the agent streamed and node_exporter was scraped: ${JSON.stringify(x)}`);
  }
});

gate.serial('bench:poller-scale quick: every server of the comparison fed by every simulated agent, latency and CPU reported', async (t) => {
  const out = await runQuick(t, 'poller-scale');
  t.regex(out, /largest N with the full poller sustained and p99 < 50 ms: \d+/);
  const r = json('poller-scale-quick.json') as { summary: { agents: number; mode: string; live: number; allLiveS: number; cpuPct: number; cpuOverGrpc: number; p99Ms: number; loopDelayP99Ms: number; gcPct: number; gcMajorPct: number; gcMaxMs: number; acceptedPerSecond: number }[] };
  t.deepEqual(r.summary.map((s) => s.mode), ['grpc', 'http2', 'transport', 'full']);
  for (const s of r.summary) {
    t.is(s.agents, 200);
    t.is(s.live, 200, s.mode);
    t.true([s.cpuPct, s.cpuOverGrpc, s.p99Ms, s.loopDelayP99Ms, s.gcPct, s.gcMajorPct, s.gcMaxMs].every(finite) && s.acceptedPerSecond > 100 && s.allLiveS > 0, JSON.stringify(s));
    t.true(s.gcMajorPct <= s.gcPct, `major collections are a part of all: ${JSON.stringify(s)}`);
  }
  const runs = (json('poller-scale-quick.json') as { runs: { mode: string; p99Ms: number; ingestP99Ms: number; cycleWaitP99Ms: number; cycleWaitMaxMs: number }[] }).runs;
  for (const run of runs.filter((x) => x.mode === 'full')) {
    t.true([run.ingestP99Ms, run.cycleWaitP99Ms, run.cycleWaitMaxMs].every(finite), JSON.stringify(run));
    t.true(run.ingestP99Ms <= run.p99Ms && run.cycleWaitP99Ms <= run.cycleWaitMaxMs, `the parts of a sample's latency: ${JSON.stringify(run)}`);
  }
});

gate.serial('bench:xds quick: every client got every weight change, from the engine and the floor, with CPU and latency', async (t) => {
  const out = await runQuick(t, 'xds');
  t.regex(out, /xds \/ floor: cpu [\d.]+×, decision → last client p50 [\d.]+×/);
  const r = json('xds-quick.json') as Record<'xds' | 'bare', { cpuPct: number; p50Ms: number; incomplete: number }>;
  for (const mode of ['xds', 'bare'] as const) {
    t.is(r[mode].incomplete, 0, `${mode}: a tick some client never received`);
    t.true(finite(r[mode].cpuPct) && finite(r[mode].p50Ms) && r[mode].p50Ms > 0, JSON.stringify(r[mode]));
  }
});

gate.serial('bench:ingest-bounds quick: RSS and heap of an attacked poller against a bare one for every attack, refusals counted', async (t) => {
  const out = await runQuick(t, 'ingest-bounds');
  t.regex(out, /RSS attacked − bare MB/);
  const r = json('ingest-bounds-quick.json') as { rows: { scenario: string; bareMb: number; deltaMb: number; heapDeltaMb: number; refused: Record<string, number> }[] };
  t.deepEqual(r.rows.map((x) => x.scenario), ['idle sessions', 'unfinished messages', 'extra streams', 'oversize', 'largest hellos', 'departed']);
  for (const x of r.rows) t.true(x.bareMb > 10 && finite(x.deltaMb) && finite(x.heapDeltaMb), JSON.stringify(x));
  const refused = (scenario: string, reason: string): number => r.rows.find((x) => x.scenario === scenario)?.refused[reason] ?? 0;
  t.true(refused('extra streams', 'streams-per-connection') > 0 && refused('oversize', 'oversize') > 0, JSON.stringify(r.rows));
  t.regex(out, /one decoded largest Hello .* KiB of heap/);
  const { hello } = json('ingest-bounds-quick.json') as { hello: { wireBytes: number; estimatedBytes: number; heapBytes: number } };
  t.true(hello.wireBytes > 10_000 && hello.estimatedBytes > 0 && hello.heapBytes > 0, JSON.stringify(hello));
});

gate.serial('bench:reaction quick: times for the load step and the three ways of losing a server', async (t) => {
  const out = await runQuick(t, 'reaction');
  t.regex(out, /agent SIGKILL → quiesced/);
  t.regex(out, /steady state over \d+ s: weight wobble [\d.]+ %/);
  const r = json('reaction-quick.json') as { steady: { wobble: number; changesPerMinute: number; weights: number[] }; kinds: { name: string; times: number[]; misses: number }[] };
  t.true(finite(r.steady.wobble) && r.steady.wobble >= 0 && r.steady.weights.length === 3 && r.steady.weights.every((w) => w > 0), JSON.stringify(r.steady));
  t.is(r.kinds.length, 4);
  // Losing a server must be noticed every time, even on a busy machine.
  for (const k of r.kinds.slice(1)) t.true(k.times.length === 2 && k.misses === 0 && k.times.every((x) => x >= 0 && x < 15), JSON.stringify(k));
});

gate.serial('bench:balance quick: latency, errors, CPU spread and shares per policy and scenario', async (t) => {
  const out = await runQuick(t, 'balance');
  t.regex(out, /targets \(loadfeed default\):/);
  t.regex(out, /\(g\) p99 loadfeed \/ HAProxy leastconn: all [\d.]+, b1 sick [\d.]+, b2 sick [\d.]+, b3 sick [\d.]+/);
  type Fig = { requests: number; p50: number; p99: number; p999: number; maxAvgCpu: number; p95AvgCpu: number; shares: number[]; errors: number };
  const r = json('balance-quick.json') as { scenarios: Record<string, { policies: Record<string, Fig & { phases: Record<string, Fig>; weightTrace: number[][] }> }> };
  t.deepEqual(Object.keys(r.scenarios).sort(), ['a', 'g']);
  for (const [key, sc] of Object.entries(r.scenarios)) {
    t.deepEqual(Object.keys(sc.policies).sort(), ['haproxy-leastconn', 'haproxy-loadfeed', 'loadfeed'], key);
    for (const [p, f] of Object.entries(sc.policies)) {
      t.true(f.requests > 50, `${key}/${p} requests`);
      t.true([f.p50, f.p99, f.p999, f.maxAvgCpu, f.p95AvgCpu].every(finite), `${key}/${p}: ${JSON.stringify(f)}`);
      t.is(f.shares.length, 3);
      // Weights were read from the engine (HAProxy's through its runtime API) all along.
      t.true(f.weightTrace.length > 10 && f.weightTrace.every((w) => w.length === 4), `${key}/${p} weight trace`);
    }
  }
  // The moving scenario's phases: each backend sick in turn, each with requests of its own.
  for (const [p, f] of Object.entries(r.scenarios['g']?.policies ?? {})) {
    t.deepEqual(Object.keys(f.phases), ['b1 sick', 'b2 sick', 'b3 sick'], p);
    for (const [ph, g] of Object.entries(f.phases)) t.true(g.requests > 10 && finite(g.p99), `${p}/${ph}: ${JSON.stringify(g)}`);
  }
});

gate.serial('no bench left a cgroup or a network namespace behind (named after a process that is gone)', (t) => {
  const leftovers = [
    ...listDir('/run/netns').filter((n) => /^lfb\d+-\d+$/.test(n)).map((n) => ({ n, pid: Number(/^lfb(\d+)-/.exec(n)?.[1]) })),
    ...['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup', '/sys/fs/cgroup/unified']
      .flatMap((d) => listDir(d).filter((n) => /^loadfeed-bench-\d+$/.test(n)).map((n) => ({ n: `${d}/${n}`, pid: Number(/(\d+)$/.exec(n)?.[1]) }))),
  ].filter((x) => !pidAlive(x.pid));
  t.deepEqual(leftovers.map((x) => x.n), []);
  rmSync(outDir, { recursive: true, force: true });
});
