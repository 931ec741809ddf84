// How far apart policy cycles start. Samples arriving between two cycles
// share the next one; under load the cycles give way to the agents' streams,
// because a sample read late makes a healthy server look stale, and a stale
// server is quiesced. The load is smoothed: one burst of reads, or a GC
// pause, must not stretch the next gap tenfold.

/** Cycles start at least this far apart. */
export const MIN_CYCLE_GAP_MS = 10;
/**
 * After an incremental cycle the gap is at most this. Its work follows the
 * news, which arrives whatever the gap: a longer one batches it (sparing
 * some per-cycle overhead) but gives none of the loop back, and delays
 * every decision.
 */
export const MAX_INCREMENTAL_GAP_MS = 25;
/**
 * Together with everything else the event loop does, cycles aim to keep it
 * at most this busy, so samples are read as they arrive.
 */
export const LOOP_BUSY_TARGET = 0.9;
/** Share of the event loop cycles may take: at most half; at least this much, however busy the rest is. */
export const MAX_CYCLE_SHARE = 0.5;
export const MIN_CYCLE_SHARE = 0.1;
/** Half-life of the smoothed load. */
export const PACING_HALF_LIFE_MS = 1_000;

/**
 * Gap from one cycle's start to the next for cycles taking `cycleMs` while
 * everything else (reading streams, keepalives) keeps the event loop busy
 * for the fraction `othersBusy`. That work stays; cycles get what is left up
 * to LOOP_BUSY_TARGET, within [MIN_CYCLE_SHARE, MAX_CYCLE_SHARE]: overloaded,
 * the poller decides less often rather than read samples late.
 */
export function cycleGapMs(cycleMs: number, othersBusy: number): number {
  const share = Math.min(MAX_CYCLE_SHARE, Math.max(MIN_CYCLE_SHARE, LOOP_BUSY_TARGET - othersBusy));
  return Math.max(MIN_CYCLE_GAP_MS, cycleMs / share);
}

/** Paces the cycles of one poller from their durations and the event loop's load (times in ms, one clock). */
export class CyclePacer {
  private startedAt = -Infinity;
  /** How long the last cycle took. */
  private lastMs = 0;
  /** Smoothed share of the loop busy with work other than cycles. */
  private othersBusy = 0;
  /** The last cycle was incremental (see end). */
  private capped = false;

  /** A cycle starts at `now`; the loop was busy for the fraction `loopBusy` since the last one started. */
  begin(now: number, loopBusy: number): void {
    const period = now - this.startedAt;
    const others = Math.max(0, loopBusy - this.lastMs / period);
    this.othersBusy += (1 - 2 ** (-period / PACING_HALF_LIFE_MS)) * (others - this.othersBusy);
    this.startedAt = now;
  }

  /**
   * The cycle begun last ends at `now`. `kind`: a `full` cycle does not set
   * the gap: it costs the whole fleet while the cycles after it cost what
   * changed, and pacing those by it stretched every gap after it tenfold;
   * its time counts as the others' load instead. After an `incremental`
   * cycle (every service evaluated incrementally or as a resync's slice) the
   * gap is at most MAX_INCREMENTAL_GAP_MS; after one that evaluated services
   * anew (`whole`: nodes connected or left) it follows the cycle's duration.
   */
  end(now: number, kind: 'full' | 'incremental' | 'whole' = 'whole'): void {
    this.lastMs = kind === 'full' ? 0 : now - this.startedAt;
    this.capped = kind === 'incremental';
  }

  /** When the next cycle may start; `urgent` (a server to quiesce) waits only MIN_CYCLE_GAP_MS. */
  nextStart(urgent: boolean): number {
    if (urgent) return this.startedAt + MIN_CYCLE_GAP_MS;
    const gap = cycleGapMs(this.lastMs, this.othersBusy);
    return this.startedAt + (this.capped ? Math.min(MAX_INCREMENTAL_GAP_MS, gap) : gap);
  }
}
