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
import type { Reading } from './reading.js';

/** Watch windows per interval when early reports are on. */
export const WATCHES_PER_INTERVAL = 4;

export class ReportGate {
  private pending: Reading[] = [];
  private lastCpu: number | null = null;

  /** earlyChange 0: one watch window per interval, every one reported (no early reports). */
  constructor(private readonly earlyChange: number) {}

  /** How long one watch window lasts for this interval. */
  watchMs(intervalMs: number, minMs: number): number {
    return this.earlyChange > 0 ? Math.max(minMs, Math.round(intervalMs / WATCHES_PER_INTERVAL)) : intervalMs;
  }

  /** Offer the reading of one watch window; returns what to report now, or null. */
  offer(reading: Reading, intervalMs: number): Reading | null {
    const early = this.earlyChange > 0 && this.lastCpu !== null && Math.abs(reading.cpuUtilization - this.lastCpu) >= this.earlyChange + reading.cpuStep;
    if (early) {
      this.pending = [];
      this.lastCpu = reading.cpuUtilization;
      return reading;
    }
    this.pending.push(reading);
    const covered = this.pending.reduce((a, r) => a + r.windowMs, 0);
    // 90 %: timers fire a little early or late; a window short of the interval still closes it.
    if (covered < 0.9 * intervalMs) return null;
    const merged = mergeReadings(this.pending);
    this.pending = [];
    this.lastCpu = merged.cpuUtilization;
    return merged;
  }
}

/** Consecutive readings as one over their whole span: rates and utilisations averaged by window, levels the latest. */
export function mergeReadings(readings: readonly Reading[]): Reading {
  const last = readings[readings.length - 1];
  if (last === undefined) throw new Error('mergeReadings: no reading');
  if (readings.length === 1) return last;
  const windowMs = readings.reduce((a, r) => a + r.windowMs, 0);
  const average = (get: (r: Reading) => number | null): number | null => {
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
    ...last,
    cpuUtilization: average((r) => r.cpuUtilization) ?? last.cpuUtilization,
    cpuThrottled: average((r) => r.cpuThrottled),
    tcpAcceptsPerSecond: average((r) => r.tcpAcceptsPerSecond),
    windowMs,
    cpuStep: (last.cpuStep * last.windowMs) / windowMs, // the same accounting unit over the whole span
  };
}
