// A strategy turns the latest metrics of a service's live servers into
// scores: non-negative numbers proportional to the share of new traffic each
// should get. Everything around it (guards, smoothing, scaling, clamps, slow
// start, deadband) is the evaluator's, so every strategy gets the same
// wrappers. Strategies may keep state between evaluations (orca, pid).
import type { Variables } from './expression.js';
import type { StrategyConfig } from './compile.js';

/** What a strategy may look at: the node's capacity and its latest sample. */
export interface NodeMetrics {
  /** CPU capacity of the agent's scope, cores. */
  readonly cores: number;
  readonly memoryBytes: number;
  readonly cpuUtilization: number;
  readonly memUtilization: number;
  readonly psiCpuSome: number | null;
  readonly psiMemorySome: number | null;
  readonly psiIoSome: number | null;
  readonly load1: number | null;
  readonly runnable: number | null;
  readonly cpuThrottled: number | null;
  /** Established connections on this service's port (the agent's count), or null. */
  readonly connections: number | null;
  /** Host connections accepted per second. */
  readonly acceptsPerSecond: number | null;
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
  /** Poller-clock ms the node's current stream started. */
  readonly connectedAt: number;
}

export interface Score {
  /** >= 0; null = no usable data for this server now: it gets the service mean. */
  readonly score: number | null;
  /** Which metric decided, e.g. "cpu 0.72 of 2 cores". */
  readonly reason: string;
}

export interface Strategy<C extends StrategyConfig = StrategyConfig, S = unknown> {
  readonly name: C['name'];
  /**
   * Each score is a function of the config and that server's metrics alone
   * (the state is only what the config compiles to): the evaluator keeps a
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
    if (!s) throw new Error(`strategy "${name}" is not registered`);
    return s;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }
}

export function variablesOf(m: NodeMetrics): Variables {
  return {
    cpu: m.cpuUtilization,
    mem: m.memUtilization,
    psi_cpu: m.psiCpuSome,
    psi_memory: m.psiMemorySome,
    psi_io: m.psiIoSome,
    load1: m.load1,
    runnable: m.runnable,
    cores: m.cores,
    memory_bytes: m.memoryBytes,
    throttled: m.cpuThrottled,
    connections: m.connections,
    accepts: m.acceptsPerSecond,
  };
}

export function fmt(x: number): string {
  return Number(x.toPrecision(3)).toString();
}
