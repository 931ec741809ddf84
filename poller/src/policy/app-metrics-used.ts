// Which application metrics a service's policy reads: what /status, /metrics,
// `loadfeed top` and the dashboard show next to each of its servers. Names are
// as expressions spell them: the catalog's application variables (app_util,
// rps, eps) and app.NAME; computed once per compiled service.
import { METRICS, type MetricField, type MetricReadings } from '@loadfeed/proto';
import type { CompiledService } from './compile.js';
import type { Expression } from './expression.js';

/** Catalogued fields that are the application's own figures. */
const APP_FIELDS: ReadonlySet<MetricField> = new Set(['applicationUtilization', 'rpsFractional', 'eps']);
const APP_VARIABLES: ReadonlyMap<string, MetricField> = new Map(METRICS.filter((m) => APP_FIELDS.has(m.field)).map((m) => [m.variable, m.field]));
const cache = new WeakMap<CompiledService, readonly string[]>();

export function appMetricsUsed(service: CompiledService): readonly string[] {
  let names = cache.get(service);
  if (names) return names;
  const st = service.strategy;
  const expressions: Expression[] = [
    ...(st.name === 'expression' ? [st.score] : []),
    ...(st.name === 'queue' ? [st.inFlight, st.latency, ...(st.concurrency === null ? [] : [st.concurrency])] : []),
    ...(service.connectionLimit === null ? [] : [service.connectionLimit]),
    ...service.guards.map((g) => g.when),
  ];
  // orca reads the application's utilisation, rps and eps when they are reported.
  const used = new Set<string>(st.name === 'orca' ? APP_VARIABLES.keys() : []);
  for (const e of expressions) {
    for (const v of e.variables) if (APP_VARIABLES.has(v)) used.add(v);
    for (const a of e.appMetrics) used.add(`app.${a}`);
  }
  names = [...used];
  cache.set(service, names);
  return names;
}

/** The value of a name appMetricsUsed gives, from a node's readings and named metrics; null while not reported. */
export function appMetricValue(node: MetricReadings & { readonly namedMetrics: Readonly<Record<string, number>> }, name: string): number | null {
  const field = APP_VARIABLES.get(name);
  if (field !== undefined) return node[field];
  const n = name.slice('app.'.length);
  return Object.hasOwn(node.namedMetrics, n) ? (node.namedMetrics[n] ?? null) : null;
}
