// Which readings go to the pollers. The agent samples its scope several
// times per interval (watch windows) and normally reports once per interval,
// the watch windows merged into one reading over the whole interval. A watch
// window whose CPU utilisation moved by `earlyChange` or more since the last
// report is reported at once, alone: a noisy neighbour or a slowdown reaches
// the poller within a quarter interval instead of up to two intervals. The
// rate stays bounded by the watch rate, and a steady load sends no more than
// before. The move must exceed `earlyChange` by more than the window's CPU
// accounting step (Reading.cpuStep): a small process measured in 10 ms clock
// ticks over a quarter window reads 0 or 0.8 of its capacity by chance, which
// would otherwise be reported as trouble; such a scope reports per interval.
// The watch windows after an early report (FOLLOW_UPS of them) are reported
// one by one too: the early window may hold only the start of the trouble
// (it straddles the moment it began), and a single window cannot tell a
// neighbour that stays from a burst that is gone; the next ones tell, a
// quarter interval apart instead of a whole one. Then merging resumes, so
// trouble costs a few more samples once, and a steady load none.
// The gate sees only the scope's CPU (Sampler.watch); the agent takes the
// full reading for what the gate lets through (Sampler.report).
import type { CpuWindow } from './reading.js';

/** Watch windows per interval when early reports are on. */
export const WATCHES_PER_INTERVAL = 4;
/** Watch windows reported one by one after an early report (the rest of its interval). */
export const FOLLOW_UPS = WATCHES_PER_INTERVAL - 1;

export class ReportGate {
  private pending: CpuWindow[] = [];
  private lastCpu: number | null = null;
  /** Windows still to report one by one after an early report. */
  private followUps = 0;

  /** earlyChange 0: one watch window per interval, every one reported (no early reports). */
  constructor(private readonly earlyChange: number) {}

  /** How long one watch window lasts for this interval. */
  watchMs(intervalMs: number, minMs: number): number {
    return this.earlyChange > 0 ? Math.max(minMs, Math.round(intervalMs / WATCHES_PER_INTERVAL)) : intervalMs;
  }

  /** Offer the CPU of one watch window; returns the CPU to report now (that window, or the interval's merged), or null. */
  offer(reading: CpuWindow, intervalMs: number): CpuWindow | null {
    const early = this.earlyChange > 0 && this.lastCpu !== null && Math.abs(reading.cpuUtilization - this.lastCpu) >= this.earlyChange + reading.cpuStep;
    if (early || this.followUps > 0) {
      this.followUps = early ? FOLLOW_UPS : this.followUps - 1;
      this.pending = [];
      this.lastCpu = reading.cpuUtilization;
      return reading;
    }
    this.pending.push(reading);
    const covered = this.pending.reduce((a, r) => a + r.windowMs, 0);
    // 90 %: timers fire a little early or late; a window short of the interval still closes it.
    if (covered < 0.9 * intervalMs) return null;
    const merged = mergeWindows(this.pending);
    this.pending = [];
    this.lastCpu = merged.cpuUtilization;
    return merged;
  }
}

/**
 * Consecutive watch windows as one over their whole span, utilisations
 * averaged by window: each window's CPU is a counter delta over its own
 * span, so the average is the delta over the whole span (they telescope).
 */
export function mergeWindows(readings: readonly CpuWindow[]): CpuWindow {
  const last = readings[readings.length - 1];
  if (last === undefined) throw new Error('mergeWindows: no window');
  if (readings.length === 1) return last;
  const windowMs = readings.reduce((a, r) => a + r.windowMs, 0);
  const average = (get: (r: CpuWindow) => number | null): number | null => {
    let sum = 0;
    let ms = 0;
    for (const r of readings) {
      const x = get(r);
      if (x === null) continue;
      sum += x * r.windowMs;
      ms += r.windowMs;
    }
    return ms > 0 ? sum / ms : null;
  };
  return {
    cpuUtilization: average((r) => r.cpuUtilization) ?? last.cpuUtilization,
    cpuThrottled: average((r) => r.cpuThrottled),
    windowMs,
    cpuStep: (last.cpuStep * last.windowMs) / windowMs, // the same accounting unit over the whole span
  };
}
