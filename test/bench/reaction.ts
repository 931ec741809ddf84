/**
 * bench:reaction — how fast loadfeed's default policy reacts, over many
 * trials: (1) a load step: an antagonist starts using 60 % of one backend's
 * CPU allowance → time until 90 % of the weight correction is in force in the
 * engine; (2) an agent killed with SIGKILL, (3) an agent stopped with
 * SIGSTOP (a hung host), (4) the backend's host cut off the network (its
 * link down) → time until the engine has weight 0 for it (quiesced).
 * Backends, agents and poller as in bench:balance (namespaces, cgroup quotas,
 * fast path); the engine's weights are read every 20 ms. p50 and p95 of each.
 * Before the steps, the weights' steady-state wobble: over `--steady-s` of
 * unchanged load, each backend's weight's standard deviation over its mean
 * (the largest of the three), and how many weight changes the engine saw.
 *
 * It must never leave a process, cgroup or namespace behind.
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compilePolicy, defaultEngines, defaultStrategies, readTrace, SERVER_KEEPALIVE_MS, simulate } from '@loadfeed/poller';
import { calibrate } from './lib/calibrate.js';
import { CpuCgroup, DEFAULT_CFS_PERIOD_US } from './lib/cgroup.js';
import { Children, alive, firstLine, sleep, withCleanup } from './lib/children.js';
import { Cluster, type Backend } from './lib/cluster.js';
import { benchLog, fmt, loadAverage1, machineLine, mean, median, quantile, QUICK, table, waitForQuietMachine } from './lib/measure.js';
import { NetNs } from './lib/netns.js';
import { LOADGEN_SCRIPT } from './lib/records.js';

const WORK_MS = 2;
const POLL_MS = 20;
const DEFAULT_POLICY = (servers: string): string => `apiVersion: loadfeed/v1
services:
  - name: bench
    engine: fastpath
    address: tcp 127.0.0.1:0
    servers:
${servers}`;

interface Kind {
  readonly name: string;
  readonly times: number[];
  readonly misses: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      trials: { type: 'string', default: QUICK ? '2' : '20' },
      'phase-s': { type: 'string', default: QUICK ? '5' : '10' },
      'steady-s': { type: 'string', default: QUICK ? '3' : '20' },
      /** Only the load steps (and the wobble before them), not the three ways of losing a server. */
      'only-step': { type: 'boolean', default: false },
      'out-dir': { type: 'string', default: QUICK ? path.join(tmpdir(), `loadfeed-bench-${process.pid}`) : 'docs/bench' },
      'max-load': { type: 'string', default: QUICK ? '100' : '0.7' },
      /**
       * Write into this directory what the poller took in and did, to attribute a
       * reaction's time: reaction-samples.jsonl (every agent message, `t` in ms
       * from `epoch` in reaction-events.jsonl) and reaction-events.jsonl (every
       * weight change with its reason, and each load step's edge; epoch ms).
       */
      trace: { type: 'string' },
      /**
       * Instead of running anything, replay a `--trace` directory through the
       * default policy as built now (loadfeed-policy simulate's virtual clock)
       * and print each load step's correction: what a strategy change would
       * have done to the same samples.
       */
      replay: { type: 'string' },
    },
  });
  if (values.replay !== undefined) {
    await replay(values.replay, Number(values['phase-s']));
    return;
  }
  const trials = Number(values.trials);
  const phaseS = Number(values['phase-s']);
  const outDir = values['out-dir'];
  mkdirSync(outDir, { recursive: true });
  const log = benchLog('reaction');
  const children = new Children();
  const root = CpuCgroup.root('loadfeed-bench');
  const nets: NetNs[] = [];
  let cluster: Cluster | null = null;
  const kinds: Kind[] = [];
  // Set inside the run below (a closure), so typed as what it may be.
  let steady = null as Steady | null;
  const started = new Date();
  let loadBefore = 0;
  let rpsPerCore = 0;
  const records = path.join(tmpdir(), `loadfeed-reaction-${process.pid}.txt`);
  const trace = values.trace === undefined ? null : openTrace(values.trace);
  await withCleanup(
    async () => {
      rmSync(records, { force: true });
      for (const n of nets) n.setLink(true);
      await cluster?.stop().catch(() => undefined);
      await children.close();
      root.remove();
      for (const n of nets) n.remove();
    },
    async () => {
      loadBefore = await waitForQuietMachine(Number(values['max-load']), 20 * 60_000, log);
      for (let i = 1; i <= 3; i++) nets.push(NetNs.create(i));
      rpsPerCore = await calibrate({
        children, root, nets, periodUs: DEFAULT_CFS_PERIOD_US, workMs: WORK_MS, records,
        track: (c) => { cluster = c; },
      });
      log(`calibrated: ${rpsPerCore.toFixed(0)} requests/s per core of backend (nominal ${1000 / WORK_MS})`);
      const c = new Cluster({
        children, root, run: 'reaction', nets, ...(trace ? { trace: trace.samples } : {}),
        backends: [{ id: 'b1', cores: 0.2 }, { id: 'b2', cores: 0.2 }, { id: 'b3', cores: 0.2 }],
        workMs: WORK_MS, periodUs: DEFAULT_CFS_PERIOD_US,
      });
      cluster = c;
      await c.startBackends();
      // The samples' `t` counts from the poller's start, within milliseconds of this.
      trace?.event({ type: 'epoch', at: Date.now() });
      await c.startBalancer({ kind: 'poller', policy: DEFAULT_POLICY });
      if (trace) c.observe({ weightChanged: (e) => trace.event({ type: 'weight', ...e }) });
      // Half the calibrated capacity: every backend busy, none saturated before the step.
      const rate = 0.5 * 3 * 0.2 * rpsPerCore;
      const settleMs = QUICK ? 5_000 : 15_000;
      const steadyMs = Number(values['steady-s']) * 1000;
      const leadMs = settleMs + steadyMs + 5_000; // until the first edge
      const totalS = leadMs / 1000 + trials * 2 * phaseS + trials * 3 * 12;
      const gen = children.node('loadgen', LOADGEN_SCRIPT, [
        '--target', `${c.target.host}:${c.target.port}`, '--schedule', JSON.stringify([[0, rate]]),
        '--duration', String(totalS), '--out', records,
      ]);
      await firstLine(gen);
      const victim = c.backends[1] as Backend;
      const vi = 1;
      // (1) load steps: a square wave antagonist; every rising edge is a trial.
      // Started (idle until its first edge) before the weights settle: a node
      // process starting in the victim's cgroup takes its CPU for a second or
      // more, which right before the first edge left that step no correction
      // to measure (its weight was already down).
      const startAt = Date.now() + leadMs;
      await c.startNoise(victim, 0.6, startAt, phaseS * 1000, phaseS * 1000);
      await sleep(settleMs); // weights settle
      const steadyFrom = Date.now();
      steady = await wobble(c, steadyMs);
      trace?.event({ type: 'steady', from: steadyFrom, to: Date.now() });
      log(`steady state: wobble ${fmt(steady.wobble * 100, 1)} % (std/mean, worst backend), ${fmt(steady.changesPerMinute, 0)} weight changes/min, mean weights ${steady.weights.map((w) => fmt(w, 0)).join('/')}`);
      const step: number[] = [];
      let stepMisses = 0;
      for (let k = 0; k < trials; k++) {
        const edge = startAt + k * 2 * phaseS * 1000;
        trace?.event({ type: 'edge', at: edge, node: victim.id, phaseS });
        const r = correction(await record(c, vi, edge - 2_000, edge + phaseS * 1000), edge, phaseS);
        if (r.seconds === null) stepMisses++;
        else step.push(r.seconds);
        log(`load step ${k + 1}: ${describe(r)}`);
        await sleepUntil(edge + 2 * phaseS * 1000 - 2_000);
      }
      if (victim.noise) await children.stop(victim.noise.proc);
      kinds.push({ name: 'load step → 90 % of the weight correction', times: step, misses: stepMisses });
      if (values['only-step']) {
        await children.stop(gen);
        return;
      }

      // (2)-(4) quiesce: the server's weight goes to 0.
      const b = c.backends[2] as Backend;
      const bi = 2;
      const quiesce = async (name: string, cut: () => void, heal: () => Promise<void>): Promise<void> => {
        const times: number[] = [];
        let misses = 0;
        for (let k = 0; k < trials; k++) {
          await waitWeight(c, bi, (w) => w > 0, 30_000);
          await sleep(2_000 + Math.random() * 1_000);
          const t0 = performance.now();
          cut();
          const ok = await waitWeight(c, bi, (w) => w === 0, 15_000);
          const dt = (performance.now() - t0) / 1000;
          if (ok) times.push(dt);
          else misses++;
          log(`${name} ${k + 1}: ${ok ? `quiesced in ${fmt(dt, 2)} s` : 'not quiesced within 15 s'}`);
          await heal();
        }
        kinds.push({ name, times, misses });
      };
      await quiesce('agent SIGKILL → quiesced', () => b.agent?.child.kill('SIGKILL'), async () => c.startAgent(b));
      await quiesce('agent SIGSTOP (hung host) → quiesced', () => b.agent?.child.kill('SIGSTOP'), async () => {
        b.agent?.child.kill('SIGCONT');
        // The poller may have dropped the stream: the agent reconnects by itself.
        if (b.agent && !alive(b.agent.child)) c.startAgent(b);
      });
      await quiesce('host link down (partition) → quiesced', () => b.ns.setLink(false), async () => b.ns.setLink(true));
      await children.stop(gen);
    },
  );
  const loadAfter = loadAverage1();
  const text = [
    `bench:reaction  ${started.toISOString()}  ${machineLine()}`,
    `load average ${loadBefore} before, ${loadAfter} after; backends at half their calibrated capacity (${rpsPerCore.toFixed(0)} requests/s per core); loadfeed default policy (agent interval 1 s with early reports, stale after 2 s, server keepalive ${SERVER_KEEPALIVE_MS / 1000} s, for dead connections only); engine weights read every ${POLL_MS} ms`,
    steady === null ? '' : `steady state over ${values['steady-s']} s: weight wobble ${fmt(steady.wobble * 100, 1)} % (std/mean of the worst backend), ${fmt(steady.changesPerMinute, 0)} weight changes/min`,
    '',
    table(['event', 'trials', 'p50 s', 'p95 s', 'max s', 'no reaction'], kinds.map((k) => [k.name, String(k.times.length + k.misses), fmt(quantile(k.times, 0.5), 2), fmt(quantile(k.times, 0.95), 2), fmt(Math.max(...k.times), 2), String(k.misses)])),
  ].join('\n');
  process.stdout.write(`${text}\n`);
  const stamp = QUICK ? 'quick' : started.toISOString().slice(0, 10);
  writeFileSync(path.join(outDir, `reaction-${stamp}.json`), JSON.stringify({ bench: 'reaction', date: started.toISOString(), machine: machineLine(), loadAverage: { before: loadBefore, after: loadAfter }, steady, kinds }, null, 1));
  writeFileSync(path.join(outDir, `reaction-${stamp}.txt`), `${text}\n`);
}

interface Trace {
  /** The poller's recording of its agents (Cluster's `trace`). */
  readonly samples: string;
  event(e: Record<string, unknown>): void;
}

function openTrace(dir: string): Trace {
  mkdirSync(dir, { recursive: true });
  const events = path.join(dir, 'reaction-events.jsonl');
  writeFileSync(events, '');
  return { samples: path.join(dir, 'reaction-samples.jsonl'), event: (e) => appendFileSync(events, `${JSON.stringify(e)}\n`) };
}

interface Correction {
  readonly before: number;
  readonly after: number;
  /** Until 90 % of the move from before to after was in force; null: no clear correction. */
  readonly seconds: number | null;
}

/**
 * A load step's correction from the victim's weights (epoch ms) from 2 s
 * before its edge to the end of its phase: the median before the edge, the
 * median over the phase's last 3 s, and when the weight first reached 90 %
 * of that move. A move under 10 % of the weight is no clear correction.
 */
function correction(series: readonly { at: number; w: number }[], edge: number, phaseS: number): Correction {
  const before = median(series.filter((p) => p.at < edge).map((p) => p.w));
  const after = median(series.filter((p) => p.at >= edge + (phaseS - 3) * 1000).map((p) => p.w));
  const target = before - 0.9 * (before - after);
  const hit = series.find((p) => p.at >= edge && p.w <= target);
  return { before, after, seconds: before - after < 0.1 * before || !hit ? null : (hit.at - edge) / 1000 };
}

function describe(r: Correction): string {
  return `weight ${r.before} → ${r.after}${r.seconds === null ? ': no clear correction' : `, 90 % in ${fmt(r.seconds, 2)} s`}`;
}

interface TraceLine {
  readonly type: string;
  readonly at?: number;
  readonly from?: number;
  readonly to?: number;
  readonly node?: string;
  readonly phaseS?: number;
}

/** The load steps of a `--trace` directory replayed through the default policy as built now; phaseS for traces whose edges do not carry it. */
async function replay(dir: string, phaseS: number): Promise<void> {
  const lines = readFileSync(path.join(dir, 'reaction-events.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as TraceLine);
  const epoch = lines.find((e) => e.type === 'epoch')?.at;
  const edges = lines.filter((e) => e.type === 'edge');
  if (epoch === undefined || edges.length === 0) throw new Error(`${dir}/reaction-events.jsonl: no epoch or no load step (not a bench:reaction --trace?)`);
  const events = await readTrace(path.join(dir, 'reaction-samples.jsonl'));
  // The servers as the bench named them: node and address from each agent's hello.
  const servers = new Map<string, string>();
  for (const e of events) {
    if (e.type !== 'hello') continue;
    const port = e.hello.services?.[0]?.port;
    const address = e.hello.addresses?.[0];
    if (port !== undefined && address !== undefined) servers.set(e.node, `${address}:${port}`);
  }
  const serverLines = [...servers].map(([node, address]) => `      - { node: ${node}, address: "${address}" }`).join('\n');
  const policy = compilePolicy(DEFAULT_POLICY(serverLines), '<bench policy>', defaultEngines().limits());
  const sim = simulate(policy, events, defaultStrategies(), POLL_MS);
  const columnOf = (node: string): number => sim.columns.indexOf(`bench/${servers.get(node) ?? '?'}`);
  const times: number[] = [];
  let misses = 0;
  edges.forEach((e, k) => {
    const edge = e.at ?? 0;
    const phase = e.phaseS ?? phaseS;
    const i = columnOf(e.node ?? '');
    const series = sim.series.map((row) => ({ at: epoch + row.t, w: row.weights[i] ?? 0 })).filter((p) => p.at >= edge - 2_000 && p.at < edge + phase * 1000);
    const r = correction(series, edge, phase);
    if (r.seconds === null) misses++;
    else times.push(r.seconds);
    process.stdout.write(`load step ${k + 1}: ${describe(r)}\n`);
  });
  const steady = lines.find((e) => e.type === 'steady');
  if (steady?.from !== undefined && steady.to !== undefined) {
    const { from, to } = steady;
    const rows = sim.series.filter((row) => epoch + row.t >= from && epoch + row.t < to).map((row) => row.weights.map((w) => w ?? 0));
    const w = wobbleOf(rows, to - from);
    process.stdout.write(`steady state: wobble ${fmt(w.wobble * 100, 1)} % (std/mean, worst backend), ${fmt(w.changesPerMinute, 0)} weight changes/min\n`);
  }
  // Changes the strategy took at once (its reason says so), per server: on servers without a neighbour, noise taken as change.
  const taken = [...servers.keys()].map((node) => `${node} ${sim.changes.filter((c) => c.node === node && /a change/.test(c.reason)).length}`);
  process.stdout.write(`changes taken at once: ${taken.join(', ')}\n`);
  process.stdout.write(`load step → 90 % of the weight correction: ${times.length + misses} steps, p50 ${fmt(quantile(times, 0.5), 2)} s, p95 ${fmt(quantile(times, 0.95), 2)} s, max ${fmt(Math.max(...times), 2)} s, no clear correction ${misses}\n`);
}

/** The weight of backend i every POLL_MS between two epoch times. */
async function record(c: Cluster, i: number, fromEpoch: number, toEpoch: number): Promise<{ at: number; w: number }[]> {
  await sleepUntil(fromEpoch);
  const out: { at: number; w: number }[] = [];
  while (Date.now() < toEpoch) {
    out.push({ at: Date.now(), w: (await c.weights())[i] ?? 0 });
    await sleep(POLL_MS);
  }
  return out;
}

/** Every backend's weight every POLL_MS for `ms`: the worst std/mean, weight changes per minute, mean weights. */
interface Steady {
  readonly wobble: number;
  readonly changesPerMinute: number;
  readonly weights: number[];
}

async function wobble(c: Cluster, ms: number): Promise<Steady> {
  const series: number[][] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    series.push(await c.weights());
    await sleep(POLL_MS);
  }
  return wobbleOf(series, ms);
}

/** Every backend's weights, one row every POLL_MS over `ms`. */
function wobbleOf(series: readonly (readonly number[])[], ms: number): Steady {
  const n = series[0]?.length ?? 0;
  let changes = 0;
  for (let k = 1; k < series.length; k++) for (let i = 0; i < n; i++) if (series[k]?.[i] !== series[k - 1]?.[i]) changes++;
  const stats = Array.from({ length: n }, (_, i) => {
    const xs = series.map((w) => w[i] ?? 0);
    const m = mean(xs);
    return { m, cv: m > 0 ? Math.sqrt(mean(xs.map((x) => (x - m) ** 2))) / m : Number.NaN };
  });
  return { wobble: Math.max(...stats.map((s) => s.cv)), changesPerMinute: (changes * 60_000) / ms, weights: stats.map((s) => s.m) };
}

async function waitWeight(c: Cluster, i: number, ok: (w: number) => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (ok((await c.weights())[i] ?? 0)) return true;
    await sleep(POLL_MS);
  }
  return false;
}

async function sleepUntil(epochMs: number): Promise<void> {
  const d = epochMs - Date.now();
  if (d > 0) await sleep(d);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:reaction failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
