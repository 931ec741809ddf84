/**
 * bench:poller-scale — the poller's cost at N agents against the floor it
 * sits on, in the same run: for each N, four servers (see poller-host.ts)
 * take turns in ABBA order, several repetitions each — a bare grpc-js server
 * decoding and discarding, a bare node:http2 server doing the same, the real
 * poller with a policy naming no agent (transport and ingest only), and the
 * full poller. Each is fed by N simulated agents from separate processes,
 * every agent a real gRPC stream on its own TCP connection sending one sample
 * a second. Per run: the server's CPU (utime+stime from /proc), RSS, p50/p99
 * sample latency (full poller: sample → decision in the engine; the others:
 * sample → received), event-loop delay p99, garbage-collection pauses (share
 * of the window, of major collections, longest), and the simulated agents' CPU
 * (they share the cores). A run is "sustained" when every agent is live and
 * ≥ 98 % of the samples sent in the window were accepted. The server listens
 * on a port picked per run below the ephemeral range.
 *
 * It must never leave a process behind.
 */
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { binPath, launcherOptions } from '../helpers/launcher.js';
import { Children, firstLine, LineReader, sleep, withCleanup, type Started } from './lib/children.js';
import { benchLog, fmt, loadAverage1, machineLine, median, processCpuUs, processPeakRssBytes, processRssBytes, QUICK, table, waitForQuietMachine } from './lib/measure.js';
import { plotLines } from './lib/plot.js';
import { freePorts } from './lib/ports.js';
import { HOST_MODES, type HostMode, type HostReport } from './lib/scale.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HOST = path.join(HERE, 'poller-host.js');
/** The shipped poller's V8 options (its launcher line) apply to every server process, bare ones included. */
const POLLER_OPTIONS = launcherOptions(binPath('@loadfeed/poller', 'loadfeed-poller'));
const SIM = path.join(HERE, 'sim-agents.js');
const STREAMS_PER_PROCESS = 2_500;
/** After every agent is live, the connect burst settles for this long before the window. */
const SETTLE_MS = 5_000;

const MODE_NAMES: Record<HostMode, string> = {
  grpc: 'bare grpc-js',
  http2: 'bare node:http2',
  transport: 'poller, no agent in policy',
  full: 'full poller',
};

/** One server measured once. */
interface Run {
  readonly agents: number;
  readonly mode: HostMode;
  readonly rep: number;
  readonly live: number;
  /** From starting the simulated agents (at 250 connections/s per process) until every one was live, as after a poller restart. */
  readonly allLiveS: number;
  readonly acceptedPerSecond: number;
  readonly cpuPct: number;
  /** The simulated agents' processes together, % of one core. */
  readonly simCpuPct: number;
  readonly rssMb: number;
  readonly peakRssMb: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** See HostReport. */
  readonly ingestP99Ms: number;
  readonly cycleWaitP99Ms: number;
  readonly cycleWaitMaxMs: number;
  readonly maxMs: number;
  readonly cycles: number;
  readonly loopDelayP99Ms: number;
  /** Share of the window the server spent in garbage-collection pauses, %, in those of major collections, and its longest pause. */
  readonly gcPct: number;
  readonly gcMajorPct: number;
  readonly gcMaxMs: number;
  readonly sustained: boolean;
}

/** Medians over one mode's repetitions at one N. */
interface Summary {
  readonly agents: number;
  readonly mode: HostMode;
  readonly runs: number;
  readonly live: number;
  readonly allLiveS: number;
  readonly acceptedPerSecond: number;
  readonly cpuPct: number;
  readonly cpuMinPct: number;
  readonly cpuMaxPct: number;
  /** cpuPct over the bare grpc-js server's at the same N. */
  readonly cpuOverGrpc: number;
  readonly simCpuPct: number;
  readonly rssMb: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly cycles: number;
  readonly loopDelayP99Ms: number;
  readonly gcPct: number;
  readonly gcMajorPct: number;
  readonly gcMaxMs: number;
  /** Every repetition sustained. */
  readonly sustained: boolean;
}

const cpuOf = (pids: readonly number[]): number | null => {
  let sum = 0;
  for (const pid of pids) {
    const us = processCpuUs(pid);
    if (us === null) return null;
    sum += us;
  }
  return sum;
};

/** Start one server and N simulated agents, wait until all are live, measure one window, stop both. */
async function measure(children: Children, n: number, mode: HostMode, rep: number, windowS: number, nodeArgs: readonly string[], log: (s: string) => void): Promise<Run> {
  // Below the ephemeral range, which the simulated agents' connections fill; picked per run.
  const [listenPort = 0] = await freePorts(1);
  const host = children.spawn(`${mode} server`, process.execPath, [...POLLER_OPTIONS, ...nodeArgs, HOST, '--mode', mode, '--agents', String(n), '--listen', `127.0.0.1:${listenPort}`]);
  try {
    const reader = new LineReader(host);
    const readyLine = await reader.next(60_000);
    const port = /^ready (\d+)$/.exec(readyLine)?.[1];
    if (!port) throw new Error(`${mode} server: ${readyLine} ${host.stderr()}`);
    const connecting = performance.now();
    const sims: Started[] = [];
    try {
      for (let first = 0; first < n; first += STREAMS_PER_PROCESS) {
        sims.push(children.node(`sim ${first}`, SIM, ['--target', `127.0.0.1:${port}`, '--count', String(Math.min(STREAMS_PER_PROCESS, n - first)), '--first-id', String(first)]));
      }
      await Promise.all(sims.map((s) => firstLine(s, 120_000)));
      const report = async (): Promise<HostReport> => {
        host.child.stdin?.write('report\n');
        return JSON.parse(await reader.next()) as HostReport;
      };
      const deadline = performance.now() + 120_000;
      let live = (await report()).live;
      while (live < n && performance.now() < deadline) {
        await sleep(500);
        live = (await report()).live;
      }
      const allLiveS = live === n ? (performance.now() - connecting) / 1000 : Number.NaN;
      await sleep(SETTLE_MS);
      host.child.stdin?.write('mark\n');
      const pid = host.child.pid ?? 0;
      const simPids = sims.map((s) => s.child.pid ?? 0);
      const c0 = processCpuUs(pid);
      const s0 = cpuOf(simPids);
      const t0 = performance.now();
      await sleep(windowS * 1000);
      const c1 = processCpuUs(pid);
      const s1 = cpuOf(simPids);
      const dt = (performance.now() - t0) * 1000;
      const r = await report();
      const run: Run = {
        agents: n,
        mode,
        rep,
        live: r.live,
        allLiveS,
        acceptedPerSecond: r.accepted / (dt / 1e6),
        cpuPct: c0 === null || c1 === null ? Number.NaN : ((c1 - c0) / dt) * 100,
        simCpuPct: s0 === null || s1 === null ? Number.NaN : ((s1 - s0) / dt) * 100,
        rssMb: (processRssBytes(pid) ?? Number.NaN) / 2 ** 20,
        peakRssMb: (processPeakRssBytes(pid) ?? Number.NaN) / 2 ** 20,
        p50Ms: r.p50Ms,
        p99Ms: r.p99Ms,
        ingestP99Ms: r.ingestP99Ms,
        cycleWaitP99Ms: r.cycleWaitP99Ms,
        cycleWaitMaxMs: r.cycleWaitMaxMs,
        maxMs: r.maxMs,
        cycles: r.cycles,
        loopDelayP99Ms: r.loopDelayP99Ms,
        gcPct: (r.gcMs * 1000 * 100) / dt,
        gcMajorPct: (r.gcMajorMs * 1000 * 100) / dt,
        gcMaxMs: r.gcMaxMs,
        sustained: r.live === n && r.accepted >= 0.98 * n * (dt / 1e6),
      };
      log(`${n} agents, ${MODE_NAMES[mode]} #${rep + 1}: ${fmt(run.cpuPct)} % CPU (agents ${fmt(run.simCpuPct)} %), ${fmt(run.rssMb, 0)} MB, p50 ${fmt(run.p50Ms)} ms, p99 ${fmt(run.p99Ms)} ms (until accepted ${fmt(run.ingestP99Ms)} ms; accepted until a cycle p99 ${fmt(run.cycleWaitP99Ms)} ms, longest ${fmt(run.cycleWaitMaxMs)} ms), loop p99 ${fmt(run.loopDelayP99Ms)} ms, GC ${fmt(run.gcPct)} % (major ${fmt(run.gcMajorPct)} %, longest ${fmt(run.gcMaxMs)} ms), ${fmt(run.acceptedPerSecond, 0)} samples/s, ${run.cycles} cycles${Object.keys(r.rejected).length > 0 ? `, refused ${JSON.stringify(r.rejected)}` : ''}`);
      return run;
    } finally {
      await Promise.all(sims.map((s) => children.stop(s)));
    }
  } finally {
    host.child.stdin?.end();
    await Promise.race([once(host.child, 'exit'), sleep(10_000)]);
    await children.stop(host);
  }
}

function summarise(runs: readonly Run[]): Summary[] {
  const out: Summary[] = [];
  for (const n of [...new Set(runs.map((r) => r.agents))]) {
    const grpcCpu = median(runs.filter((r) => r.agents === n && r.mode === 'grpc').map((r) => r.cpuPct));
    for (const mode of HOST_MODES) {
      const rs = runs.filter((r) => r.agents === n && r.mode === mode);
      if (rs.length === 0) continue;
      const med = (f: (r: Run) => number): number => median(rs.map(f));
      const cpus = rs.map((r) => r.cpuPct).filter(Number.isFinite);
      out.push({
        agents: n,
        mode,
        runs: rs.length,
        live: Math.min(...rs.map((r) => r.live)),
        allLiveS: med((r) => r.allLiveS),
        acceptedPerSecond: med((r) => r.acceptedPerSecond),
        cpuPct: med((r) => r.cpuPct),
        cpuMinPct: Math.min(...cpus),
        cpuMaxPct: Math.max(...cpus),
        cpuOverGrpc: med((r) => r.cpuPct) / grpcCpu,
        simCpuPct: med((r) => r.simCpuPct),
        rssMb: med((r) => r.rssMb),
        p50Ms: med((r) => r.p50Ms),
        p99Ms: med((r) => r.p99Ms),
        maxMs: Math.max(...rs.map((r) => r.maxMs)),
        cycles: med((r) => r.cycles),
        loopDelayP99Ms: med((r) => r.loopDelayP99Ms),
        gcPct: med((r) => r.gcPct),
        gcMajorPct: med((r) => r.gcMajorPct),
        gcMaxMs: Math.max(...rs.map((r) => r.gcMaxMs)),
        sustained: rs.every((r) => r.sustained),
      });
    }
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      agents: { type: 'string', default: QUICK ? '200' : '1000,5000,10000' },
      modes: { type: 'string', default: HOST_MODES.join(',') },
      /** Runs of each mode per N, in ABBA order (forwards, then backwards, …). */
      reps: { type: 'string', default: QUICK ? '1' : '2' },
      'window-s': { type: 'string', default: QUICK ? '5' : '20' },
      'out-dir': { type: 'string', default: QUICK ? path.join(tmpdir(), `loadfeed-bench-${process.pid}`) : 'docs/bench' },
      /** Names the output files (poller-scale-DATE-LABEL.*). */
      label: { type: 'string', default: '' },
      'max-load': { type: 'string', default: QUICK ? '100' : '0.7' },
      /** More Node options for the server processes, e.g. --cpu-prof. */
      'node-args': { type: 'string', default: '' },
    },
  });
  const steps = values.agents.split(',').map(Number);
  const modes = values.modes.split(',') as HostMode[];
  for (const m of modes) if (!HOST_MODES.includes(m)) throw new Error(`--modes: ${m} is not one of ${HOST_MODES.join(', ')}`);
  const reps = Number(values.reps);
  const windowS = Number(values['window-s']);
  const nodeArgs = values['node-args'].split(' ').filter((x) => x !== '');
  const outDir = values['out-dir'];
  mkdirSync(outDir, { recursive: true });
  const log = benchLog('poller-scale');
  const children = new Children();
  const runs: Run[] = [];
  const started = new Date();
  let loadBefore = 0;
  await withCleanup(
    async () => {
      await children.close();
    },
    async () => {
      loadBefore = await waitForQuietMachine(Number(values['max-load']), 20 * 60_000, log);
      for (const n of steps) {
        for (let rep = 0; rep < reps; rep++) {
          // ABBA: a drift in the machine's load over the run hits every mode alike.
          for (const mode of rep % 2 === 0 ? modes : [...modes].reverse()) runs.push(await measure(children, n, mode, rep, windowS, nodeArgs, log));
        }
      }
    },
  );
  const loadAfter = loadAverage1();
  const summary = summarise(runs);
  const full = summary.filter((s) => s.mode === 'full');
  const holding = full.filter((s) => s.sustained && s.p99Ms < 50);
  const largest = Math.max(0, ...holding.map((s) => s.agents));
  const ten = full.find((s) => s.agents === 10_000);
  const text = [
    `bench:poller-scale  ${started.toISOString()}  ${machineLine()}`,
    `load average ${loadBefore} before, ${loadAfter} after; server node options ${[...POLLER_OPTIONS, ...nodeArgs].join(' ')}; 1 sample/s per agent, ${STREAMS_PER_PROCESS} streams per agent process, ${reps} runs per mode in ABBA order, ${windowS} s window ${SETTLE_MS / 1000} s after all agents are live`,
    'latency: full poller sample → decision in the engine; other modes sample → received',
    '',
    table(
      ['agents', 'server', 'runs', 'live', 'all live after s', 'samples/s', 'cpu % (median)', 'cpu % range', 'cpu / bare grpc-js', 'agents cpu %', 'rss MB', 'p50 ms', 'p99 ms', 'max ms', 'policy cycles', 'loop delay p99 ms', 'gc % of window', 'major gc %', 'longest gc ms', 'sustained'],
      summary.map((s) => [String(s.agents), MODE_NAMES[s.mode], String(s.runs), String(s.live), fmt(s.allLiveS, 1), fmt(s.acceptedPerSecond, 0), fmt(s.cpuPct), `${fmt(s.cpuMinPct)}–${fmt(s.cpuMaxPct)}`, fmt(s.cpuOverGrpc, 2), fmt(s.simCpuPct), fmt(s.rssMb, 0), fmt(s.p50Ms, 1), fmt(s.p99Ms, 1), fmt(s.maxMs, 1), fmt(s.cycles, 0), fmt(s.loopDelayP99Ms, 1), fmt(s.gcPct, 1), fmt(s.gcMajorPct, 1), fmt(s.gcMaxMs, 1), s.sustained ? 'yes' : 'no']),
    ),
    '',
    'every run, in order:',
    table(
      ['agents', 'server', 'run', 'cpu %', 'agents cpu %', 'rss MB', 'p50 ms', 'p99 ms', 'p99 until accepted ms', 'wait for a cycle p99 ms', 'longest wait ms', 'loop delay p99 ms', 'gc %', 'major gc %', 'longest gc ms', 'samples/s'],
      runs.map((r) => [String(r.agents), MODE_NAMES[r.mode], String(r.rep + 1), fmt(r.cpuPct), fmt(r.simCpuPct), fmt(r.rssMb, 0), fmt(r.p50Ms, 1), fmt(r.p99Ms, 1), fmt(r.ingestP99Ms, 1), fmt(r.cycleWaitP99Ms, 1), fmt(r.cycleWaitMaxMs, 1), fmt(r.loopDelayP99Ms, 1), fmt(r.gcPct, 1), fmt(r.gcMajorPct, 1), fmt(r.gcMaxMs, 1), fmt(r.acceptedPerSecond, 0)]),
    ),
    '',
    full.length > 0 ? `largest N with the full poller sustained and p99 < 50 ms: ${largest}` : 'full poller not measured in this run',
    ten ? `target (10,000 agents within 50 % of a core, p99 < 50 ms): cpu ${fmt(ten.cpuPct)} %, p99 ${fmt(ten.p99Ms, 1)} ms: ${ten.cpuPct < 50 && ten.p99Ms < 50 && ten.sustained ? 'MET' : 'MISSED'}` : 'target: the full poller at 10,000 agents not measured in this run',
  ].join('\n');
  process.stdout.write(`${text}\n`);
  const stamp = QUICK ? 'quick' : [started.toISOString().slice(0, 10), values.label].filter((x) => x !== '').join('-');
  writeFileSync(path.join(outDir, `poller-scale-${stamp}.json`), JSON.stringify({ bench: 'poller-scale', date: started.toISOString(), machine: machineLine(), loadAverage: { before: loadBefore, after: loadAfter }, windowS, reps, summary, runs, largestHoldingP99: largest }, null, 1));
  writeFileSync(path.join(outDir, `poller-scale-${stamp}.txt`), `${text}\n`);
  if (!QUICK && steps.length > 1) {
    const png = plotLines(path.join(outDir, `poller-scale-${stamp}.png`), 'CPU by server, and the full poller\'s p99 sample-to-decision latency', 'agents (1 sample/s each)', '% of one core / ms', [
      ...modes.map((m) => ({ name: `${MODE_NAMES[m]} CPU %`, points: summary.filter((s) => s.mode === m).map((s): [number, number] => [s.agents, s.cpuPct]) })),
      { name: 'full poller p99 ms', points: full.map((s): [number, number] => [s.agents, s.p99Ms]) },
    ], false, true);
    if (png) log(`plot: ${png}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:poller-scale failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
