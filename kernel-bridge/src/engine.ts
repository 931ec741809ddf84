import type { EngineOp, Observation, WeightRange } from './model.js';

/**
 * A forwarding engine the poller writes weights into. Engines never interpret
 * metrics: they are told what to set and report what they have.
 *
 * Contract every engine passes (test/kernel-bridge/engine-contract.test.ts):
 * - `observe()` reports every service and destination the engine has, with the
 *   weights now in force.
 * - `apply(ops)` applies the whole batch in order; re-applying the same batch
 *   changes nothing; an op naming an unknown service or destination rejects
 *   with `UnknownTargetError` and the ops before it stay applied.
 * - Weight 0 means: no new connections, existing ones continue.
 * - A weight outside `weightRange` or not an integer rejects with
 *   `WeightRangeError` before anything in the batch is applied.
 */
export interface Engine {
  /** The name policy files use for this engine (`fastpath`, `memory`, …). */
  readonly kind: string;
  /** Integer weights the engine accepts, inclusive. */
  readonly weightRange: WeightRange;
  observe(): Promise<Observation>;
  apply(ops: readonly EngineOp[]): Promise<void>;
  /** Release every socket, timer and handle the engine holds. */
  close(): Promise<void>;
}
