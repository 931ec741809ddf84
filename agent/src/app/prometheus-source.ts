// `--app-metrics URL`: scrapes the application's own Prometheus endpoint on
// its own timer and keeps the series the configuration names, each under a
// name of its choosing. A gauge is taken as it is; a counter (by the
// exposition's `# TYPE`, including a histogram's or summary's _sum, _count
// and _bucket) becomes a per-second rate between two scrapes. Several series
// matching one selector are summed (a counter's sum going down, a reset or a
// series gone, gives no rate for that scrape).
import http from 'node:http';
import https from 'node:https';
import { HeldValues, SourceState, type AppSource, type AppSourceStatus } from './source.js';
import { parsePrometheusText, selects, type PromExposition, type PromType, type SeriesSelector } from './prometheus-text.js';

/** Scrape no faster than this, whatever the sampling interval: an exposition is built per request. */
export const MIN_SCRAPE_INTERVAL_MS = 1_000;
export const SCRAPE_TIMEOUT_MS = 5_000;
/** Larger answers are refused: a dozen series never need it, and memory stays bounded. */
export const MAX_SCRAPE_BYTES = 4 * 1024 * 1024;

export interface SeriesSpec {
  /** Application metric name it is kept under (rps, eps, application_utilization, or a named metric). */
  readonly name: string;
  readonly selector: SeriesSelector;
  /** The selector as configured, for messages. */
  readonly text: string;
}

/** Totals of one scrape, kept to turn the next one's counters into rates. */
export interface ScrapeTotals {
  readonly atMs: number;
  readonly totals: ReadonlyMap<string, number>;
}

export interface ScrapeResult {
  readonly values: Map<string, number>;
  /** Specs that matched no series this time. */
  readonly unmatched: readonly string[];
  readonly totals: ScrapeTotals;
}

/** Pure: the values of one scrape given the previous one's totals. */
export function evaluateScrape(specs: readonly SeriesSpec[], exp: PromExposition, atMs: number, prev: ScrapeTotals | null): ScrapeResult {
  const values = new Map<string, number>();
  const totals = new Map<string, number>();
  const unmatched: string[] = [];
  for (const spec of specs) {
    let sum = 0;
    let matched = 0;
    for (const s of exp.series) {
      if (selects(spec.selector, s)) {
        sum += s.value;
        matched += 1;
      }
    }
    if (matched === 0 || !Number.isFinite(sum)) {
      unmatched.push(spec.text);
      continue;
    }
    if (seriesKind(spec.selector.metric, exp.types) === 'gauge') {
      values.set(spec.name, sum);
      continue;
    }
    totals.set(spec.name, sum);
    const before = prev?.totals.get(spec.name);
    const dt = prev === null ? 0 : (atMs - prev.atMs) / 1000;
    if (before !== undefined && sum >= before && dt > 0) values.set(spec.name, (sum - before) / dt);
  }
  return { values, unmatched, totals: { atMs, totals } };
}

/** Counter or gauge, from the family's `# TYPE`; a series of unknown type is taken as a gauge. */
export function seriesKind(metric: string, types: ReadonlyMap<string, PromType>): 'counter' | 'gauge' {
  const own = types.get(metric);
  if (own !== undefined) return own === 'counter' ? 'counter' : 'gauge';
  const m = /^(.*)_(total|sum|count|bucket)$/.exec(metric);
  if (m?.[1] === undefined) return 'gauge';
  const family = types.get(m[1]);
  if (m[2] === 'total') return family === 'counter' ? 'counter' : 'gauge';
  return family === 'histogram' || family === 'summary' ? 'counter' : 'gauge';
}

export class PrometheusSource implements AppSource {
  readonly kind = 'prometheus';
  private readonly st = new SourceState();
  private readonly wanted: ReadonlySet<string>;
  private readonly agent: http.Agent;
  private timer: NodeJS.Timeout | null = null;
  private request: http.ClientRequest | null = null;
  private readonly held = new HeldValues(this.st);
  private prev: ScrapeTotals | null = null;
  private closed = false;

  constructor(
    readonly target: string,
    private readonly specs: readonly SeriesSpec[],
    private readonly intervalMs: () => number,
    private readonly ttlMs: number,
  ) {
    this.wanted = new Set(specs.map((s) => s.selector.metric));
    const url = new URL(target);
    this.agent = url.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  start(): void {
    this.scrape();
  }

  collect(now: number, into: Map<string, number>): void {
    this.held.collect(now, into);
  }

  status(now: number): AppSourceStatus {
    return this.st.report(this.kind, this.target, this.held.names(now));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.request?.destroy();
    this.agent.destroy();
  }

  private scrape(): void {
    if (this.closed) return;
    const startedAt = Date.now();
    this.fetch((err, text) => {
      if (this.closed) return;
      if (err !== null) {
        this.held.drop();
        this.st.refused += 1;
        this.st.set('failing', err.message);
      } else {
        try {
          const result = evaluateScrape(this.specs, parsePrometheusText(text, this.wanted), startedAt, this.prev);
          this.prev = result.totals;
          this.held.hold(result.values, Date.now(), this.ttlMs);
          this.st.updates += 1;
          this.st.set('ok', result.unmatched.length === 0 ? '' : `no series matched ${result.unmatched.join(', ')}`);
        } catch (parseErr) {
          this.held.drop();
          this.st.refused += 1;
          this.st.set('failing', (parseErr as Error).message);
        }
      }
      const every = Math.max(MIN_SCRAPE_INTERVAL_MS, this.intervalMs());
      this.timer = setTimeout(() => this.scrape(), Math.max(0, startedAt + every - Date.now()));
    });
  }

  private fetch(done: (err: Error | null, text: string) => void): void {
    const url = new URL(this.target);
    const get = url.protocol === 'https:' ? https.get : http.get;
    let finished = false;
    const finish = (err: Error | null, text = ''): void => {
      if (finished) return;
      finished = true;
      this.request = null;
      done(err, text);
    };
    const req = get(url, { agent: this.agent, timeout: SCRAPE_TIMEOUT_MS, headers: { Accept: 'text/plain;version=0.0.4' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        finish(new Error(`HTTP ${res.statusCode ?? '?'} from ${this.target}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_SCRAPE_BYTES) {
          req.destroy();
          finish(new Error(`answer larger than ${MAX_SCRAPE_BYTES} bytes`));
        } else chunks.push(c);
      });
      res.on('end', () => finish(null, Buffer.concat(chunks).toString('utf8')));
      res.on('error', (e) => finish(e));
    });
    this.request = req;
    req.on('timeout', () => req.destroy(new Error(`no answer within ${SCRAPE_TIMEOUT_MS} ms`)));
    req.on('error', (e) => finish(e));
  }
}
