// What every application metrics source (ORCA stream, Prometheus scrape, push
// socket) offers the sampler: the values it holds that are still fresh, by
// name, and a status line for `loadfeed-agent status`. Sources fetch on their
// own timers and streams; the sampling tick only copies what they hold, so a
// slow or hung application never delays the host metrics.

/** Names a source uses for the Sample's three fixed fields; every other name is a named metric. */
export const FIXED_APP_METRICS = {
  application_utilization: 'applicationUtilization',
  rps: 'rpsFractional',
  eps: 'eps',
} as const;

export type AppSourceKind = 'orca' | 'prometheus' | 'push';

/**
 * ok: values are fresh; connecting: no answer yet; failing: the last attempt
 * failed (detail says why); silent: connected but nothing fresh within the TTL.
 */
export type AppSourceState = 'ok' | 'connecting' | 'failing' | 'silent';

export interface AppSourceStatus {
  readonly kind: AppSourceKind;
  readonly target: string;
  readonly state: AppSourceState;
  /** Wall-clock ms of the last state change. */
  readonly since: number;
  /** Why it is failing or silent; for push, the last refused line. Empty when there is nothing to say. */
  readonly detail: string;
  /** Names it holds fresh values for now. */
  readonly names: readonly string[];
  /** Reports, scrapes or lines taken, and refused (malformed, over a limit). */
  readonly updates: number;
  readonly refused: number;
}

export interface AppSource {
  readonly kind: AppSourceKind;
  readonly target: string;
  start(): void;
  /** Copies its fresh values (wall-clock `now`) into `into`, overwriting names already there. */
  collect(now: number, into: Map<string, number>): void;
  status(now: number): AppSourceStatus;
  close(): void;
}

/** State bookkeeping shared by the sources: when it changed, and why. */
export class SourceState {
  state: AppSourceState = 'connecting';
  since = Date.now();
  detail = '';
  updates = 0;
  refused = 0;

  set(state: AppSourceState, detail: string): void {
    if (state !== this.state) this.since = Date.now();
    this.state = state;
    this.detail = detail;
  }

  report(kind: AppSourceKind, target: string, names: readonly string[]): AppSourceStatus {
    return { kind, target, state: this.state, since: this.since, detail: this.detail, names, updates: this.updates, refused: this.refused };
  }
}

/** The values of one report or scrape, fresh until they expire or are dropped. */
export class HeldValues {
  private values = new Map<string, number>();
  private heldAt = 0;
  private expiresAt = 0;

  constructor(private readonly st: SourceState) {}

  hold(values: Map<string, number>, now: number, ttlMs: number): void {
    this.values = values;
    this.heldAt = now;
    this.expiresAt = now + ttlMs;
  }

  drop(): void {
    this.values = new Map();
  }

  /** Copies them into `into` while fresh; once expired, drops them and says the source went silent. */
  collect(now: number, into: Map<string, number>): void {
    if (this.values.size === 0) return;
    if (now > this.expiresAt) {
      this.drop();
      this.st.set('silent', `nothing new for ${now - this.heldAt} ms`);
      return;
    }
    for (const [k, v] of this.values) into.set(k, v);
  }

  names(now: number): string[] {
    return now <= this.expiresAt ? [...this.values.keys()] : [];
  }
}

/** A bounded excerpt of foreign text for a message. */
export function excerpt(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
