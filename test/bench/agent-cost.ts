/**
 * bench:agent-cost — CPU and memory of the loadfeed agent at 1 Hz and 10 Hz
 * with 0, 10,000 and 50,000 established connections on the host, side by
 * side in the same run with Debian's prometheus-node-exporter (default
 * collectors) scraped at the same rate. Both run at the same time, so they
 * see the same machine. The agent streams to a real poller (in this
 * process, memory engine) and counts the connections of the service port
 * that holds them all (the worst case for its SOCK_DIAG dump). Beside them
 * runs the floor (agent-floor.ts: the agent's Node options, one gRPC stream
 * and a timer at the same rate, no measuring), so the agent's CPU above the
 * floor is what measuring costs. `--early-change` lists agent variants
 * (e.g. `default,0`: early reports on and off), measured one after another
 * within each repetition.
 *
 * CPU is the time each process's threads ran (schedstat, ns) over the measured window; RSS is
 * VmRSS at the end of it. It must never leave a process behind.
 */
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { compilePolicy, defaultEngines, defaultStrategies, Poller } from '@loadfeed/poller';
import { Children, firstLine, sleep, withCleanup, type Started } from './lib/children.js';
import { AGENT_BIN } from './lib/cluster.js';
import { benchLog, fmt, loadAverage1, machineLine, median, processPeakRssBytes, processRunUs, processRssBytes, QUICK, table, waitForQuietMachine } from './lib/measure.js';
import { plotLines } from './lib/plot.js';
import { freePorts } from './lib/ports.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HOLDER = path.join(HERE, 'conn-holder.js');
const FLOOR = path.join(HERE, 'agent-floor.js');
/** Ports below the ephemeral range (32768+), so 50,000 client sockets cannot take them. */
const HOLD_PER_PROCESS = 5_000;
export const NODE_EXPORTER_BIN = 'prometheus-node-exporter';

interface Row {
  readonly connections: number;
  readonly hz: number;
  /** The agent's --early-change, or 'default'. */
  readonly earlyChange: string;
  readonly agentCpuPct: number;
  readonly floorCpuPct: number;
  readonly agentRssMb: number;
  readonly agentPeakRssMb: number;
  readonly exporterCpuPct: number;
  readonly exporterRssMb: number;
  readonly ratio: number;
  readonly samples: number;
  readonly scrapes: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: QUICK ? '0,2000' : '0,10000,50000' },
      rates: { type: 'string', default: '1,10' },
      'window-s': { type: 'string', default: QUICK ? '4' : '30' },
      /**
       * Settling time before the window: V8's memory reducer runs full GCs for
       * some seconds after start-up, which at 1 Hz would be most of a short window.
       */
      'warmup-s': { type: 'string', default: QUICK ? '2' : '20' },
      reps: { type: 'string', default: QUICK ? '1' : '3' },
      'out-dir': { type: 'string', default: QUICK ? path.join(tmpdir(), `loadfeed-bench-${process.pid}`) : 'docs/bench' },
      'max-load': { type: 'string', default: QUICK ? '100' : '0.7' },
      label: { type: 'string', default: '' },
      /** Another build of the agent to measure (e.g. before an optimisation). */
      'agent-bin': { type: 'string', default: AGENT_BIN },
      /** Extra Node options for the agent, e.g. --cpu-prof (profiling the agent under this load). */
      'agent-node-args': { type: 'string', default: '' },
      /** Agent variants by --early-change: 'default' (the agent's own) or a value; 0 turns early reports off. */
      'early-change': { type: 'string', default: 'default' },
    },
  });
  const conns = values.connections.split(',').map(Number);
  // node_exporter's port, then one service port per connection holder, picked for this run.
  const [exporterPort = 0, ...holderPorts] = await freePorts(1 + Math.max(...conns.map(holdersFor)));
  const ports: Ports = { exporter: exporterPort, services: holderPorts };
  const rates = values.rates.split(',').map(Number);
  const variants = values['early-change'].split(',');
  const windowS = Number(values['window-s']);
  const reps = Number(values.reps);
  const outDir = values['out-dir'];
  mkdirSync(outDir, { recursive: true });
  const log = benchLog('agent-cost');
  // The agent runs with the Node options of its own launcher line, as systemd and npm start it.
  const launcher = launcherNodeOptions(values['agent-bin']);
  const agentCommand = [...launcher, ...values['agent-node-args'].split(' ').filter((x) => x !== ''), values['agent-bin']];
  log(`agent: node ${agentCommand.join(' ')}`);
  const children = new Children();
  const rows: Row[] = [];
  const started = new Date();
  let loadBefore = 0;
  await withCleanup(
    async () => {
      await children.close();
    },
    async () => {
      loadBefore = await waitForQuietMachine(Number(values['max-load']), 20 * 60_000, log);
      for (const n of conns) {
        // The hard descriptor limit here is 20,000 and cannot be raised (no
        // CAP_SYS_RESOURCE), so connections are held by several processes,
        // each holding both ends of at most HOLD_PER_PROCESS of them.
        const holders: Started[] = [];
        log(`opening ${n} connections`);
        for (let i = 0; i === 0 || i * HOLD_PER_PROCESS < n; i++) {
          const count = Math.min(HOLD_PER_PROCESS, n - i * HOLD_PER_PROCESS);
          holders.push(children.node(`conn-holder ${i}`, HOLDER, ['--port', String(ports.services[i]), '--count', String(Math.max(0, count)), '--first-address', String(1 + i)]));
        }
        await Promise.all(holders.map((h) => firstLine(h, 180_000)));
        for (const hz of rates) {
          const trials = new Map<string, Row[]>(variants.map((v) => [v, []]));
          for (let rep = 0; rep < reps; rep++) {
            // Variants alternate within a repetition, so a drifting machine load falls on all of them.
            for (const v of rep % 2 === 0 ? variants : [...variants].reverse()) {
              trials.get(v)?.push(await measure(children, ports, n, hz, v, windowS, Number(values['warmup-s']), log, agentCommand));
            }
          }
          for (const [earlyChange, runs] of trials) {
            const m = (k: Exclude<keyof Row, 'earlyChange'>): number => median(runs.map((t) => t[k]));
            const row: Row = {
              connections: n, hz, earlyChange, agentCpuPct: m('agentCpuPct'), floorCpuPct: m('floorCpuPct'), agentRssMb: m('agentRssMb'), agentPeakRssMb: m('agentPeakRssMb'),
              exporterCpuPct: m('exporterCpuPct'), exporterRssMb: m('exporterRssMb'), ratio: m('ratio'), samples: m('samples'), scrapes: m('scrapes'),
            };
            rows.push(row);
            log(`${n} connections, ${hz} Hz, early change ${earlyChange}: agent ${fmt(row.agentCpuPct, 2)} % CPU ${fmt(row.agentRssMb)} MB; floor ${fmt(row.floorCpuPct, 2)} %; node_exporter ${fmt(row.exporterCpuPct, 2)} % ${fmt(row.exporterRssMb)} MB`);
          }
        }
        await Promise.all(holders.map((h) => children.stop(h)));
      }
    },
  );
  const loadAfter = loadAverage1();
  const text = [
    `bench:agent-cost${values.label ? ` (${values.label})` : ''}  ${started.toISOString()}  ${machineLine()}`,
    `load average ${loadBefore} before, ${loadAfter} after; CPU (threads' run time) in % of one core over ${windowS} s windows, medians of ${reps}; all processes measured at the same time`,
    `agent launcher options: ${launcher.length === 0 ? '(none)' : launcher.join(' ')}`,
    '',
    table(
      ['connections', 'rate', 'early change', 'agent cpu %', 'floor cpu %', 'agent rss MB', 'agent peak MB', 'node_exporter cpu %', 'node_exporter rss MB', 'agent/node_exporter cpu', 'samples/s'],
      rows.map((r) => [String(r.connections), `${r.hz} Hz`, r.earlyChange, fmt(r.agentCpuPct, 2), fmt(r.floorCpuPct, 2), fmt(r.agentRssMb), fmt(r.agentPeakRssMb), fmt(r.exporterCpuPct, 2), fmt(r.exporterRssMb), fmt(r.ratio, 2), fmt(r.samples / windowS, 2)]),
    ),
    '',
    'floor: the agent\'s Node options, one gRPC stream and a timer at the same rate, no measuring (agent-floor.ts), measured at the same time',
    'targets: agent CPU < 0.5 x node_exporter CPU in the same run; agent RSS < 60 MB',
    ...rows.map((r) => `  ${r.connections} connections ${r.hz} Hz early change ${r.earlyChange}: cpu ratio ${fmt(r.ratio, 2)} ${r.ratio < 0.5 ? 'MET' : 'MISSED'}; rss ${fmt(r.agentRssMb)} MB ${r.agentRssMb < 60 ? 'MET' : 'MISSED'}`),
  ].join('\n');
  process.stdout.write(`${text}\n`);
  const stamp = QUICK ? 'quick' : `${started.toISOString().slice(0, 10)}${values.label ? `-${values.label}` : ''}`;
  writeFileSync(path.join(outDir, `agent-cost-${stamp}.json`), JSON.stringify({ bench: 'agent-cost', label: values.label, date: started.toISOString(), machine: machineLine(), agentLauncherOptions: launcher, loadAverage: { before: loadBefore, after: loadAfter }, windowS, reps, rows }, null, 1));
  writeFileSync(path.join(outDir, `agent-cost-${stamp}.txt`), `${text}\n`);
  if (!QUICK) {
    const series = rates.flatMap((hz) => [
      ...variants.map((v) => ({ name: `agent ${hz} Hz${variants.length > 1 ? ` early ${v}` : ''}`, points: rows.filter((r) => r.hz === hz && r.earlyChange === v).map((r): [number, number] => [r.connections, r.agentCpuPct]) })),
      { name: `node_exporter ${hz} Hz`, points: rows.filter((r) => r.hz === hz).map((r): [number, number] => [r.connections, r.exporterCpuPct]) },
    ]);
    const png = plotLines(path.join(outDir, `agent-cost${values.label ? `-${values.label}` : ''}.png`), 'agent vs node_exporter: CPU', 'established connections on the host', '% of one core', series);
    if (png) log(`plot: ${png}`);
  }
}

/** Node options on the bin's launcher line (`#!/usr/bin/env -S node OPTIONS`); none for a plain `#!/usr/bin/env node`. */
function launcherNodeOptions(bin: string): string[] {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env\s+(?:-S\s+)?node(\s.*)?$/.exec(first);
  return (m?.[1] ?? '').split(/\s+/).filter((x) => x !== '');
}

interface Ports {
  readonly exporter: number;
  /** One per connection holder: the agent counts each as a service. */
  readonly services: readonly number[];
}

/** How many processes hold `connections` connections (at least one, for the service port). */
function holdersFor(connections: number): number {
  return Math.max(1, Math.ceil(connections / HOLD_PER_PROCESS));
}

async function measure(
  children: Children,
  ports: Ports,
  connections: number,
  hz: number,
  earlyChange: string,
  windowS: number,
  warmupS: number,
  log: (s: string) => void,
  agentCommand: string[],
): Promise<Row> {
  const intervalMs = Math.round(1000 / hz);
  const engines = defaultEngines();
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1
agents: { interval: ${intervalMs}ms }
services:
  - name: cost
    engine: memory
    address: tcp 127.0.0.1:${ports.services[0]}
    servers:
      - { node: cost, address: "127.0.0.1:${ports.services[0]}" }
`,
    '<agent-cost policy>',
    engines.limits(),
  );
  const poller = new Poller({
    listen: '127.0.0.1:0',
    policy,
    engines,
    strategies: defaultStrategies(),
    logger: pino({ level: 'silent' }),
    security: { credentials: grpc.ServerCredentials.createInsecure(), auth: { tokens: new Map(), mutualTls: false, allowPlaintext: false } },
  });
  const port = await poller.start();
  const agent = children.spawn('agent', process.execPath, [...agentCommand, '--poller', `127.0.0.1:${port}`, '--node-id', 'cost', '--scope', 'host', ...ports.services.slice(0, holdersFor(connections)).flatMap((p, i) => ['--service', `http${i}:${p}`]), '--interval', `${intervalMs}ms`, ...(earlyChange === 'default' ? [] : ['--early-change', earlyChange])], { stdio: ['ignore', 'ignore', 'pipe'] });
  const floor = children.spawn('floor', process.execPath, [...agentCommand.slice(0, -1), FLOOR, '--poller', `127.0.0.1:${port}`, '--interval-ms', String(intervalMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exporter = children.spawn('node_exporter', NODE_EXPORTER_BIN, [`--web.listen-address=127.0.0.1:${ports.exporter}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let scrapes = 0;
  let scrapeErrors = 0;
  const scrape = (): void => {
    const req = http.get({ host: '127.0.0.1', port: ports.exporter, path: '/metrics', agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) scrapes++;
        else scrapeErrors++;
      });
    });
    req.on('error', () => scrapeErrors++);
  };
  const scraper = setInterval(scrape, intervalMs);
  try {
    const samples = (): number => poller.snapshot().nodes.find((x) => x.id === 'cost')?.samples ?? 0;
    const deadline = performance.now() + 20_000;
    while (samples() < 2 || scrapes < 2) {
      if (performance.now() > deadline) throw new Error(`agent or node_exporter not running: agent: ${agent.stderr()} node_exporter: ${exporter.stderr()}`);
      await sleep(100);
    }
    await firstLine(floor, 20_000);
    await sleep(warmupS * 1000); // warm-up: JIT, start-up garbage, first dumps
    const a0 = processRunUs(agent.child.pid ?? 0);
    const f0 = processRunUs(floor.child.pid ?? 0);
    const e0 = processRunUs(exporter.child.pid ?? 0);
    const s0 = samples();
    const sc0 = scrapes;
    const t0 = performance.now();
    await sleep(windowS * 1000);
    const dt = (performance.now() - t0) * 1000;
    const a1 = processRunUs(agent.child.pid ?? 0);
    const f1 = processRunUs(floor.child.pid ?? 0);
    const e1 = processRunUs(exporter.child.pid ?? 0);
    if (a0 === null || a1 === null || f0 === null || f1 === null || e0 === null || e1 === null) throw new Error('agent, floor or node_exporter exited during the window');
    const agentCpuPct = ((a1 - a0) / dt) * 100;
    const exporterCpuPct = ((e1 - e0) / dt) * 100;
    if (scrapeErrors > 0) log(`${scrapeErrors} scrapes failed`);
    return {
      connections,
      hz,
      earlyChange,
      agentCpuPct,
      floorCpuPct: ((f1 - f0) / dt) * 100,
      agentRssMb: (processRssBytes(agent.child.pid ?? 0) ?? Number.NaN) / 2 ** 20,
      agentPeakRssMb: (processPeakRssBytes(agent.child.pid ?? 0) ?? Number.NaN) / 2 ** 20,
      exporterCpuPct,
      exporterRssMb: (processRssBytes(exporter.child.pid ?? 0) ?? Number.NaN) / 2 ** 20,
      ratio: agentCpuPct / exporterCpuPct,
      samples: samples() - s0,
      scrapes: scrapes - sc0,
    };
  } finally {
    clearInterval(scraper);
    await Promise.all([children.stop(agent), children.stop(floor), children.stop(exporter)]);
    await poller.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:agent-cost failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
