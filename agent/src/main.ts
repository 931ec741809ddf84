/**
 * loadfeed-agent: runs on every real server. It samples the load of its scope
 * (the host, one cgroup, or one process tree) from /proc and /sys and streams
 * it to every configured poller.
 *
 * It must never: spawn a process on the sampling path, write to disk (its
 * status socket, served from memory, is the one file it creates), hold
 * more than the newest sample per poller, or take a noticeable share of the
 * server it measures.
 */
import { readFileSync } from 'node:fs';
import { Scope, type HelloInit } from '@loadfeed/proto';
import { AGENT_USAGE, loadAgentConfig, MAX_INTERVAL_MS, MIN_INTERVAL_MS, type AgentConfig } from './config.js';
import { PollerStream } from './reporter.js';
import { loadTransport, type Transport } from './transport.js';
import { collectFacts } from './facts.js';
import { createSampler, type Sampler } from './sampler.js';
import { ReportGate } from './report-gate.js';
import type { Reading } from './reading.js';
import { formatLogRecord } from './log-line.js';
import { agentStatusMain } from './status-cli.js';
import { AgentStatus, AgentStatusSocket } from './status-socket.js';

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
  const sampler = await createSampler({
    scope: config.scope,
    procRoot: config.procRoot,
    sysRoot: config.sysRoot,
    services: config.services,
  });
  if (config.once) return printOnce(config, sampler);
  if (config.pollers.length === 0) {
    sampler.close();
    throw new Error('no poller to stream to: pass --poller HOST:PORT (or LOADFEED_POLLERS), or --once to print one sample');
  }
  let transport;
  try {
    transport = loadTransport(config.transport);
  } catch (err) {
    sampler.close();
    throw err;
  }
  const facts = await collectFacts();
  return run(config, sampler, facts, transport);
}

async function printOnce(config: AgentConfig, sampler: Sampler): Promise<number> {
  await delay(config.intervalMs);
  const reading = await sampler.sample();
  sampler.close();
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
    '',
  ].join('\n');
}

function run(config: AgentConfig, sampler: Sampler, facts: Awaited<ReturnType<typeof collectFacts>>, transport: Transport): Promise<number> {
  let intervalMs = config.intervalMs;
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
    intervalMs,
  });
  const pretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stderr.isTTY === true);
  const log = (line: Record<string, unknown>): void => {
    process.stderr.write(formatLogRecord({ time: new Date().toISOString(), node: config.nodeId, ...line }, pretty));
  };
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
    () => intervalMs,
  );
  const streams = config.pollers.map(
    (target) =>
      new PollerStream(target, hello, {
        onInterval: (ms) => {
          const next = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, ms));
          if (next === intervalMs) return;
          log({ msg: 'sampling interval changed by poller', from: intervalMs, to: next, poller: target });
          intervalMs = next;
          reschedule();
        },
        onState: (poller, state, detail) => {
          status.streamState(poller, state, detail);
          log({ msg: `stream ${state}`, poller, detail });
        },
      }, transport),
  );
  let reschedule = (): void => undefined;
  for (const s of streams) s.start();
  const socket = config.statusSocket === null ? null : new AgentStatusSocket(config.statusSocket, () => status.document(), log);
  socket?.start().catch((err: unknown) => log({ msg: 'status socket off', error: (err as Error).message }));

  const gate = new ReportGate(config.earlyChange);
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    const watchMs = (): number => gate.watchMs(intervalMs, MIN_INTERVAL_MS);
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
        const reading = gate.offer(await sampler.sample(), intervalMs);
        if (reading !== null) {
          const now = Date.now();
          status.sampled(reading, now);
          for (const s of streams) status.offered(s.target, s.send(reading, now));
        }
      } catch (err) {
        // The scope itself is gone (process exited, cgroup removed): nothing
        // left to measure, so stop and let the poller quiesce this node.
        log({ msg: 'sampling failed; stopping', error: (err as Error).message });
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
      sampler.close();
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
