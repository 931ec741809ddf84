// When cycles run. Agents' samples and liveness changes mark the services
// they feed dirty; one cycle at a time then handles those services, paced by
// the event loop's load (CyclePacer). Every `reconcile.every` a resync
// handles every service against a fresh read of the engines (timers move on,
// drift is found), spread over the next cycles by the runner so that it never
// holds the loop for the whole fleet at once; a start, a new policy, a failed
// engine apply or a cycle that throws bring a full cycle, all in one.
import type { Logger } from 'pino';
import { getOrCreate } from '../util/maps.js';
import type { NodeRecord } from './node-table.js';
import { CyclePacer } from './pacing.js';

/** After a failed engine apply or cycle, try again this soon even if nothing changed. */
export const RETRY_AFTER_ERROR_MS = 1_000;
/**
 * A node event this late past the next cycle's start starts it at once,
 * from the I/O callback that read it. With thousands of agents, once the
 * loop falls behind (a GC pause, a long cycle, a core shared with other
 * work), libuv's poll phase finds more than 1,024 sockets ready on each
 * look and reads up to 48 such batches before timers run: at 10,000 agents
 * the cycles' timer waited up to 2.2 s while every sample was read and
 * accepted (bench:poller-scale, 2026-12-07), and every decision waited
 * with it.
 */
export const TIMER_LATE_MS = 10;
/** Characters of a failed cycle's error kept for /status and /healthz. */
const CYCLE_ERROR_CHARS = 300;

export interface CycleOutcome {
  /** performance.now() when the cycle evaluated: it acted on every node event before. */
  readonly evaluatedAt: number;
  /** An engine failed: its weights are not known to be in place. */
  readonly failed: boolean;
  /** Services with changes left over (reconcile.maxOpsPerCycle): the next cycle takes them. */
  readonly again: readonly string[];
  /** Every service was evaluated incrementally (none resolved anew): its cost followed the news. */
  readonly incremental: boolean;
  /** Services of the current resync are still to be handled: cycles go on without news. */
  readonly resyncing: boolean;
}

export interface CycleSchedulerOptions {
  /**
   * One cycle: every service when `full` (engines read afresh), else those
   * named and a slice of the current resync; `resync`: a new resync is due;
   * `news`: per service, the nodes with news since the last cycle.
   */
  readonly run: (full: boolean, resync: boolean, services: ReadonlySet<string>, news: ReadonlyMap<string, ReadonlySet<NodeRecord>>) => Promise<CycleOutcome>;
  /** Current `reconcile.every`, ms. */
  readonly resyncEveryMs: () => number;
  /** A cycle put weights in place: ms since the oldest node event it acted on. */
  readonly applied: (ingestToWeightMs: number, evaluatedAt: number) => void;
  readonly logger: Logger;
}

export class CycleScheduler {
  /** Services to evaluate in the next cycle; `full` evaluates all and reads the engines afresh. */
  private readonly dirty = new Set<string>();
  /** Per dirty service, the nodes whose news made it dirty. */
  private news = new Map<string, Set<NodeRecord>>();
  private full = false;
  /** `reconcile.every` went by: the next cycle starts a resync. */
  private resyncDue = false;
  /** The runner has services of a resync left. */
  private resyncing = false;
  private cycling: Promise<void> | null = null;
  private readonly pacer = new CyclePacer();
  /** The event loop's utilisation counters when the last cycle started. */
  private loopMark = performance.eventLoopUtilization();
  /** A node stopped being live: the next cycle quiesces it without waiting out the load-based gap. */
  private urgent = false;
  /** Ends the wait before the next cycle early (see pace): `urgent` recomputes it, `overdue` starts the cycle at once. */
  private wake: ((why: 'urgent' | 'overdue') => void) | null = null;
  private retry: NodeJS.Timeout | null = null;
  private resync: NodeJS.Timeout | null = null;
  /** performance.now() of the oldest node event not yet reflected in the engines. */
  private pendingSince: number | null = null;
  private stopped = false;
  /** Why the last cycle threw (nothing was written for its services), or null when it succeeded. */
  cycleError: string | null = null;
  /** Cycles that threw since start. */
  cycleFailures = 0;

  constructor(private readonly options: CycleSchedulerOptions) {}

  /** Start the periodic full cycles and run the first one now. */
  start(): void {
    this.scheduleResync();
    this.markAll();
  }

  /** Every service needs evaluating, with fresh engine reads. */
  markAll(): void {
    this.full = true;
    this.kick();
  }

  /**
   * A node event (sample, liveness change, drain) of `node`, concerning
   * `services`; `urgent` (the node stopped being live) cuts the pacing wait.
   */
  nodeEvent(urgent: boolean, services: readonly string[], node: NodeRecord): void {
    if (urgent) {
      this.urgent = true;
      this.wake?.('urgent');
    }
    const now = performance.now();
    // A sample is being read, yet the timer that starts the next cycle is
    // late: the loop is held in one long I/O phase (see TIMER_LATE_MS).
    if (this.wake !== null && now - this.pacer.nextStart(this.urgent) > TIMER_LATE_MS) this.wake('overdue');
    this.pendingSince ??= now;
    for (const name of services) {
      this.dirty.add(name);
      getOrCreate(this.news, name, () => new Set<NodeRecord>()).add(node);
    }
    this.kick();
  }

  /** Resolves when no cycle is running or pending. */
  async settled(): Promise<void> {
    while (this.cycling) await this.cycling;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.resync) clearTimeout(this.resync);
    this.wake?.('urgent');
  }

  private kick(): void {
    if (!this.cycling && !this.stopped && this.pending()) this.cycling = this.cycle();
  }

  private pending(): boolean {
    return this.full || this.resyncDue || this.resyncing || this.dirty.size > 0;
  }

  /**
   * Re-evaluate and reconcile every `reconcile.every` even without news:
   * slow start and hold timers move on, and drift or an engine that lost its
   * state is found within that time.
   */
  private scheduleResync(): void {
    if (this.stopped) return;
    this.resync = setTimeout(() => {
      this.resyncDue = true;
      this.kick();
      this.scheduleResync();
    }, this.options.resyncEveryMs());
  }

  private async cycle(): Promise<void> {
    try {
      while (this.pending() && !this.stopped) {
        await this.pace();
        if (this.stopped) break;
        const started = performance.now();
        const loop = performance.eventLoopUtilization();
        this.pacer.begin(started, performance.eventLoopUtilization(loop, this.loopMark).utilization);
        this.loopMark = loop;
        this.urgent = false;
        const since = this.pendingSince;
        this.pendingSince = null;
        const full = this.full;
        const resync = this.resyncDue;
        const services = new Set(this.dirty);
        const news = this.news;
        this.full = false;
        this.resyncDue = false;
        this.dirty.clear();
        this.news = new Map();
        const outcome = await this.options.run(full, resync, services, news);
        this.resyncing = outcome.resyncing;
        this.cycleError = null;
        for (const name of outcome.again) this.dirty.add(name);
        if (outcome.failed) this.retryAfterError();
        this.pacer.end(performance.now(), full ? 'full' : outcome.incremental ? 'incremental' : 'whole');
        if (since !== null && !outcome.failed) this.options.applied(performance.now() - since, outcome.evaluatedAt);
      }
    } catch (err) {
      // Nothing was written for the services of this cycle: the engines keep
      // their last weights. Degraded and counted until a cycle succeeds.
      this.cycleFailures += 1;
      this.cycleError = String((err as Error).message).slice(0, CYCLE_ERROR_CHARS);
      this.options.logger.error({ err }, 'policy cycle failed; the engines keep their last weights');
      this.retryAfterError();
    } finally {
      this.cycling = null;
    }
  }

  private retryAfterError(): void {
    if (this.retry || this.stopped) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.markAll();
    }, RETRY_AFTER_ERROR_MS);
  }

  /**
   * Wait until the next cycle may start (see CyclePacer). A node leaving
   * `live` cuts that short; a node event past the start (see nodeEvent)
   * starts the cycle at once.
   */
  private async pace(): Promise<void> {
    for (;;) {
      const wait = this.pacer.nextStart(this.urgent) - performance.now();
      const woken = await new Promise<'time' | 'urgent' | 'overdue'>((resolve) => {
        // Even when due, the cycle yields to the I/O waiting (setImmediate).
        let cancel: () => void;
        if (wait <= 0) {
          const immediate = setImmediate(resolve, 'time');
          cancel = () => clearImmediate(immediate);
        } else {
          const timer = setTimeout(resolve, wait, 'time');
          cancel = () => clearTimeout(timer);
        }
        this.wake = (why) => {
          cancel();
          resolve(why);
        };
      });
      this.wake = null;
      if (woken !== 'urgent' || this.stopped) return;
    }
  }
}
