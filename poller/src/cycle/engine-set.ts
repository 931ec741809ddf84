// The engine instances a poller drives, made on first use from the policy's
// `engines:` settings, with what the cycle keeps per engine: whether its
// weights were adopted, its reconciler and its state as last read plus the
// ops applied since.
import type { Engine, Observation } from '@loadfeed/kernel-bridge';
import type { Logger } from 'pino';
import type { CompiledPolicy } from '../policy/compile.js';
import { getOrCreate } from '../util/maps.js';
import type { EngineRegistry } from './engines.js';
import { Reconciler } from './reconcile.js';

export class EngineSet {
  private readonly engines = new Map<string, Engine>();
  /** The settings each engine instance was made with. */
  private readonly configs = new Map<string, string>();
  /** Engines whose weights were adopted already. */
  readonly adopted = new Set<string>();
  private readonly reconcilers = new Map<string, Reconciler>();
  /** Each engine's state as last read plus the ops applied since. */
  readonly state = new Map<string, Observation>();

  constructor(
    private readonly registry: EngineRegistry,
    private readonly logger: Logger,
  ) {}

  /** The engine instance serving `kind`, created on first use from `policy`'s `engines:` settings. */
  get(kind: string, policy: CompiledPolicy): Engine {
    let engine = this.engines.get(kind);
    if (!engine) {
      const entry = this.registry.get(kind);
      if (!entry) throw new Error(`engine "${kind}" is not registered`);
      engine = entry.create(policy.engines);
      this.engines.set(kind, engine);
      this.configs.set(kind, JSON.stringify(policy.engines[kind as keyof CompiledPolicy['engines']] ?? null));
    }
    return engine;
  }

  reconciler(kind: string): Reconciler {
    return getOrCreate(this.reconcilers, kind, () => new Reconciler());
  }

  /**
   * A reload that changed an engine's settings replaces its instance: the
   * old one is closed, the new one adopts what the engine has (like a start).
   */
  async refresh(policy: CompiledPolicy): Promise<void> {
    for (const [kind, engine] of [...this.engines]) {
      const config = JSON.stringify(policy.engines[kind as keyof CompiledPolicy['engines']] ?? null);
      if (config === this.configs.get(kind)) continue;
      this.engines.delete(kind);
      this.adopted.delete(kind);
      this.reconcilers.delete(kind);
      this.state.delete(kind);
      this.logger.info({ engine: kind }, 'engine settings changed: reconnecting');
      await engine.close();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.engines.values()].map((e) => e.close()));
    this.engines.clear();
  }
}
