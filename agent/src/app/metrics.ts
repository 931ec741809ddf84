// The application metrics of one sample: every configured source's fresh
// values merged (a name given by several sources takes the value of the later
// one in the order ORCA, Prometheus, push) and split into the Sample's three
// fixed fields and its named metrics, within the contract's limits.
import { MAX_NAMED_METRICS } from '@loadfeed/proto';
import type { AppReading } from '../reading.js';
import { FIXED_APP_METRICS, type AppSource, type AppSourceStatus } from './source.js';

export const NO_APP_READING: AppReading = { applicationUtilization: null, rpsFractional: null, eps: null, namedMetrics: {} };

export interface AppMetricsStatus {
  readonly sources: readonly AppSourceStatus[];
  /** Named metrics left out of samples because there were more than the contract allows (the alphabetically last ones). */
  readonly droppedNames: readonly string[];
}

export class AppMetrics {
  private dropped: string[] = [];

  constructor(private readonly sources: readonly AppSource[]) {}

  get configured(): boolean {
    return this.sources.length > 0;
  }

  start(): void {
    for (const s of this.sources) s.start();
  }

  read(now: number): AppReading {
    if (this.sources.length === 0) return NO_APP_READING;
    const all = new Map<string, number>();
    for (const s of this.sources) s.collect(now, all);
    const fixed = { applicationUtilization: null as number | null, rpsFractional: null as number | null, eps: null as number | null };
    for (const [name, field] of Object.entries(FIXED_APP_METRICS)) {
      const v = all.get(name);
      if (v !== undefined) fixed[field] = v;
      all.delete(name);
    }
    const entries = [...all].sort(([a], [b]) => (a < b ? -1 : 1));
    this.dropped = entries.slice(MAX_NAMED_METRICS).map(([n]) => n);
    return { ...fixed, namedMetrics: Object.fromEntries(entries.slice(0, MAX_NAMED_METRICS)) };
  }

  status(now: number): AppMetricsStatus {
    return { sources: this.sources.map((s) => s.status(now)), droppedNames: this.dropped };
  }

  close(): void {
    for (const s of this.sources) s.close();
  }
}
