// Engines by the name policy files use, filled at the composition root.
import type { Engine, EngineOp, Observation, WeightRange } from '@loadfeed/kernel-bridge';
import type { EngineLimits, EnginesConfig } from '../policy/compile.js';

export interface EngineEntry extends EngineLimits {
  /** A new instance configured from the policy's `engines:` section. */
  readonly create: (config: EnginesConfig) => Engine;
}

export class EngineRegistry {
  private readonly entries = new Map<string, EngineEntry>();

  register(kind: string, entry: EngineEntry): this {
    this.entries.set(kind, entry);
    return this;
  }

  get(kind: string): EngineEntry | undefined {
    return this.entries.get(kind);
  }

  /** What policy compile checks engine names, weights and capabilities against. */
  limits(): Map<string, EngineLimits> {
    return new Map([...this.entries].map(([kind, { create: _create, ...limits }]) => [kind, limits]));
  }
}

/**
 * An engine whose construction is asynchronous (IPVS resolves its netlink
 * family first), usable at once: every call waits for it, and a failed
 * construction fails each call with its error (reported like any engine error).
 */
export function deferredEngine(kind: string, weightRange: WeightRange, ready: Promise<Engine>): Engine {
  ready.catch(() => undefined); // surfaced by the calls below
  return {
    kind,
    weightRange,
    observe: async (): Promise<Observation> => (await ready).observe(),
    apply: async (ops: readonly EngineOp[]): Promise<void> => (await ready).apply(ops),
    close: async (): Promise<void> => {
      const engine = await ready.catch(() => null);
      await engine?.close();
    },
  };
}
