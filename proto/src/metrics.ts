// The metric catalog: every load figure a Sample carries, once, with every
// name it goes by on its way (wire field, decoded field, policy expression
// variable, /status key, Prometheus gauge), the range ingest accepts and how
// people see it. Adding a metric is the .proto field plus one entry here; the
// poller's checks, expression variables, snapshot, /status, /metrics,
// `loadfeed top` and the dashboard follow it.
import type { Sample } from './messages.js';

/** Utilisation above this is a broken agent, not a busy server (process scope may exceed 1). */
export const MAX_UTILIZATION = 64;

export interface MetricPrometheus {
  /** Gauge name, one series per node (label `node`). */
  readonly name: string;
  readonly help: string;
  /** Further labels that tell metrics sharing one gauge apart (e.g. PSI's `resource`). */
  readonly labels?: Readonly<Record<string, string>>;
}

/** How `loadfeed top`, the dashboard and /status show a metric. */
export interface MetricDisplay {
  /**
   * Short name: column heading (top upper-cases it), table heading, chart
   * title, top's sort key. Metrics sharing a label share one column: the
   * dashboard shows each value (`a / b / c`), top the largest.
   */
  readonly label: string;
  /** percent: a fraction shown as %; integer: a count; decimal: three significant digits. */
  readonly format: 'percent' | 'integer' | 'decimal';
  /** A column of `loadfeed top` and of the dashboard's server tables (every metric is in its agents table). */
  readonly column: boolean;
  /** Charted per server over the last minutes on the dashboard (kept in /status/history). */
  readonly chart: boolean;
}

export interface MetricDefinition {
  /** Field of the decoded Sample, the camelCase of `wire`; also its /status `nodes[]` key. */
  readonly field: keyof Sample;
  /** Field name in telemetry.proto; rejections name it (`sample.<wire>`). */
  readonly wire: string;
  readonly unit: 'fraction' | 'count' | 'per-second';
  /** Accepted range (inclusive); a sample outside it is rejected. null: not checked (a uint32 field). */
  readonly range: { readonly min: number; readonly max: number } | null;
  /** `optional` on the wire: absent when the agent could not measure it, and null downstream. */
  readonly nullable: boolean;
  /** Name in policy expressions. */
  readonly variable: string;
  /** One line for the policy reference and `policy explain`. */
  readonly description: string;
  /** The node gauge in /metrics; null: not exported. */
  readonly prometheus: MetricPrometheus | null;
  readonly display: MetricDisplay;
  /**
   * Its own field of /status `services[].servers[]` (dotted: `psi.cpu`), kept
   * as it was before every server carried `metrics`; null for the metrics
   * added since, which are only in `metrics`.
   */
  readonly serverStatus: string | null;
}

const fraction = { min: 0, max: 1 } as const;
const psiHelp = 'PSI some avg10 of the scope, 0..1 (absent where the kernel or scope has none)';

export const METRICS = [
  {
    field: 'cpuUtilization',
    wire: 'cpu_utilization',
    unit: 'fraction',
    range: { min: 0, max: MAX_UTILIZATION },
    nullable: false,
    variable: 'cpu',
    description: 'CPU utilisation of the scope, fraction of its capacity',
    prometheus: { name: 'loadfeed_node_cpu_utilization', help: "CPU busy as a fraction of the scope's capacity (may exceed 1 in process scope)" },
    display: { label: 'cpu', format: 'percent', column: true, chart: true },
    serverStatus: 'cpu',
  },
  {
    field: 'memUtilization',
    wire: 'mem_utilization',
    unit: 'fraction',
    range: { min: 0, max: MAX_UTILIZATION },
    nullable: false,
    variable: 'mem',
    description: 'memory utilisation, fraction',
    prometheus: { name: 'loadfeed_node_memory_utilization', help: "memory in use as a fraction of the scope's memory" },
    display: { label: 'mem', format: 'percent', column: true, chart: true },
    serverStatus: 'memory',
  },
  {
    field: 'psiCpuSome',
    wire: 'psi_cpu_some',
    unit: 'fraction',
    range: fraction,
    nullable: true,
    variable: 'psi_cpu',
    description: 'CPU pressure, some avg10, fraction (null without PSI)',
    prometheus: { name: 'loadfeed_node_pressure_some_ratio', help: psiHelp, labels: { resource: 'cpu' } },
    display: { label: 'psi', format: 'percent', column: true, chart: false },
    serverStatus: 'psi.cpu',
  },
  {
    field: 'psiMemorySome',
    wire: 'psi_memory_some',
    unit: 'fraction',
    range: fraction,
    nullable: true,
    variable: 'psi_memory',
    description: 'memory pressure, some avg10, fraction (null without PSI)',
    prometheus: { name: 'loadfeed_node_pressure_some_ratio', help: psiHelp, labels: { resource: 'memory' } },
    display: { label: 'psi', format: 'percent', column: true, chart: false },
    serverStatus: 'psi.memory',
  },
  {
    field: 'psiIoSome',
    wire: 'psi_io_some',
    unit: 'fraction',
    range: fraction,
    nullable: true,
    variable: 'psi_io',
    description: 'I/O pressure, some avg10, fraction (null without PSI)',
    prometheus: { name: 'loadfeed_node_pressure_some_ratio', help: psiHelp, labels: { resource: 'io' } },
    display: { label: 'psi', format: 'percent', column: true, chart: false },
    serverStatus: 'psi.io',
  },
  {
    field: 'load1',
    wire: 'load1',
    unit: 'count',
    range: { min: 0, max: 1e6 },
    nullable: true,
    variable: 'load1',
    description: 'host 1-minute load average',
    prometheus: null,
    display: { label: 'load1', format: 'decimal', column: false, chart: false },
    serverStatus: 'load1',
  },
  {
    field: 'runnable',
    wire: 'runnable',
    unit: 'count',
    range: null,
    nullable: true,
    variable: 'runnable',
    description: 'host runnable tasks',
    prometheus: null,
    display: { label: 'runnable', format: 'integer', column: false, chart: false },
    serverStatus: null,
  },
  {
    field: 'cpuThrottled',
    wire: 'cpu_throttled',
    unit: 'fraction',
    range: fraction,
    nullable: true,
    variable: 'throttled',
    description: 'fraction of CFS periods throttled (cgroup scope)',
    prometheus: null,
    display: { label: 'throttled', format: 'percent', column: false, chart: false },
    serverStatus: null,
  },
  {
    field: 'tcpInuse',
    wire: 'tcp_inuse',
    unit: 'count',
    range: null,
    nullable: true,
    variable: 'tcp_inuse',
    description: 'TCP sockets in use on the host',
    prometheus: null,
    display: { label: 'tcp inuse', format: 'integer', column: false, chart: false },
    serverStatus: null,
  },
  {
    field: 'tcpEstablished',
    wire: 'tcp_established',
    unit: 'count',
    range: null,
    nullable: true,
    variable: 'tcp_established',
    description: 'established TCP connections on the host',
    prometheus: { name: 'loadfeed_node_tcp_established', help: "established TCP connections on the node's host" },
    display: { label: 'tcp estab.', format: 'integer', column: false, chart: false },
    serverStatus: null,
  },
  {
    field: 'tcpAcceptsPerSecond',
    wire: 'tcp_accepts_per_second',
    unit: 'per-second',
    range: { min: 0, max: 1e9 },
    nullable: true,
    variable: 'accepts',
    description: 'host connections accepted per second',
    prometheus: null,
    display: { label: 'accepts/s', format: 'decimal', column: false, chart: false },
    serverStatus: null,
  },
  // What the application reports about itself (ORCA, its Prometheus endpoint,
  // pushed lines): absent while it reports nothing or its source is down.
  {
    field: 'applicationUtilization',
    wire: 'application_utilization',
    unit: 'fraction',
    range: { min: 0, max: MAX_UTILIZATION },
    nullable: true,
    variable: 'app_util',
    description: 'utilisation the application reports (ORCA application_utilization), fraction, may exceed 1',
    prometheus: { name: 'loadfeed_node_application_utilization', help: 'utilisation the application reports about itself (ORCA application_utilization)' },
    display: { label: 'app util', format: 'percent', column: false, chart: false },
    serverStatus: null,
  },
  {
    field: 'rpsFractional',
    wire: 'rps_fractional',
    unit: 'per-second',
    range: { min: 0, max: 1e9 },
    nullable: true,
    variable: 'rps',
    description: 'requests per second the application reports',
    prometheus: { name: 'loadfeed_node_application_requests_per_second', help: 'requests per second the application reports serving' },
    display: { label: 'rps', format: 'decimal', column: false, chart: false },
    serverStatus: null,
  },
  {
    field: 'eps',
    wire: 'eps',
    unit: 'per-second',
    range: { min: 0, max: 1e9 },
    nullable: true,
    variable: 'eps',
    description: 'errors per second the application reports',
    prometheus: { name: 'loadfeed_node_application_errors_per_second', help: 'errors per second the application reports' },
    display: { label: 'eps', format: 'decimal', column: false, chart: false },
    serverStatus: null,
  },
] as const satisfies readonly MetricDefinition[];

export type MetricEntry = (typeof METRICS)[number];
/** Decoded Sample fields the catalog describes. */
export type MetricField = MetricEntry['field'];
/** One node's values of every catalogued metric: null where the agent could not measure it. */
export type MetricValues = { readonly [M in MetricEntry as M['field']]: M['nullable'] extends true ? number | null : number };
/** Every catalogued metric of one node, null where unknown (no sample yet, or not measured): what /status shows. */
export type MetricReadings = { readonly [F in MetricField]: number | null };
/** Where metric values are read from: a decoded Sample, or its JSON form in a trace. */
export type MetricSource = { readonly [F in MetricField]?: number | null | undefined };

/**
 * Compiles, once, a function of `params` whose first is a metric source (a
 * Sample) that returns one object literal: every catalogued metric of the
 * source (an absent optional field null, an absent required one 0, the wire
 * default), then `tail`, further properties written over the other params.
 * Generated from the catalog because the loop it replaces (keyed reads, an
 * object grown key by key, then spread into the caller's) cost about 100
 * times as much, some 13 µs a sample on the poller's path.
 */
export function compileMetricValues<F extends (source: MetricSource, ...rest: never[]) => MetricValues>(params: readonly string[], tail = ''): F {
  return compileFromCatalog<F>(() => {
    const reads = METRICS.map((m) => `${JSON.stringify(m.field)}: s[${JSON.stringify(m.field)}] ?? ${m.nullable ? 'null' : '0'}`);
    // The body is built from the catalog's own constant names, nothing else.
    return new Function('s', ...params.slice(1), `return { ${[...reads, tail].filter((x) => x !== '').join(', ')} };`) as F;
  });
}

/**
 * A function generated from the catalog, built at its first call rather
 * than at import, so it has every entry the catalog holds by then.
 * Takes at most five arguments.
 */
export function compileFromCatalog<F extends (...args: never[]) => unknown>(build: () => F): F {
  let compiled: ((...args: unknown[]) => unknown) | null = null;
  return ((a: unknown, b: unknown, c: unknown, d: unknown, e: unknown) => (compiled ??= build() as unknown as (...args: unknown[]) => unknown)(a, b, c, d, e)) as unknown as F;
}

/**
 * Writes every catalogued metric of `source` over `target`, with
 * compileMetricValues' defaults: for a record kept per node or server and
 * written over by each sample instead of allocated anew.
 */
export const copyMetricValues = compileFromCatalog(
  () =>
    // The body is built from the catalog's own constant names, nothing else.
    new Function('t', 's', METRICS.map((m) => `t[${JSON.stringify(m.field)}] = s[${JSON.stringify(m.field)}] ?? ${m.nullable ? 'null' : '0'};`).join('\n')) as (target: MetricValues, source: MetricSource) => void,
);

/** A sample's catalogued values: an absent optional field is null, an absent required one 0 (the wire default). */
export const metricValues = compileMetricValues<(s: MetricSource) => MetricValues>(['s']);

/** What /status shows of a node's latest sample: every catalogued metric, all null before the first sample. */
export function metricReadings(s: MetricSource | null): MetricReadings {
  if (s !== null) return metricValues(s);
  const out: Record<string, null> = {};
  for (const m of METRICS) out[m.field] = null;
  return out as MetricReadings;
}

/** Catalogued metrics sharing a display label: one column of `loadfeed top` and the dashboard. */
export interface MetricGroup extends MetricDisplay {
  readonly fields: readonly MetricField[];
}

/** The catalog's display groups in catalog order; a group takes its first metric's format, column and chart. */
export function metricGroups(): MetricGroup[] {
  const groups = new Map<string, { display: MetricDisplay; fields: MetricField[] }>();
  for (const m of METRICS) {
    const g = groups.get(m.display.label);
    if (g === undefined) groups.set(m.display.label, { display: m.display, fields: [m.field] });
    else g.fields.push(m.field);
  }
  return [...groups.values()].map(({ display, fields }) => ({ ...display, fields }));
}

// Named application metrics (Sample.named_metrics): not catalogued one by one,
// as the application names them; expressions read them as app.NAME. The agent
// keeps within these limits and ingest refuses a sample that does not.

/** A name: a letter, then letters, digits and underscores; 64 characters at most. */
export const APP_METRIC_NAME = /^[a-z][a-z0-9_]{0,63}$/;
export const MAX_APP_METRIC_NAME_LENGTH = 64;
/** Entries of Sample.named_metrics. */
export const MAX_NAMED_METRICS = 64;

/**
 * A foreign name (an ORCA key such as "db.pool-wait") in the contract's
 * alphabet: lower case, every other character an underscore. Null when it
 * cannot be one (empty, too long, or not starting with a letter).
 */
export function toAppMetricName(raw: string): string | null {
  const name = raw.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return APP_METRIC_NAME.test(name) ? name : null;
}
