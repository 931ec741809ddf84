// One cycle, in data-path order: read the engines (adopting their weights on
// first contact), evaluate the dirty services' policies against the node
// table, reconcile with what the engines hold (drift), plan the operations
// and apply them in one batch per engine. A full cycle evaluates every
// server and plans every destination; the others evaluate only the servers
// with news and plan only the destinations whose decision changed, plus a
// slice of the current resync: services evaluated afresh and planned whole,
// as in a full cycle, against engines read afresh when the resync began.
import type { Engine, Observation } from '@loadfeed/kernel-bridge';
import type { Logger } from 'pino';
import type { CompiledPolicy, CompiledService } from '../policy/compile.js';
import type { WeightDecision, WeightEvaluator } from '../policy/evaluate.js';
import { getOrCreate } from '../util/maps.js';
import type { EngineSet } from './engine-set.js';
import type { NodeRecord, NodeTable } from './node-table.js';
import type { Notify } from './observer.js';
import { afterOps, plan, type DesiredService } from './planner.js';
import type { DriftEvent } from './reconcile.js';
import type { CycleOutcome } from './scheduler.js';

const NO_NEWS: ReadonlySet<NodeRecord> = new Set();
/**
 * A resync's slice per cycle: services of about this many servers in all.
 * A full pass over 10,000 servers held the loop for 20–30 ms every
 * `reconcile.every`, and the samples arriving meanwhile waited; a slice costs
 * about a millisecond, and a fleet of 10,000 is through in 20 cycles.
 */
export const RESYNC_SLICE_SERVERS = 500;

export interface CycleRunnerOptions {
  readonly table: NodeTable;
  readonly evaluator: WeightEvaluator;
  readonly engines: EngineSet;
  readonly logger: Logger;
  readonly notify: Notify;
}

export class CycleRunner {
  /** The last decisions per service, in policy order. */
  decisions = new Map<string, readonly WeightDecision[]>();
  /** The engines' errors of the last cycle, joined; null when every engine applied. */
  engineError: string | null = null;
  /** Drift found in engines since start (weights changed outside loadfeed, lost services). */
  driftEvents = 0;
  /** Services whose last plan was cut short (reconcile.maxOpsPerCycle). */
  private readonly unfinished = new Set<string>();
  /** Services the current resync has yet to handle. */
  private readonly resync = new Set<string>();

  constructor(private readonly o: CycleRunnerOptions) {}

  /**
   * One cycle: every service when `full`; else the `dirty` ones and the next
   * slice of the resync, which `resync` starts anew (engines read afresh).
   */
  async run(policy: CompiledPolicy, full: boolean, resync: boolean, dirty: ReadonlySet<string>, news: ReadonlyMap<string, ReadonlySet<NodeRecord>>): Promise<CycleOutcome> {
    const { engines, logger } = this.o;
    await engines.replaceChanged();
    const slice = this.slice(policy, full, resync);
    const services = full ? policy.services : policy.services.filter((s) => dirty.has(s.name) || slice.has(s.name));
    const errors: string[] = [];
    const again: string[] = [];
    const fail = (kind: string, err: unknown): void => {
      errors.push(`${kind}: ${(err as Error).message}`);
      logger.error({ engine: kind, err }, 'engine apply failed');
    };
    // Read every engine first: on first contact its weights are adopted
    // before anything is evaluated, so a restart starts from what the engine has.
    const observed = new Map<string, Observation>();
    for (const kind of new Set(services.map((s) => s.engine))) {
      const known = full ? undefined : engines.state.get(kind);
      if (known) {
        observed.set(kind, known);
        continue;
      }
      try {
        const seen = await engines.get(kind).observe();
        if (!engines.adopted.has(kind)) {
          this.adopt(policy, kind, seen);
          engines.reconciler(kind).adopt(seen);
          engines.adopted.add(kind);
        }
        observed.set(kind, seen);
      } catch (err) {
        fail(kind, err);
      }
    }
    const lookup = this.o.table.lookup();
    const evaluatedAt = performance.now();
    const byEngine = new Map<string, DesiredService[]>();
    const decided = new Map<string, readonly WeightDecision[]>();
    let incremental = !full;
    /** Per service, the indexes of the decisions that changed, where only those go to the planner, and the decisions they replaced when the evaluator replaced them in place. */
    const moved = new Map<string, { readonly changed: readonly number[]; readonly replaced: readonly WeightDecision[] | null }>();
    for (const service of services) {
      // A full cycle and the resync's slice evaluate every server afresh; the others only what has news.
      const whole = full || slice.has(service.name);
      const { decisions, changed, replaced } = whole ? { decisions: this.o.evaluator.evaluate(service, lookup, evaluatedAt), changed: null, replaced: null } : this.o.evaluator.update(service, lookup, evaluatedAt, news.get(service.name) ?? NO_NEWS);
      decided.set(service.name, decisions);
      if (changed === null && !slice.has(service.name)) incremental = false;
      const partial = changed !== null && !this.unfinished.has(service.name);
      if (changed !== null) moved.set(service.name, { changed, replaced });
      getOrCreate(byEngine, service.engine, () => []).push({
        address: service.address,
        scheduler: service.scheduler,
        owned: service.owned,
        destinations: partial ? changed.map((i) => decisions[i] as WeightDecision) : decisions,
        partial,
      });
    }
    const drift = new Map(services.map((s) => [s.address, { address: s.address, drift: s.drift }]));
    for (const [kind, desired] of byEngine) {
      const seen = observed.get(kind);
      if (!seen) continue;
      engines.state.delete(kind); // until the apply is known to have succeeded
      try {
        const reconciler = engines.reconciler(kind);
        const reconciled = reconciler.reconcile(desired, seen, drift);
        for (const e of reconciled.events) this.reportDrift(kind, e);
        const all = plan(reconciled.desired, seen);
        // Bounded work per cycle: the rest follows in the next cycles.
        const ops = all.slice(0, policy.reconcile.maxOpsPerCycle);
        const cut = all.length > ops.length;
        if (cut) logger.warn({ engine: kind, ops: all.length, applied: ops.length }, 'more changes than reconcile.maxOpsPerCycle: the rest follow next cycle');
        for (const s of services) {
          if (s.engine !== kind) continue;
          // Until the rest is applied, the next cycles plan every destination of these services, not only the changed ones.
          if (cut) {
            again.push(s.name);
            this.unfinished.add(s.name);
          } else this.unfinished.delete(s.name);
        }
        if (ops.length > 0) {
          await this.timedApply(kind, engines.get(kind), ops);
          reconciler.applied(ops);
        }
        engines.state.set(kind, afterOps(seen, ops));
        this.logChanges(services, kind, decided, moved);
      } catch (err) {
        fail(kind, err);
      }
    }
    if (full) this.decisions = decided;
    else for (const [name, d] of decided) this.decisions.set(name, d);
    this.engineError = errors.length > 0 ? errors.join('; ') : null;
    return { evaluatedAt, failed: errors.length > 0, again, incremental, resyncing: this.resync.size > 0 };
  }

  /**
   * The services of the resync this cycle handles, in policy order: up to
   * RESYNC_SLICE_SERVERS servers (at least one service), sized by their last
   * decisions. A new resync forgets the engines' states, so they are read
   * afresh by the cycle that next needs them; a full cycle is a whole resync.
   */
  private slice(policy: CompiledPolicy, full: boolean, resync: boolean): ReadonlySet<string> {
    const slice = new Set<string>();
    if (full) {
      this.resync.clear();
      return slice;
    }
    if (resync) {
      for (const s of policy.services) this.resync.add(s.name);
      this.o.engines.state.clear();
    }
    let servers = 0;
    for (const s of policy.services) {
      if (servers >= RESYNC_SLICE_SERVERS) break;
      if (!this.resync.delete(s.name)) continue;
      slice.add(s.name);
      servers += Math.max(1, this.decisions.get(s.name)?.length ?? 0);
    }
    // A service the policy no longer has is not handled.
    if (slice.size === 0) this.resync.clear();
    return slice;
  }

  private reportDrift(engine: string, e: DriftEvent): void {
    this.driftEvents += 1;
    const what =
      e.action === 're-created'
        ? 'the engine lost this service: re-creating it'
        : e.action === 'missing'
          ? 'the engine no longer has this service (it is configured outside loadfeed)'
          : e.action === 'corrected'
            ? 'weight changed outside loadfeed: writing ours again'
            : 'weight changed outside loadfeed: respecting it until it changes again';
    this.o.logger.warn({ engine, service: e.service, destination: e.destination, expected: e.expected, found: e.found, action: e.action }, what);
  }

  private logChanges(services: readonly CompiledService[], kind: string, decided: Map<string, readonly WeightDecision[]>, moved: ReadonlyMap<string, { readonly changed: readonly number[]; readonly replaced: readonly WeightDecision[] | null }>): void {
    for (const service of services) {
      if (service.engine !== kind) continue;
      const before = this.decisions.get(service.name) ?? [];
      const decisions = decided.get(service.name) ?? [];
      const { changed, replaced } = moved.get(service.name) ?? { changed: null, replaced: null };
      // Decisions come in policy order: a server is looked up by address only when the list changed.
      let byAddress: Map<string, number> | null = null;
      for (const [k, i] of (changed ?? [...decisions.keys()]).entries()) {
        const d = decisions[i];
        if (d === undefined) continue;
        const same = replaced ? replaced[k] : before[i];
        const from = same?.address === d.address ? same.weight : ((byAddress ??= new Map(before.map((b) => [b.address, b.weight]))).get(d.address) ?? null);
        if (from !== d.weight) {
          this.o.logger.info({ service: service.name, server: d.address, node: d.node, from, to: d.weight, reason: d.reason }, 'weight changed');
          const change = { at: Date.now(), service: service.name, server: d.address, node: d.node, from, to: d.weight, state: d.state, reason: d.reason };
          this.o.notify((o) => o.weightChanged?.(change));
        }
      }
    }
  }

  private async timedApply(kind: string, engine: Engine, ops: Parameters<Engine['apply']>[0]): Promise<void> {
    const started = performance.now();
    let ok = false;
    try {
      await engine.apply(ops);
      ok = true;
    } finally {
      const ms = performance.now() - started;
      this.o.notify((o) => o.engineApplied?.(kind, ops.length, ms, ok));
    }
  }

  /**
   * First contact with an engine: take the weights it already has as the
   * last known ones, so a poller restart never flaps them (see
   * WeightEvaluator.adopt), and plan this cycle against them.
   */
  private adopt(policy: CompiledPolicy, kind: string, observed: Observation): void {
    const now = performance.now();
    for (const service of policy.services) {
      if (service.engine !== kind) continue;
      const have = observed.services.find((s) => s.address === service.address);
      if (!have) continue;
      const weights = new Map(have.destinations.map((d) => [d.address, d.weight]));
      this.o.evaluator.adopt(service, weights, now, policy.liveness.restartGraceMs);
      this.o.logger.info({ service: service.name, engine: kind, weights: Object.fromEntries(weights) }, 'adopted the weights the engine has');
    }
  }
}
