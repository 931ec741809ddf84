/**
 * bench:xds — the xds engine serving N simulated xDS clients (each a real
 * ADS stream on its own HTTP/2 connection, xds-clients.ts) while every one
 * of E endpoints in S services gets a new weight every second: the serving
 * process's CPU, and the time from the weight decision (apply() called) to
 * the moment the last client has the new load assignments. The floor is
 * measured in the same run: a bare grpc-js server (xds-host.ts --mode bare)
 * that encodes the same assignments once per second and writes them to every
 * stream, without the engine's subscriptions, versions and ACKs; runs of the
 * two alternate and the medians are compared as ratios.
 *
 * It must never leave a process behind.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Children, firstLine, LineReader, sleep, withCleanup, type Started } from './lib/children.js';
import { benchLog, fmt, loadAverage1, machineLine, median, processRssBytes, QUICK, quantile, table, waitForQuietMachine } from './lib/measure.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HOST = path.join(HERE, 'xds-host.js');
const CLIENTS = path.join(HERE, 'xds-clients.js');
const CLIENTS_PER_PROCESS = 500;
/** Ticks at the start of a run left out: connections still settling. */
const WARMUP_TICKS = 3;

type Mode = 'xds' | 'bare';

interface Run {
  readonly mode: Mode;
  readonly cpuPct: number;
  readonly rssMb: number;
  /** Decision → last client, per tick in the window, ms. */
  readonly latenciesMs: number[];
  /** Ticks some client never received. */
  readonly incomplete: number;
  readonly applyMsMedian: number;
}

async function run(children: Children, mode: Mode, clients: number, services: number, endpoints: number, windowS: number, log: (s: string) => void): Promise<Run> {
  const host = children.node(`host ${mode}`, HOST, ['--mode', mode, '--services', String(services), '--endpoints', String(endpoints)]);
  const hostLines = new LineReader(host);
  const ready = await hostLines.next(120_000);
  if (!ready.startsWith('ready ')) throw new Error(`host: ${ready} ${host.stderr()}`);
  const target = `127.0.0.1:${ready.slice('ready '.length)}`;
  const sims: Started[] = [];
  for (let first = 0; first < clients; first += CLIENTS_PER_PROCESS) {
    sims.push(children.node(`clients ${first}`, CLIENTS, ['--target', target, '--count', String(Math.min(CLIENTS_PER_PROCESS, clients - first)), '--services', String(services), '--first-id', String(first)]));
  }
  await Promise.all(sims.map((s) => firstLine(s, 180_000)));
  const ask = async (line: string): Promise<string> => {
    host.child.stdin?.write(`${line}\n`);
    return hostLines.next(60_000);
  };
  for (let waited = 0; Number(await ask('streams')) < clients; waited++) {
    if (waited > 600) throw new Error(`${mode}: not every client subscribed within 60 s`);
    await sleep(100);
  }
  host.child.stdin?.write('start\n');
  await sleep((windowS + WARMUP_TICKS + 1) * 1000);
  const rss = processRssBytes(host.child.pid ?? 0) ?? Number.NaN;
  const report = JSON.parse(await ask('report')) as { cpuUs: number; ticks: { version: string; decidedAt: number; applyMs: number }[] };
  const received = new Map<string, { n: number; last: number }>();
  for (const sim of sims) {
    const lines = new LineReader(sim);
    sim.child.stdin?.write('report\n');
    for (const [version, r] of Object.entries(JSON.parse(await lines.next(60_000)) as Record<string, { n: number; last: number }>)) {
      const sum = received.get(version);
      received.set(version, sum === undefined ? { ...r } : { n: sum.n + r.n, last: Math.max(sum.last, r.last) });
    }
  }
  const window = report.ticks.slice(WARMUP_TICKS, WARMUP_TICKS + windowS);
  const latenciesMs: number[] = [];
  let incomplete = 0;
  for (const tick of window) {
    const r = received.get(tick.version);
    if (r === undefined || r.n < clients) incomplete++;
    else latenciesMs.push(r.last - tick.decidedAt);
  }
  for (const s of [host, ...sims]) await children.stop(s);
  const result: Run = {
    mode,
    cpuPct: (report.cpuUs / ((report.ticks.length + 1) * 1e6)) * 100,
    rssMb: rss / 1048576,
    latenciesMs,
    incomplete,
    applyMsMedian: median(window.map((t) => t.applyMs)),
  };
  log(`${mode}: cpu ${fmt(result.cpuPct)} %, decision → last client p50 ${fmt(median(latenciesMs), 0)} ms, max ${fmt(Math.max(...latenciesMs), 0)} ms, incomplete ${incomplete}`);
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: QUICK ? '100' : '1000' },
      services: { type: 'string', default: '10' },
      endpoints: { type: 'string', default: QUICK ? '100' : '1000' },
      'window-s': { type: 'string', default: QUICK ? '3' : '20' },
      runs: { type: 'string', default: QUICK ? '1' : '3' },
      'out-dir': { type: 'string', default: QUICK ? path.join(tmpdir(), `loadfeed-bench-${process.pid}`) : 'docs/bench' },
      'max-load': { type: 'string', default: QUICK ? '100' : '1.5' },
    },
  });
  const clients = Number(values.clients);
  const services = Number(values.services);
  const endpoints = Number(values.endpoints);
  const windowS = Number(values['window-s']);
  const outDir = values['out-dir'];
  mkdirSync(outDir, { recursive: true });
  const log = benchLog('xds');
  const children = new Children();
  const runs: Run[] = [];
  const started = new Date();
  let loadBefore = 0;
  await withCleanup(
    () => children.close(),
    async () => {
      loadBefore = await waitForQuietMachine(Number(values['max-load']), 20 * 60_000, log);
      for (let r = 0; r < Number(values.runs); r++) {
        // Alternate which goes first, so a drift of the machine does not favour one.
        for (const mode of (r % 2 === 0 ? ['xds', 'bare'] : ['bare', 'xds']) as Mode[]) {
          log(`run ${r + 1}: ${mode}, ${clients} clients, ${endpoints} endpoints in ${services} services, ${windowS} s`);
          runs.push(await run(children, mode, clients, services, endpoints, windowS, log));
        }
      }
    },
  );
  const loadAfter = loadAverage1();
  const summary = (mode: Mode) => {
    const of = runs.filter((r) => r.mode === mode);
    const all = of.flatMap((r) => r.latenciesMs);
    return {
      cpuPct: median(of.map((r) => r.cpuPct)),
      rssMb: median(of.map((r) => r.rssMb)),
      p50Ms: median(of.map((r) => median(r.latenciesMs))),
      p95Ms: quantile(all, 0.95),
      maxMs: Math.max(...all),
      incomplete: of.reduce((n, r) => n + r.incomplete, 0),
      applyMs: median(of.map((r) => r.applyMsMedian)),
    };
  };
  const xds = summary('xds');
  const bare = summary('bare');
  const text = [
    `bench:xds ${started.toISOString()} on ${machineLine()}`,
    `${clients} ADS clients (one HTTP/2 connection each), ${endpoints} endpoints in ${services} services, every weight changed every second; ${values.runs} runs of ${windowS} s per mode; load average ${loadBefore} before, ${loadAfter} after`,
    '',
    table(
      ['server', 'cpu % of a core', 'rss MB', 'decision → last client p50 ms', 'p95 ms', 'max ms', 'ticks not received by all', 'apply() ms'],
      [
        ['xds engine', fmt(xds.cpuPct), fmt(xds.rssMb, 0), fmt(xds.p50Ms, 0), fmt(xds.p95Ms, 0), fmt(xds.maxMs, 0), String(xds.incomplete), fmt(xds.applyMs, 1)],
        ['bare fan-out (floor)', fmt(bare.cpuPct), fmt(bare.rssMb, 0), fmt(bare.p50Ms, 0), fmt(bare.p95Ms, 0), fmt(bare.maxMs, 0), String(bare.incomplete), '-'],
      ],
    ),
    '',
    `xds / floor: cpu ${fmt(xds.cpuPct / bare.cpuPct, 2)}×, decision → last client p50 ${fmt(xds.p50Ms / bare.p50Ms, 2)}×`,
  ].join('\n');
  process.stdout.write(`${text}\n`);
  const stamp = QUICK ? 'quick' : started.toISOString().slice(0, 10);
  writeFileSync(path.join(outDir, `xds-${stamp}.json`), JSON.stringify({ bench: 'xds', date: started.toISOString(), machine: machineLine(), loadAverage: { before: loadBefore, after: loadAfter }, clients, services, endpoints, windowS, runs, xds, bare }, null, 1));
  writeFileSync(path.join(outDir, `xds-${stamp}.txt`), `${text}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:xds failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
