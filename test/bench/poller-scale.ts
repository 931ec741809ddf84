/**
 * bench:poller-scale — the poller (its own process, memory engine) fed by N
 * simulated agents, each a real gRPC stream on its own TCP connection, from
 * several client processes, sampling at 1 Hz: the poller's CPU and RSS, and
 * sample-to-decision latency (agent timestamp → the policy cycle that used
 * the sample). A step is "sustained" when every agent is live and ≥ 98 % of
 * the samples sent in the window were accepted. The poller listens below the
 * ephemeral port range, so 10,000 client sockets cannot take its port.
 *
 * It must never leave a process behind.
 */
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { binPath, launcherOptions } from '../helpers/launcher.js';
import { freePorts } from './lib/ports.js';
import { Children, firstLine, sleep, withCleanup, type Started } from './lib/children.js';
import { benchLog, fmt, loadAverage1, machineLine, processCpuUs, processPeakRssBytes, processRssBytes, QUICK, table, waitForQuietMachine } from './lib/measure.js';
import { plotLines } from './lib/plot.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HOST = path.join(HERE, 'poller-host.js');
/** The shipped poller's V8 options (its launcher line) apply to the bench's poller process too. */
const POLLER_OPTIONS = launcherOptions(binPath('@loadfeed/poller', 'loadfeed-poller'));
const SIM = path.join(HERE, 'sim-agents.js');
const STREAMS_PER_PROCESS = 2_500;

interface Step {
  readonly agents: number;
  readonly live: number;
  /** From starting the simulated agents (at 250 connections/s per process) until every one was live, as after a poller restart. */
  readonly allLiveS: number;
  readonly acceptedPerSecond: number;
  readonly cpuPct: number;
  readonly rssMb: number;
  readonly peakRssMb: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly cycles: number;
  readonly loopDelayP99Ms: number;
  readonly sustained: boolean;
}

/** poller-host's answer to "report". */
interface HostReport {
  readonly accepted: number;
  readonly cycles: number;
  readonly live: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly loopDelayP99Ms: number;
}

class LineReader {
  private readonly lines: string[] = [];
  private waiter: ((l: string) => void) | null = null;
  private readonly rl: Interface;
  constructor(s: Started) {
    if (!s.child.stdout) throw new Error(`${s.name}: no stdout`);
    this.rl = createInterface({ input: s.child.stdout });
    this.rl.on('line', (l) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w(l);
      } else this.lines.push(l);
    });
  }
  next(timeoutMs = 60_000): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer')), timeoutMs);
      this.waiter = (x) => {
        clearTimeout(t);
        resolve(x);
      };
    });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      agents: { type: 'string', default: QUICK ? '200' : '1000,5000,10000' },
      'window-s': { type: 'string', default: QUICK ? '5' : '30' },
      'out-dir': { type: 'string', default: QUICK ? path.join(tmpdir(), `loadfeed-bench-${process.pid}`) : 'docs/bench' },
      'max-load': { type: 'string', default: QUICK ? '100' : '0.7' },
      /** More Node options for the poller's process, e.g. --cpu-prof. */
      'node-args': { type: 'string', default: '' },
    },
  });
  const steps = values.agents.split(',').map(Number);
  const windowS = Number(values['window-s']);
  const outDir = values['out-dir'];
  mkdirSync(outDir, { recursive: true });
  const log = benchLog('poller-scale');
  const children = new Children();
  const results: Step[] = [];
  const started = new Date();
  let loadBefore = 0;
  await withCleanup(
    async () => {
      await children.close();
    },
    async () => {
      loadBefore = await waitForQuietMachine(Number(values['max-load']), 20 * 60_000, log);
      for (const n of steps) {
        log(`${n} agents`);
        // Below the ephemeral range, which the simulated agents' connections fill; picked per run.
        const [listenPort = 0] = await freePorts(1);
        const host = children.spawn('poller', process.execPath, [
          ...POLLER_OPTIONS,
          ...values['node-args'].split(' ').filter((x) => x !== ''),
          HOST, '--agents', String(n), '--listen', `127.0.0.1:${listenPort}`,
        ]);
        const reader = new LineReader(host);
        const readyLine = await reader.next(60_000);
        if (!readyLine.startsWith('ready')) throw new Error(`poller: ${readyLine} ${host.stderr()}`);
        const connecting = performance.now();
        const sims: Started[] = [];
        for (let first = 0; first < n; first += STREAMS_PER_PROCESS) {
          sims.push(children.node(`sim ${first}`, SIM, ['--target', `127.0.0.1:${listenPort}`, '--count', String(Math.min(STREAMS_PER_PROCESS, n - first)), '--first-id', String(first)]));
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
        await sleep(5_000); // the connect burst is over; measure the steady state
        host.child.stdin?.write('mark\n');
        const pid = host.child.pid ?? 0;
        const c0 = processCpuUs(pid);
        const t0 = performance.now();
        await sleep(windowS * 1000);
        const r = await report();
        const dt = (performance.now() - t0) * 1000;
        const c1 = processCpuUs(pid);
        const step: Step = {
          agents: n,
          live: r.live,
          allLiveS,
          acceptedPerSecond: r.accepted / (dt / 1e6),
          cpuPct: c0 === null || c1 === null ? Number.NaN : ((c1 - c0) / dt) * 100,
          rssMb: (processRssBytes(pid) ?? Number.NaN) / 2 ** 20,
          peakRssMb: (processPeakRssBytes(pid) ?? Number.NaN) / 2 ** 20,
          p50Ms: r.p50Ms,
          p99Ms: r.p99Ms,
          maxMs: r.maxMs,
          cycles: r.cycles,
          loopDelayP99Ms: r.loopDelayP99Ms,
          sustained: r.live === n && r.accepted >= 0.98 * n * (dt / 1e6),
        };
        results.push(step);
        log(`${n} agents: ${fmt(step.cpuPct)} % CPU, ${fmt(step.rssMb, 0)} MB, p99 ${fmt(step.p99Ms)} ms, ${fmt(step.acceptedPerSecond, 0)} samples/s, ${step.cycles} cycles`);
        await Promise.all(sims.map((s) => children.stop(s)));
        host.child.stdin?.end();
        await Promise.race([once(host.child, 'exit'), sleep(10_000)]);
        await children.stop(host);
      }
    },
  );
  const loadAfter = loadAverage1();
  const largest = Math.max(0, ...results.filter((s) => s.sustained).map((s) => s.agents));
  const ten = results.find((s) => s.agents === 10_000);
  const text = [
    `bench:poller-scale  ${started.toISOString()}  ${machineLine()}`,
    `load average ${loadBefore} before, ${loadAfter} after; poller node options ${[...POLLER_OPTIONS, values['node-args']].join(' ').trim()}; 1 sample/s per agent, ${STREAMS_PER_PROCESS} streams per client process, ${windowS} s window after all agents are live`,
    '',
    table(
      ['agents', 'live', 'all live after s', 'samples/s', 'poller cpu %', 'rss MB', 'peak rss MB', 'p50 ms', 'p99 ms', 'max ms', 'policy cycles', 'loop delay p99 ms', 'sustained'],
      results.map((s) => [String(s.agents), String(s.live), fmt(s.allLiveS, 1), fmt(s.acceptedPerSecond, 0), fmt(s.cpuPct), fmt(s.rssMb, 0), fmt(s.peakRssMb, 0), fmt(s.p50Ms, 1), fmt(s.p99Ms, 1), fmt(s.maxMs, 1), String(s.cycles), fmt(s.loopDelayP99Ms, 1), s.sustained ? 'yes' : 'no']),
    ),
    '',
    `largest N sustained: ${largest}`,
    ten ? `target (10,000 agents within 50 % of a core, p99 < 50 ms): cpu ${fmt(ten.cpuPct)} %, p99 ${fmt(ten.p99Ms, 1)} ms: ${ten.cpuPct < 50 && ten.p99Ms < 50 && ten.sustained ? 'MET' : 'MISSED'}` : 'target: 10,000 agents not measured in this run',
  ].join('\n');
  process.stdout.write(`${text}\n`);
  const stamp = QUICK ? 'quick' : started.toISOString().slice(0, 10);
  writeFileSync(path.join(outDir, `poller-scale-${stamp}.json`), JSON.stringify({ bench: 'poller-scale', date: started.toISOString(), machine: machineLine(), loadAverage: { before: loadBefore, after: loadAfter }, windowS, results, largestSustained: largest }, null, 1));
  writeFileSync(path.join(outDir, `poller-scale-${stamp}.txt`), `${text}\n`);
  if (!QUICK) {
    const png = plotLines(path.join(outDir, 'poller-scale.png'), 'poller: CPU and p99 sample-to-decision latency', 'agents (1 sample/s each)', '% of one core / ms', [
      { name: 'poller CPU %', points: results.map((s): [number, number] => [s.agents, s.cpuPct]) },
      { name: 'p99 latency ms', points: results.map((s): [number, number] => [s.agents, s.p99Ms]) },
    ], false, true);
    if (png) log(`plot: ${png}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:poller-scale failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
