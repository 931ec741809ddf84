// Jittered exponential backoff for reconnecting a stream: an agent to its
// pollers, an agent or a poller to an ORCA server. The jitter keeps a fleet
// that lost its peer at the same moment from reconnecting in lockstep (each
// mTLS handshake costs the poller ~1.5 ms of CPU).

export const DEFAULT_BACKOFF_BASE_MS = 250;
export const DEFAULT_BACKOFF_MAX_MS = 30_000;

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs = DEFAULT_BACKOFF_BASE_MS,
    private readonly maxMs = DEFAULT_BACKOFF_MAX_MS,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay before the next attempt: uniformly in [½, 1] × min(max, base × 2^n). */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    if (ceiling < this.maxMs) this.attempt += 1;
    return Math.round(ceiling * (0.5 + 0.5 * this.random()));
  }

  /** The connection proved healthy: start again from the base delay. */
  reset(): void {
    this.attempt = 0;
  }
}
