// Logging at a bounded rate: a flood of refusals (a hostile client, a broken
// agent fleet) must not become a flood of log lines. Each kind may log
// LOG_BURST lines per LOG_WINDOW_MS; the rest are counted and reported in one
// line when the next window opens. The counters in /metrics stay exact.

export const LOG_WINDOW_MS = 10_000;
export const LOG_BURST = 10;

type Log = (event: Record<string, unknown>, msg: string) => void;

export class RateLimitedLog {
  private readonly windows = new Map<string, { start: number; logged: number; suppressed: number }>();

  constructor(
    private readonly write: Log,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Log `event` under `kind` unless that kind used its lines for this window. */
  log(kind: string, event: Record<string, unknown>, msg: string): void {
    const now = this.now();
    let w = this.windows.get(kind);
    if (!w || now - w.start >= LOG_WINDOW_MS) {
      if (w && w.suppressed > 0) this.write({ kind, suppressed: w.suppressed, windowMs: LOG_WINDOW_MS }, `${msg}: ${w.suppressed} more not logged`);
      w = { start: now, logged: 0, suppressed: 0 };
      this.windows.set(kind, w);
    }
    if (w.logged < LOG_BURST) {
      w.logged += 1;
      this.write({ kind, ...event }, msg);
    } else {
      w.suppressed += 1;
    }
  }
}
