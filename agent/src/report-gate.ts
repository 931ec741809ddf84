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
// trouble costs a few more samples once, and a steady load none. An agent's
// first window is reported the same way, so a server that (re)starts is back
// in the pool a quarter interval after its agent connects.
// The application's own metrics (ORCA, Prometheus, push: rps, latency,
// requests in flight...) are looked at in every watch window too, and one that
// moved markedly since the last report triggers an early report the same way:
// a slow dependency shows there long before a full interval ends, and nowhere
// in the CPU. Their units are the application's, so the move is relative (by
// `earlyAppChange` of the smaller of the two values) and must also exceed
// APP_NOISE times the metric's own window-to-window jitter: an instant count
// of a few requests in flight doubles and halves by chance and would
// otherwise report every window, where a latency averaged by the application
// holds still until something happens.
// The gate sees only the scope's CPU (Sampler.watch) and the application's
// values; the agent takes the full reading for what the gate lets through
// (Sampler.report).
import type { AppReading, CpuWindow } from './reading.js';

/** Watch windows per interval when early reports are on. */
export const WATCHES_PER_INTERVAL = 4;
/** Watch windows reported one by one after an early report (the rest of its interval). */
export const FOLLOW_UPS = WATCHES_PER_INTERVAL - 1;
/**
 * An application metric's move must exceed this many times its
 * window-to-window jitter (mean absolute change). For an instant count of
 * requests in flight (Poisson, mean 0.8 to 4.5) 3 with a one-second jitter
 * reported 1.4-1.7 samples per interval in steady state, 5 with a four-second
 * one 1.01-1.03; a latency the application averages barely jitters, so its
 * first move still reports.
 */
export const APP_NOISE = 5;
/** Weight of the newest window-to-window change in an application metric's jitter (about four seconds of windows). */
const JITTER_WEIGHT = 1 / 16;

/** An application metric as the gate follows it. */
interface AppTrack {
  /** Its value in the last report; null when it was not in it. */
  reported: number | null;
  /** Its value in the previous watch window. */
  previous: number;
  /** Mean absolute change from one window to the next; null until two windows were seen. */
  jitter: number | null;
}

export class ReportGate {
  private pending: CpuWindow[] = [];
  private lastCpu: number | null = null;
  /** Windows still to report one by one after an early report. */
  private followUps = 0;
  private readonly app = new Map<string, AppTrack>();

  /**
   * earlyChange: CPU move that reports at once; earlyAppChange: relative move
   * of an application metric that does. Both 0: one watch window per
   * interval, every one reported (no early reports).
   */
  constructor(
    private readonly earlyChange: number,
    private readonly earlyAppChange = 0,
  ) {}

  /** How long one watch window lasts for this interval. */
  watchMs(intervalMs: number, minMs: number): number {
    return this.earlyChange > 0 || this.earlyAppChange > 0 ? Math.max(minMs, Math.round(intervalMs / WATCHES_PER_INTERVAL)) : intervalMs;
  }

  /**
   * Offer the CPU of one watch window, and the application's values at its
   * end (null without sources); returns the CPU to report now (that window,
   * or the interval's merged), or null.
   */
  offer(reading: CpuWindow, intervalMs: number, app: AppReading | null = null): CpuWindow | null {
    const cpuMoved = this.earlyChange > 0 && this.lastCpu !== null && Math.abs(reading.cpuUtilization - this.lastCpu) >= this.earlyChange + reading.cpuStep;
    // The first window goes at once: the poller gives a server no weight
    // before its first sample, so a (re)started server would wait a whole
    // interval for traffic the other servers carry meanwhile.
    const first = this.lastCpu === null && (this.earlyChange > 0 || this.earlyAppChange > 0);
    const values = app === null ? null : appValues(app);
    const early = this.appMoved(values) || cpuMoved || first;
    let out: CpuWindow | null = reading;
    if (early || this.followUps > 0) {
      this.followUps = early ? FOLLOW_UPS : this.followUps - 1;
      this.pending = [];
    } else {
      this.pending.push(reading);
      const covered = this.pending.reduce((a, r) => a + r.windowMs, 0);
      // 90 %: timers fire a little early or late; a window short of the interval still closes it.
      if (covered < 0.9 * intervalMs) return null;
      out = mergeWindows(this.pending);
      this.pending = [];
    }
    this.lastCpu = out.cpuUtilization;
    if (values !== null) this.reported(values);
    return out;
  }

  /** Whether an application metric moved markedly since the last report; follows every metric's jitter as it goes. */
  private appMoved(values: Map<string, number> | null): boolean {
    if (values === null) return false;
    let moved = false;
    for (const [name, v] of values) {
      const track = this.app.get(name);
      if (track === undefined) {
        this.app.set(name, { reported: null, previous: v, jitter: null });
        continue;
      }
      if (this.earlyAppChange > 0 && track.reported !== null && track.jitter !== null) {
        const change = Math.abs(v - track.reported);
        moved ||= change > 0 && change >= this.earlyAppChange * Math.min(Math.abs(v), Math.abs(track.reported)) && change > APP_NOISE * track.jitter;
      }
      const step = Math.abs(v - track.previous);
      track.jitter = track.jitter === null ? step : track.jitter + JITTER_WEIGHT * (step - track.jitter);
      track.previous = v;
    }
    for (const name of this.app.keys()) if (!values.has(name)) this.app.delete(name); // gone: starts afresh when it returns
    return moved;
  }

  private reported(values: Map<string, number>): void {
    for (const [name, track] of this.app) track.reported = values.get(name) ?? null;
  }
}

/** The application's fixed and named metrics by name (the fixed ones under their Sample field names). */
function appValues(app: AppReading): Map<string, number> {
  const out = new Map<string, number>();
  if (app.applicationUtilization !== null) out.set('applicationUtilization', app.applicationUtilization);
  if (app.rpsFractional !== null) out.set('rpsFractional', app.rpsFractional);
  if (app.eps !== null) out.set('eps', app.eps);
  for (const [name, v] of Object.entries(app.namedMetrics)) out.set(name, v);
  return out;
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
