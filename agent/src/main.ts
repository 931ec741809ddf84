/**
 * loadfeed-agent: runs on every real server. It samples the load of its scope
 * (the host, one cgroup, or one process tree) from /proc and /sys and streams
 * it to every configured poller.
 *
 * It must never: spawn a process on the sampling path, write to disk (its
 * status socket and, when asked for, the application's push socket are the
 * only files it creates), wait on the application it measures (its metrics
 * sources fetch on their own timers and the sampling tick copies what they
 * hold), hold
 * more than the newest sample per poller, or take a noticeable share of the
 * server it measures.
 */
import { readFileSync } from 'node:fs';
import { Scope, type HelloInit } from '@loadfeed/proto';
import { AGENT_USAGE, appSourcesConfigured, loadAgentConfig, MAX_INTERVAL_MS, MIN_INTERVAL_MS, type AgentConfig, type AppMetricsConfig } from './config.js';
import { PollerStream } from './reporter.js';
import { loadOrcaChannel, loadTransport, type Transport } from './transport.js';
import { collectFacts } from './facts.js';
import { createSampler, type Sampler } from './sampler.js';
import { ReportGate } from './report-gate.js';
import type { Reading } from './reading.js';
import { formatLogRecord } from './log-line.js';
import { agentStatusMain } from './status-cli.js';
import { AgentStatus, AgentStatusSocket } from './status-socket.js';
import { AppMetrics } from './app/metrics.js';
import { OrcaSource } from './app/orca-source.js';
import { PrometheusSource } from './app/prometheus-source.js';
import { PushSource } from './app/push-socket.js';
import type { AppSource } from './app/source.js';
import { formatAppReading } from './status-cli.js';

// By package name (a self-reference), not a relative path: the same line works
// in the workspace build and in the packed tarball's bundle.
const VERSION = (JSON.parse(readFileSync(new URL(import.meta.resolve('@loadfeed/agent/package.json')), 'utf8')) as { version: string }).version;

const SCOPE_ENUM = { host: Scope.SCOPE_HOST, cgroup: Scope.SCOPE_CGROUP, process: Scope.SCOPE_PROCESS } as const;

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv[0] === 'status') return agentStatusMain(argv.slice(1), env);
  const { help, config } = loadAgentConfig(argv, env);
  if (help || !config) {
    process.stdout.write(AGENT_USAGE);
    return 0;
  }
  // The poller may change the interval; the sources read it when they schedule.
  const interval = { ms: config.intervalMs };
  // Without an application source only the CPU can report early: --early-change 0 then means one look per interval, not four.
  const gate = new ReportGate(config.earlyChange, appSourcesConfigured(config.app) ? config.earlyAppChange : 0);
  // ORCA reports are asked for at the watch rate, so the gate sees a move within a window; a scrape costs the application more, so Prometheus stays at the interval.
  const app = createAppMetrics(config.app, () => interval.ms, () => gate.watchMs(interval.ms, MIN_INTERVAL_MS), log(config));
  let sampler: Sampler;
  try {
    sampler = await createSampler({
      scope: config.scope,
      procRoot: config.procRoot,
      sysRoot: config.sysRoot,
      services: config.services,
      app,
    });
  } catch (err) {
    app.close();
    throw err;
  }
  app.start();
  const stopAll = (): void => {
    sampler.close();
    app.close();
  };
  if (config.once) return printOnce(config, sampler, stopAll);
  if (config.pollers.length === 0) {
    stopAll();
    throw new Error('no poller to stream to: pass --poller HOST:PORT (or LOADFEED_POLLERS), or --once to print one sample');
  }
  let transport;
  try {
    transport = loadTransport(config.transport);
  } catch (err) {
    stopAll();
    throw err;
  }
  const facts = await collectFacts();
  return run(config, sampler, app, gate, stopAll, interval, facts, transport);
}

function createAppMetrics(c: AppMetricsConfig, intervalMs: () => number, watchMs: () => number, log: (line: Record<string, unknown>) => void): AppMetrics {
  const sources: AppSource[] = [];
  if (c.orca !== null) sources.push(new OrcaSource(c.orca, watchMs, c.ttlMs, loadOrcaChannel(c.orcaTls)));
  if (c.prometheus !== null) sources.push(new PrometheusSource(c.prometheus, c.series, intervalMs, c.ttlMs));
  if (c.pushSocket !== null) sources.push(new PushSource(c.pushSocket, c.ttlMs, log));
  return new AppMetrics(sources);
}

function log(config: AgentConfig): (line: Record<string, unknown>) => void {
  const pretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stderr.isTTY === true);
  return (line) => {
    process.stderr.write(formatLogRecord({ time: new Date().toISOString(), node: config.nodeId, ...line }, pretty));
  };
}

async function printOnce(config: AgentConfig, sampler: Sampler, stopAll: () => void): Promise<number> {
  await delay(config.intervalMs);
  const reading = await sampler.sample();
  stopAll();
  const out = { nodeId: config.nodeId, scope: config.scope.kind, capacity: sampler.capacity, timestampMs: Date.now(), ...reading };
  process.stdout.write(config.json ? `${JSON.stringify(out)}\n` : formatReading(out));
  return 0;
}

function formatReading(r: Reading & { nodeId: string; scope: string }): string {
  const pct = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
  return [
    `node ${r.nodeId} (${r.scope} scope)`,
    `cpu ${pct(r.cpuUtilization)}  memory ${pct(r.memUtilization)}  load1 ${r.load1 ?? '-'}  runnable ${r.runnable ?? '-'}`,
    `psi cpu ${pct(r.psiCpuSome)}  memory ${pct(r.psiMemorySome)}  io ${pct(r.psiIoSome)}`,
    `tcp in use ${r.tcpInuse ?? '-'}  established ${r.tcpEstablished ?? '-'}`,
    ...r.services.map((s) => `service ${s.name}: ${s.established ?? '-'} established`),
    ...formatAppReading(r),
    '',
  ].join('\n');
}

function run(
  config: AgentConfig,
  sampler: Sampler,
  app: AppMetrics,
  gate: ReportGate,
  stopAll: () => void,
  interval: { ms: number },
  facts: Awaited<ReturnType<typeof collectFacts>>,
  transport: Transport,
): Promise<number> {
  const hello = (): HelloInit => ({
    nodeId: config.nodeId,
    hostname: facts.hostname,
    addresses: facts.addresses,
    cores: sampler.capacity.cores,
    memoryBytes: sampler.capacity.memoryBytes,
    labels: { ...config.labels },
    services: config.services.map((s) => ({ name: s.name, port: s.port })),
    agentVersion: VERSION,
    scope: SCOPE_ENUM[config.scope.kind],
    cpuModel: facts.cpuModel,
    intervalMs: interval.ms,
  });
  const write = log(config);
  const t = config.transport;
  const status = new AgentStatus(
    {
      nodeId: config.nodeId,
      agentVersion: VERSION,
      scope: config.scope,
      capacity: sampler.capacity,
      services: config.services,
      labels: config.labels,
      transport: { security: t.tlsCa === null ? 'plaintext' : t.tlsCert === null ? 'tls' : 'mutual-tls', token: t.tokenFile !== null },
    },
    config.pollers,
    () => interval.ms,
    app.configured ? () => app.status(Date.now()) : null,
  );
  const streams = config.pollers.map(
    (target) =>
      new PollerStream(target, hello, {
        onInterval: (ms) => {
          const next = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, ms));
          if (next === interval.ms) return;
          write({ msg: 'sampling interval changed by poller', from: interval.ms, to: next, poller: target });
          interval.ms = next;
          reschedule();
        },
        onState: (poller, state, detail) => {
          status.streamState(poller, state, detail);
          write({ msg: `stream ${state}`, poller, detail });
        },
      }, transport),
  );
  let reschedule = (): void => undefined;
  for (const s of streams) s.start();
  const socket = config.statusSocket === null ? null : new AgentStatusSocket(config.statusSocket, () => status.document(), write);
  socket?.start().catch((err: unknown) => write({ msg: 'status socket off', error: (err as Error).message }));

  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    const watchMs = (): number => gate.watchMs(interval.ms, MIN_INTERVAL_MS);
    let due = performance.now() + watchMs();
    let stopping = false;
    // A shorter interval from the poller takes effect now, not after the
    // long wait already scheduled.
    reschedule = (): void => {
      if (!timer) return;
      clearTimeout(timer);
      due = Math.min(due, performance.now() + watchMs());
      timer = setTimeout(() => void tick(), Math.max(0, due - performance.now()));
    };
    const tick = async (): Promise<void> => {
      timer = null;
      try {
        const window = await sampler.watch();
        // Read once: the gate judges the values the report then carries.
        const values = app.configured ? app.read(Date.now()) : undefined;
        const cpu = gate.offer(window, interval.ms, values ?? null);
        if (cpu !== null) {
          const reading = await sampler.report(cpu, values);
          const now = Date.now();
          status.sampled(reading, now);
          for (const s of streams) status.offered(s.target, s.send(reading, now));
        }
      } catch (err) {
        // The scope itself is gone (process exited, cgroup removed): nothing
        // left to measure, so stop and let the poller quiesce this node.
        write({ msg: 'sampling failed; stopping', error: (err as Error).message });
        stop(1);
        return;
      }
      if (!stopping) {
        due = performance.now() + watchMs();
        timer = setTimeout(() => void tick(), watchMs());
      }
    };
    const stop = (code: number): void => {
      if (stopping) return;
      stopping = true;
      if (timer) clearTimeout(timer);
      for (const s of streams) s.close();
      socket?.close();
      stopAll();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(code);
    };
    const onSignal = (): void => stop(0);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    timer = setTimeout(() => void tick(), watchMs());
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
