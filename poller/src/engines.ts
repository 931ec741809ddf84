// Engines by the name policy files use, filled at the composition root.
import type { Engine } from '@loadfeed/kernel-bridge';

export interface EngineEntry {
  readonly create: () => Engine;
  /** Highest weight the engine accepts (policy compile checks against it). */
  readonly maxWeight: number;
  /** The poller creates the services it names (fast path, memory) instead of adopting existing ones. */
  readonly ownsServices: boolean;
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

  /** What policy compile checks engine names and weights against. */
  limits(): Map<string, { maxWeight: number }> {
    return new Map([...this.entries].map(([kind, e]) => [kind, { maxWeight: e.maxWeight }]));
  }
}
