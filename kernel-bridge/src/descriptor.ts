// What an engine is and can do, told by the engine itself: whoever composes
// engines (the poller's registry, policy checks) asks this and hard-codes
// nothing. A new engine exports one EngineDescriptor beside its factory.
import type { Engine } from './engine.js';
import type { WeightRange } from './model.js';

export interface EngineDescriptor<O> {
  /** The name configuration files use (`engine: fastpath`). */
  readonly kind: string;
  /** Weights the engine accepts; the policy's `weights.max` must fit. */
  readonly weightRange: WeightRange;
  /** Why the engine cannot take scheduler `name`, or null when it can; absent: it takes any name. */
  readonly checkScheduler?: (name: string) => string | null;
  /**
   * Schedulers that restart their cycle on every weight update (IPVS wrr):
   * there coarse weight steps keep small changes from being written at all.
   */
  readonly coarseSchedulers?: readonly string[];
  /** Whether it has per-server connection limits (a policy's `connectionLimit`). */
  readonly connectionLimits: boolean;
  /** Whether its services are the caller's by default (created and removed by it). */
  readonly ownsServicesByDefault: boolean;
  /** Whether it can create services at all (HAProxy backends live in haproxy.cfg). */
  readonly canCreateServices: boolean;
  /** A new instance from its options (asynchronous for engines that must resolve something first). */
  readonly create: (options: O) => Engine | Promise<Engine>;
}
