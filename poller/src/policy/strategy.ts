// A strategy turns one node's latest metrics into a score: a non-negative
// number proportional to the share of new traffic the node should get. The
// wrappers around it (smoothing, clamps, scaling) live in `evaluate.ts`.
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
}

export interface Score {
  readonly score: number;
  /** Which metric decided, for logs and `policy simulate` (e.g. "cpu 0.72 of 2 cores"). */
  readonly reason: string;
}

export interface Strategy<C extends StrategyConfig = StrategyConfig> {
  readonly name: C['name'];
  score(config: C, metrics: NodeMetrics): Score;
}

/** Strategies by the name policy files use; filled at the composition root. */
export class StrategyRegistry {
  private readonly byName = new Map<string, Strategy>();

  register(strategy: Strategy): this {
    this.byName.set(strategy.name, strategy);
    return this;
  }

  get(name: string): Strategy {
    const s = this.byName.get(name);
    if (!s) throw new Error(`strategy "${name}" is not registered`);
    return s;
  }
}
