// The engine instances a poller drives, made on first use from the policy's
// `engines:` settings, with what the cycle keeps per engine: whether its
// weights were adopted, its reconciler and its state as last read plus the
// ops applied since.
import type { Engine, Observation } from '@loadfeed/kernel-bridge';
import type { Logger } from 'pino';
import type { CompiledPolicy, EnginesConfig } from '../policy/compile.js';
import { getOrCreate } from '../util/maps.js';
import type { EngineRegistry } from './engines.js';
import { Reconciler } from './reconcile.js';
import { NotRegisteredError } from '../errors.js';

export class EngineSet {
  private readonly engines = new Map<string, Engine>();
  /** The settings each engine instance was made with. */
  private readonly configs = new Map<string, string>();
  /** Engines whose weights were adopted already. */
  readonly adopted = new Set<string>();
  private readonly reconcilers = new Map<string, Reconciler>();
  /** Each engine's state as last read plus the ops applied since. */
  readonly state = new Map<string, Observation>();
  /** The policy's `engines:` settings, which new instances are made with. */
  private settings: EnginesConfig;
  /** Engines whose settings the newest policy changed: replaced at the next cycle's start. */
  private readonly changed = new Set<string>();

  constructor(
    private readonly registry: EngineRegistry,
    private readonly logger: Logger,
    policy: CompiledPolicy,
  ) {
    this.settings = policy.engines;
  }

  /** The engine instance serving `kind`, created on first use from the policy's `engines:` settings. */
  get(kind: string): Engine {
    let engine = this.engines.get(kind);
    if (!engine) {
      const entry = this.registry.get(kind);
      if (!entry) throw new NotRegisteredError(`engine "${kind}" is not registered`);
      engine = entry.create(this.settings);
      this.engines.set(kind, engine);
      this.configs.set(kind, settingsOf(this.settings, kind));
    }
    return engine;
  }

  /** The instance serving `kind` if one was made; never makes one (for status). */
  existing(kind: string): Engine | undefined {
    return this.engines.get(kind);
  }

  /** A new policy: its engine settings are compared with each instance's, once, here. */
  setPolicy(policy: CompiledPolicy): void {
    this.settings = policy.engines;
    for (const kind of this.engines.keys()) {
      if (settingsOf(policy.engines, kind) !== this.configs.get(kind)) this.changed.add(kind);
    }
  }

  reconciler(kind: string): Reconciler {
    return getOrCreate(this.reconcilers, kind, () => new Reconciler());
  }

  /**
   * A reload that changed an engine's settings replaces its instance: the
   * old one is closed, the new one adopts what the engine has (like a start).
   * Runs at a cycle's start, so a cycle never sees an instance change under it.
   */
  async replaceChanged(): Promise<void> {
    for (const kind of [...this.changed]) {
      this.changed.delete(kind);
      const engine = this.engines.get(kind);
      if (!engine) continue;
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

/** One engine's settings in a comparable form. */
function settingsOf(settings: EnginesConfig, kind: string): string {
  return JSON.stringify(settings[kind as keyof EnginesConfig] ?? null);
}
