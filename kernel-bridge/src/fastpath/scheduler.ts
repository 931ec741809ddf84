// Fast-path schedulers: pure functions over a small per-destination state, so
// they are tested without sockets and cost no allocation per pick.
//
// A destination is eligible when its weight is > 0, it is not marked down and
// it is below its connection limit (IPVS's upper threshold: a full destination
// takes no new connection until one of its connections ends).
// Every scheduler updates `current` (the smooth weighted round-robin score) of
// the destinations they consider and nothing else; the caller owns `active`.

export interface SchedulerTarget {
  /** Weight now in force; 0 takes no new connections. */
  readonly weight: number;
  /** Connections open or being opened to the target now. */
  readonly active: number;
  /** At most this many connections at once; 0 = no limit. */
  readonly maxConnections: number;
  /** Monotonic time (ms, same clock as `now`) until which the target is down; `<= now` means up. */
  readonly downUntil: number;
  /** Smooth weighted round-robin score; scheduler state, starts at 0. */
  current: number;
  /**
   * Peak-EWMA of this target's connection times (ms) as of `latencyAt`; 0 =
   * no sample yet. Written by observeLatency, read by `peak-ewma` only.
   */
  latency: number;
  /** Monotonic time (ms) of the last sample folded into `latency`. */
  latencyAt: number;
}

/** Picks the target for a new connection, or undefined when none is eligible. */
export type Scheduler = <T extends SchedulerTarget>(targets: readonly T[], now: number) => T | undefined;

/**
 * Smooth weighted round robin (nginx `ngx_http_upstream_get_peer`): every
 * eligible target gains its weight, the highest score wins and pays back the
 * total. Weights 5/1/1 give `a a b a c a a`, spreading the heavy target out
 * instead of sending it bursts. Ineligible targets are skipped, as nginx skips
 * down peers, so their scores stay where they were.
 */
export function pickSwrr<T extends SchedulerTarget>(targets: readonly T[], now: number): T | undefined {
  return swrrAmong(targets, now, undefined, 0, 0, 'equal');
}

/**
 * Weighted least connection (IPVS `wlc`): the eligible target with the least
 * active/weight, compared as a.active * b.weight < b.active * a.weight to avoid
 * division. Ties are frequent (every target idle between short connections), so
 * they go to smooth weighted round robin among the tied targets: idle targets
 * then share connections in proportion to their weights, where "first wins"
 * would send everything to one target.
 */
export function pickWlc<T extends SchedulerTarget>(targets: readonly T[], now: number): T | undefined {
  const least = leastLoaded(targets, now, 0);
  return least && swrrAmong(targets, now, least, 0, 0, 'equal');
}

/**
 * Shortest expected delay (IPVS `sed`): the eligible target with the least
 * (active + 1) / weight, the delay a new connection would see if each
 * target served its connections at a rate proportional to its weight.
 * Unlike `wlc`, an idle target does not win over a busier one of much
 * higher weight. Exact ties go to smooth weighted round robin among the
 * tied targets (IPVS takes the first). Over strictly sequential connections
 * (each over before the next) it sends everything to the highest weight:
 * weights rank the targets, they are not shares.
 */
export function pickSed<T extends SchedulerTarget>(targets: readonly T[], now: number): T | undefined {
  const least = leastLoaded(targets, now, 1);
  return least && swrrAmong(targets, now, least, 1, 1, 'equal');
}

/**
 * Smooth weighted round robin with a least-connection guard: swrr among the
 * targets that would be no busier than the least busy one (by `wlc`'s
 * measure, active/weight) with one connection less. Short connections then
 * get weighted shares as `swrr` gives (idle targets and targets one
 * connection in all take part), where `wlc` hands the next connection to
 * any idle target whatever its weight; a target that falls behind by more
 * than a connection (a slow or stalled backend piling up connections) drops
 * out until it catches up, as `wlc` would avoid it. The least busy target
 * always takes part, so an eligible target is always found.
 */
export function pickSwrrLc<T extends SchedulerTarget>(targets: readonly T[], now: number): T | undefined {
  const least = leastLoaded(targets, now, 0);
  // (t.active - 1) / t.weight <= least.active / least.weight
  return least && swrrAmong(targets, now, least, -1, 0, 'at-most');
}

/**
 * Smooth weighted round robin among the targets whose backlog is no longer
 * than the shortest expected delay: a target takes part while its
 * active/weight is at most the least (active + 1)/weight of all (IPVS `sed`'s
 * measure), i.e. while what it already has would be done before a new
 * connection on the best target. Idle targets all take part (exact weighted
 * shares for short connections, where `wlc` lets any idle target win); a busy
 * target takes part only while its weight makes up for its connections, so a
 * low-weight target that is busy is skipped while a high-weight one is idle.
 * Stricter than `swrr-lc` for busy low-weight targets.
 */
export function pickSwrrSed<T extends SchedulerTarget>(targets: readonly T[], now: number): T | undefined {
  const least = leastLoaded(targets, now, 1);
  // t.active / t.weight <= (least.active + 1) / least.weight
  return least && swrrAmong(targets, now, least, 0, 1, 'at-most');
}

/**
 * `swrr-sed` made strict where weights are close: a target takes part while
 * its active/weight is below (not at) the least (active + 1)/weight, and it
 * may hold k connections more than the least busy one (fewest connections;
 * of those, the lowest weight) only while its weight is at least k + 1 times
 * that one's. Weights count in whole multiples: targets whose weights are
 * less than 2x apart (equal servers whose weights wobble with trouble that
 * moves) pick as least connection, where `swrr-sed` gives a target one
 * connection ahead its turn while its weight lags; capacities 2x or more
 * apart still share by weight. The target with the shortest expected delay
 * always takes part (the two bounds alone can leave none: 2 connections on
 * weight 10 and 4 on weight 26).
 */
export function pickSwrrLead<T extends SchedulerTarget>(targets: readonly T[], now: number): T | undefined {
  const least = leastLoaded(targets, now, 1);
  if (least === undefined) return undefined;
  let fewest = least;
  for (const t of targets) {
    if (isEligible(t, now) && (t.active < fewest.active || (t.active === fewest.active && t.weight < fewest.weight))) fewest = t;
  }
  let best: T | undefined;
  let total = 0;
  for (const t of targets) {
    if (!isEligible(t, now)) continue;
    if (t !== least && (t.active * least.weight >= (least.active + 1) * t.weight || t.weight < (t.active - fewest.active + 1) * fewest.weight)) continue;
    t.current += t.weight;
    total += t.weight;
    if (best === undefined || t.current > best.current) best = t;
  }
  if (best !== undefined) best.current -= total;
  return best;
}

/**
 * A connection to this target lasting longer than this is a long-lived
 * connection (keep-alive, streaming), not one request: its time says nothing
 * about the target's speed, so it is no sample.
 */
export const LONG_CONNECTION_MS = 10_000;
/** How fast a latency estimate fades without samples (time constant, ms). */
export const LATENCY_DECAY_MS = 500;
/** A latency estimate this old is unknown again (20 time constants: e^-20 of the peak). */
const LATENCY_STALE_MS = 20 * LATENCY_DECAY_MS;
/** How far a sample below the estimate pulls it down (the EWMA's weight). */
const LATENCY_PULL = 0.25;

/** Whether the target has an estimate sampled within LATENCY_STALE_MS of `now`. */
function hasLatency(t: SchedulerTarget, now: number): boolean {
  return t.latency !== 0 && now - t.latencyAt < LATENCY_STALE_MS;
}

/** The target's latency estimate at `now`: the peak fading towards 0, so a target left alone is tried again. */
function latencyNow(t: SchedulerTarget, now: number): number {
  return t.latency * Math.exp(-Math.max(0, now - t.latencyAt) / LATENCY_DECAY_MS);
}

/**
 * Folds one finished connection's time (from the pick to its close, ms) into
 * the target's peak-EWMA (Finagle's and Linkerd's load balancer): a sample
 * above the estimate replaces it at once (trouble is seen within one
 * connection), one below pulls it down by LATENCY_PULL; between samples the
 * estimate fades (LATENCY_DECAY_MS). Connections longer than
 * LONG_CONNECTION_MS are not samples.
 */
export function observeLatency(t: SchedulerTarget, durationMs: number, now: number): void {
  if (!(durationMs >= 0) || durationMs > LONG_CONNECTION_MS) return;
  const current = hasLatency(t, now) ? latencyNow(t, now) : 0;
  t.latency = durationMs >= current || current === 0 ? durationMs : current + (durationMs - current) * LATENCY_PULL;
  t.latencyAt = now;
}

/**
 * `peak-ewma`, least expected delay by measured connection time: the eligible
 * target with the least (active + 1) × latency, where latency is its
 * observeLatency estimate at `now`, never below the lowest estimate of all as
 * last sampled (the fastest target's connection time). A target without a
 * fresh estimate (new, or unsampled for LATENCY_STALE_MS), or whose estimate
 * has faded that far, thus competes as the fastest does, by connections in
 * flight: it is tried again without taking a burst of connections before its
 * first one ends (fading alone would rate it near 0). Weights carry no
 * capacity here: 0 drains, and they share exact ties by smooth weighted round
 * robin. When no eligible target has an estimate (long-lived connections
 * only, or none finished yet) the pick is `swrr-sed`'s, by weight.
 */
export function pickPeakEwma<T extends SchedulerTarget>(targets: readonly T[], now: number): T | undefined {
  let best = Infinity;
  for (const t of targets) {
    if (!isEligible(t, now) || !hasLatency(t, now)) continue;
    best = Math.min(best, t.latency);
  }
  if (best === Infinity) return pickSwrrSed(targets, now);
  let least = Infinity;
  for (const t of targets) {
    if (!isEligible(t, now)) continue;
    const cost = delayOf(t, now, best);
    if (cost < least) least = cost;
  }
  let chosen: T | undefined;
  let total = 0;
  for (const t of targets) {
    if (!isEligible(t, now) || delayOf(t, now, best) !== least) continue;
    t.current += t.weight;
    total += t.weight;
    if (chosen === undefined || t.current > chosen.current) chosen = t;
  }
  if (chosen !== undefined) chosen.current -= total;
  return chosen;
}

function delayOf(t: SchedulerTarget, now: number, best: number): number {
  const latency = hasLatency(t, now) ? Math.max(best, latencyNow(t, now)) : best;
  return (t.active + 1) * latency;
}

function isEligible(t: SchedulerTarget, now: number): boolean {
  return t.weight > 0 && t.downUntil <= now && (t.maxConnections === 0 || t.active < t.maxConnections);
}

/** The eligible target with the least (active + extra) / weight, compared without division. */
function leastLoaded<T extends SchedulerTarget>(targets: readonly T[], now: number, extra: number): T | undefined {
  let least: T | undefined;
  for (const t of targets) {
    if (!isEligible(t, now)) continue;
    if (least === undefined || (t.active + extra) * least.weight < (least.active + extra) * t.weight) least = t;
  }
  return least;
}

/**
 * Smooth WRR over the eligible targets; with `least`, only over those whose
 * (active + own) / weight is equal to, or at most, (least.active + its) /
 * least.weight (compared without division).
 */
function swrrAmong<T extends SchedulerTarget>(targets: readonly T[], now: number, least: T | undefined, own: number, its: number, relation: 'equal' | 'at-most'): T | undefined {
  let best: T | undefined;
  let total = 0;
  for (const t of targets) {
    if (!isEligible(t, now)) continue;
    if (least !== undefined) {
      const mine = (t.active + own) * least.weight;
      const theirs = (least.active + its) * t.weight;
      if (relation === 'equal' ? mine !== theirs : mine > theirs) continue;
    }
    t.current += t.weight;
    total += t.weight;
    if (best === undefined || t.current > best.current) best = t;
  }
  if (best !== undefined) best.current -= total;
  return best;
}

export const DEFAULT_FASTPATH_SCHEDULER = 'swrr-sed';

/** Scheduler names as service specs spell them. */
export const FASTPATH_SCHEDULERS: ReadonlyMap<string, Scheduler> = new Map<string, Scheduler>([
  ['wlc', pickWlc],
  ['swrr', pickSwrr],
  ['sed', pickSed],
  ['swrr-lc', pickSwrrLc],
  ['swrr-sed', pickSwrrSed],
  ['swrr-lead', pickSwrrLead],
  ['peak-ewma', pickPeakEwma],
]);
