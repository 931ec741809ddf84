// Engines by the name policy files use, filled at the composition root from
// the descriptors the engines export (kernel-bridge): the poller knows no
// engine's limits itself.
import type { Engine, EngineDescriptor, EngineOp, Observation, WeightRange } from '@loadfeed/kernel-bridge';
import type { EngineLimits, EnginesConfig } from '../policy/compile.js';

export interface EngineEntry extends EngineLimits {
  readonly kind: string;
  /** A new instance configured from the policy's `engines:` section. */
  readonly create: (config: EnginesConfig) => Engine;
}

export class EngineRegistry {
  private readonly entries = new Map<string, EngineEntry>();

  /** Register an engine by its descriptor; `options` maps the policy's `engines:` section to its options. */
  register<O>(descriptor: EngineDescriptor<O>, options: (config: EnginesConfig) => O): this {
    const { kind, weightRange } = descriptor;
    this.entries.set(kind, {
      ...descriptor,
      create: (config) => {
        const made = descriptor.create(options(config));
        return made instanceof Promise ? deferredEngine(kind, weightRange, made) : made;
      },
    });
    return this;
  }

  get(kind: string): EngineEntry | undefined {
    return this.entries.get(kind);
  }

  /** What policy compile checks engine names, weights and capabilities against. */
  limits(): Map<string, EngineLimits> {
    return new Map([...this.entries].map(([kind, { create: _create, kind: _kind, ...limits }]) => [kind, limits]));
  }
}

/**
 * An engine whose construction is asynchronous (IPVS resolves its netlink
 * family first), usable at once: every call waits for it, and a failed
 * construction fails each call with its error (reported like any engine error).
 */
function deferredEngine(kind: string, weightRange: WeightRange, ready: Promise<Engine>): Engine {
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
