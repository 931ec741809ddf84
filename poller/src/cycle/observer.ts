/** One weight change, exactly as logged ("weight changed"). */
export interface WeightChangeEvent {
  /** Wall-clock ms. */
  readonly at: number;
  readonly service: string;
  readonly server: string;
  readonly node: string | null;
  readonly from: number | null;
  readonly to: number;
  readonly state: string;
  readonly reason: string;
}

/** Hooks for the status server (metrics, dashboard): called synchronously from the loop, so they must be cheap. */
export interface PollerObserver {
  weightChanged?(change: WeightChangeEvent): void;
  /**
   * A cycle's weights are in the engines: ms since the oldest node event
   * (sample, liveness change) it acted on; it acted on every event before
   * `evaluatedAt` (performance.now()).
   */
  weightsApplied?(ingestToWeightMs: number, evaluatedAt: number): void;
  /** One `Engine.apply` batch, its duration and whether it succeeded. */
  engineApplied?(engine: string, ops: number, ms: number, ok: boolean): void;
  /** A policy reload took effect (true) or was refused (false). */
  policyReloaded?(ok: boolean): void;
}

/** Notify observers; a throwing one never breaks the loop: it is reported and the cycle goes on. */
export type Notify = (call: (o: PollerObserver) => void) => void;
