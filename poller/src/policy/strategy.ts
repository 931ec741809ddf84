// A strategy turns the latest metrics of a service's live servers into
// scores: non-negative numbers proportional to the share of new traffic each
// should get. Everything around it (guards, smoothing, scaling, clamps, slow
// start, deadband) is the evaluator's, so every strategy gets the same
// wrappers. Strategies may keep state between evaluations (orca, pid, capacity).
import { compileFromCatalog, compileMetricValues, METRICS, type MetricSource, type MetricValues } from '@loadfeed/proto';
import type { Variables } from './expression.js';
import type { StrategyConfig } from './compile.js';
import { NotRegisteredError } from '../errors.js';

/** A server's latest figures: every catalogued sample metric (see METRICS) plus the node's capacity. */
export interface NodeMetrics extends MetricValues {
  /** CPU capacity of the agent's scope, cores. */
  readonly cores: number;
  readonly memoryBytes: number;
  /** Established connections on this service's port (the agent's count), or null. */
  readonly connections: number | null;
  /** Named application metrics (Sample.named_metrics); empty while the application reports none. */
  readonly app: Readonly<Record<string, number>>;
}

export interface ServerInput {
  /** The destination address: the key of this server's state. */
  readonly key: string;
  readonly nodeId: string;
  readonly metrics: NodeMetrics;
  /** Changes whenever a new sample arrived (stream start + sequence number). */
  readonly sampleId: string;
  /** Poller-clock ms the latest sample arrived. */
  readonly sampleAt: number;
  /** How long a span the latest sample covers, ms (rates and utilisations are its averages). */
  readonly windowMs: number;
  /** Poller-clock ms the node's current stream started. */
  readonly connectedAt: number;
}

export interface Score {
  /** >= 0; null = no usable data for this server now: it gets the service mean. */
  readonly score: number | null;
  /** Which metric decided, e.g. "cpu 0.72 of 2 cores". */
  readonly reason: string;
  /**
   * The strategy tells a change from noise (capacity): this score moved beyond
   * what its inputs' noise explains. A falling one then skips the smoothing,
   * which is there for noise; a rising one keeps it (recover carefully).
   */
  readonly change?: boolean;
}

export interface Strategy<C extends StrategyConfig = StrategyConfig, S = unknown> {
  readonly name: C['name'];
  /**
   * Each score is a function of the config and that server's own samples
   * alone (the state holds only what the config compiles to, or what each
   * server's samples taught, keyed by server): the evaluator keeps a
   * server's score until its next sample, and passes `weigh` only the
   * servers whose score it needs.
   */
  readonly perServer?: boolean;
  createState(config: C): S;
  /** Scores in the order of `servers`. */
  weigh(config: C, servers: readonly ServerInput[], state: S, now: number): Score[];
}

/** Strategies by the name policy files use; filled at the composition root. */
export class StrategyRegistry {
  private readonly byName = new Map<string, Strategy>();

  register<C extends StrategyConfig, S>(strategy: Strategy<C, S>): this {
    this.byName.set(strategy.name, strategy as unknown as Strategy);
    return this;
  }

  get(name: string): Strategy {
    const s = this.byName.get(name);
    if (!s) throw new NotRegisteredError(`strategy "${name}" is not registered`);
    return s;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }
}

/** A server's metrics from its sample and its node (see compileMetricValues). */
export const nodeMetrics = compileMetricValues<(sample: MetricSource, cores: number, memoryBytes: number, connections: number | null, app: Readonly<Record<string, number>>) => NodeMetrics>(
  ['s', 'cores', 'memoryBytes', 'connections', 'app'],
  'cores, memoryBytes, connections, app',
);

/** Expression variables of a server's metrics: one object literal compiled from the catalog, as compileMetricValues is, and for the same reason. */
export const variablesOf = compileFromCatalog(
  () =>
    new Function(
      'm',
      `return { cores: m.cores, memory_bytes: m.memoryBytes, connections: m.connections, ${METRICS.map((x) => `${JSON.stringify(x.variable)}: m[${JSON.stringify(x.field)}]`).join(', ')}, app: m.app };`,
    ) as (m: NodeMetrics) => Variables,
);

export function fmt(x: number): string {
  return Number(x.toPrecision(3)).toString();
}
