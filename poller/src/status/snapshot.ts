// The poller's state at one moment, for the status server, the demo and tests.
import { formatHostPort, type XdsClientStatus, type XdsEngine } from '@loadfeed/kernel-bridge';
import { metricReadings, type MetricReadings } from '@loadfeed/proto';
import type { NodeTable } from '../cycle/node-table.js';
import type { CycleRunner } from '../cycle/run.js';
import type { CycleScheduler } from '../cycle/scheduler.js';
import type { PolicyProblem } from '../errors.js';
import type { Ingest } from '../ingest/ingest.js';
import type { CompiledPolicy } from '../policy/compile.js';
import type { WeightDecision } from '../policy/evaluate.js';
import { appMetricsUsed } from '../policy/app-metrics-used.js';

export interface ServiceSnapshot {
  readonly name: string;
  readonly engine: string;
  readonly address: string;
  /** Application metrics its policy reads (appMetricsUsed). */
  readonly appMetrics: readonly string[];
  readonly decisions: readonly WeightDecision[];
}

export interface PolicyStatus {
  readonly file: string;
  /** Wall-clock time the policy in force was loaded. */
  readonly loadedAt: string;
  /** Problems of the last refused file; empty when the newest file is in force. */
  readonly refused: readonly PolicyProblem[];
}

/** The xDS server (engine xds): its clients and what it sent them. */
export interface XdsStatus {
  /** Where it listens, HOST:PORT; null until it does. */
  readonly listen: string | null;
  /** Last publication (one per poller cycle that changed what is served). */
  readonly version: number;
  readonly responses: number;
  readonly nacks: number;
  /** Streams opened since start. */
  readonly streams: number;
  readonly clients: readonly XdsClientStatus[];
}

export interface PollerSnapshot {
  /** `degraded` while the newest policy file is refused, an engine fails or a policy cycle throws. */
  readonly health: 'ok' | 'degraded';
  readonly policy: PolicyStatus;
  /** Each node with every catalogued metric of its latest sample (METRICS; null before the first). */
  readonly nodes: readonly (MetricReadings & {
    readonly id: string;
    readonly state: string;
    readonly cores: number;
    /** Samples accepted on the node's current stream. */
    readonly samples: number;
    readonly hostname: string;
    readonly addresses: readonly string[];
    readonly memoryBytes: number;
    readonly agentVersion: string;
    /** The agent's drain reason while it asked to be drained, else null. */
    readonly drained: string | null;
    /** Age of the latest sample, ms; null before the first. */
    readonly sampleAgeMs: number | null;
    /** The agent's services with their established connections (null: not counted). */
    readonly services: readonly { readonly name: string; readonly port: number; readonly established: number | null }[];
    /** Named application metrics of the latest sample (the catalogued ones are above); empty when none. */
    readonly namedMetrics: Readonly<Record<string, number>>;
  })[];
  readonly services: readonly ServiceSnapshot[];
  readonly engineError: string | null;
  /** Why the last policy cycle failed (the engines keep the last weights written), or null when it succeeded. */
  readonly cycleError: string | null;
  /** Policy cycles that failed since start. */
  readonly cycleFailures: number;
  /** Agent messages accepted; messages, streams and connections refused by reason (e.g. `auth`, `sample.seq`, `oversize`); connections without a Hello yet. */
  readonly ingest: { readonly accepted: number; readonly rejected: Readonly<Record<string, number>>; readonly pendingConnections: number };
  /** Drift found in engines since start: weights changed outside loadfeed, services an engine lost. */
  readonly driftEvents: number;
  /** Null unless the xds engine runs. */
  readonly xds: XdsStatus | null;
}

export interface SnapshotSources {
  readonly table: NodeTable;
  readonly policy: CompiledPolicy;
  readonly policyStatus: PolicyStatus;
  readonly cycle: CycleRunner;
  readonly scheduler: CycleScheduler;
  readonly ingest: Ingest;
  readonly xds: XdsEngine | null;
}

export function takeSnapshot({ table, policy, policyStatus, cycle, scheduler, ingest, xds }: SnapshotSources): PollerSnapshot {
  return {
    health: cycle.engineError !== null || scheduler.cycleError !== null || policyStatus.refused.length > 0 ? 'degraded' : 'ok',
    policy: policyStatus,
    nodes: [...table.all()].map((n) => ({
      id: n.id,
      state: n.state,
      ...metricReadings(n.sample),
      cores: n.hello.cores,
      samples: n.samples,
      hostname: n.hello.hostname,
      addresses: n.hello.addresses,
      memoryBytes: n.hello.memoryBytes,
      agentVersion: n.hello.agentVersion,
      drained: n.drained,
      sampleAgeMs: n.sample ? Math.max(0, performance.now() - n.sampleAt) : null,
      services: n.hello.services.map((s) => ({
        // Decoded messages have every field set; pbts types nested ones by their init shape.
        name: s.name ?? '',
        port: s.port ?? 0,
        established: n.sample?.services.find((x) => x.name === s.name)?.established ?? null,
      })),
      namedMetrics: { ...n.sample?.namedMetrics },
    })),
    services: policy.services.map((s) => ({
      name: s.name,
      engine: s.engine,
      address: s.address,
      appMetrics: appMetricsUsed(s),
      decisions: cycle.decisions.get(s.name) ?? [],
    })),
    engineError: cycle.engineError,
    cycleError: scheduler.cycleError,
    cycleFailures: scheduler.cycleFailures,
    ingest: { accepted: ingest.counters.accepted, rejected: Object.fromEntries(ingest.counters.rejected), pendingConnections: ingest.pendingConnections() },
    driftEvents: cycle.driftEvents,
    xds: xds === null ? null : xdsStatus(xds),
  };
}

function xdsStatus(engine: XdsEngine): XdsStatus {
  let listen: string | null = null;
  try {
    listen = formatHostPort(engine.boundAddress());
  } catch {
    // not listening yet
  }
  const { version, responses, nacks, streams } = engine.counts();
  return { listen, version, responses, nacks, streams, clients: engine.clients() };
}
