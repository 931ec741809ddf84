// Replay a trace through a policy on a virtual clock: the same node table,
// liveness sweep and evaluator as the running poller, so an operator can see
// what a policy change would have done to recorded traffic before deploying
// it. Deterministic: the same trace and policy give the same output.
import { Hello, Sample } from '@loadfeed/proto';
import { LIVENESS_SWEEP_MS, NodeTable, type NodeRecord } from '../cycle/node-table.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { WeightEvaluator, type ServerState } from '../policy/evaluate.js';
import type { StrategyRegistry } from '../policy/strategy.js';
import type { TraceEvent } from '../ingest/trace.js';

export interface WeightChange {
  readonly t: number;
  readonly service: string;
  readonly server: string;
  readonly node: string | null;
  readonly from: number | null;
  readonly to: number;
  readonly state: ServerState;
  readonly reason: string;
}

export interface SimulationResult {
  /** Column names, `service/server`, in policy order. */
  readonly columns: readonly string[];
  /** Weights every `stepMs`: t and one value per column (null before the server is known). */
  readonly series: readonly { readonly t: number; readonly weights: readonly (number | null)[] }[];
  readonly changes: readonly WeightChange[];
}

export interface SimulationOptions {
  /**
   * `full` (the default) evaluates every server at every step; `incremental`
   * only the servers with news, as the running poller does between its full
   * cycles (after the first pass, never a full one): the two decide the same.
   */
  readonly passes?: 'full' | 'incremental';
}

export function simulate(policy: CompiledPolicy, events: readonly TraceEvent[], strategies: StrategyRegistry, stepMs: number, options: SimulationOptions = {}): SimulationResult {
  let now = 0;
  /** Nodes with news since the last evaluation (what the poller's scheduler hands its cycles). */
  const news = new Set<NodeRecord>();
  const table = new NodeTable(policy.liveness.staleAfterMs, (e) => news.add(e.node), () => now, (node) => news.add(node));
  const evaluator = new WeightEvaluator(strategies);
  const streams = new Map<string, NodeRecord>();
  const current = new Map<string, number>();
  const columns: string[] = [];
  const changes: WeightChange[] = [];
  const series: { t: number; weights: (number | null)[] }[] = [];

  const evaluate = (): void => {
    const lookup = table.lookup();
    for (const service of policy.services) {
      const decisions = options.passes === 'incremental' ? evaluator.update(service, lookup, now, news).decisions : evaluator.evaluate(service, lookup, now);
      for (const d of decisions) {
        const key = `${service.name}/${d.address}`;
        if (!columns.includes(key)) columns.push(key);
        const from = current.get(key) ?? null;
        if (from === d.weight) continue;
        current.set(key, d.weight);
        changes.push({ t: now, service: service.name, server: d.address, node: d.node, from, to: d.weight, state: d.state, reason: d.reason });
      }
    }
    news.clear();
  };
  const apply = (e: TraceEvent): void => {
    const node = streams.get(e.node);
    switch (e.type) {
      case 'hello':
        streams.set(e.node, table.connect(Hello.create({ ...e.hello, nodeId: e.node })));
        return;
      case 'sample':
        if (node) table.accept(node, Sample.create(e.sample));
        return;
      case 'drain':
      case 'undrain':
        if (node) table.setDrain(node, e.type === 'drain' ? e.reason : null);
        return;
      case 'end':
        if (node) table.disconnect(node);
        streams.delete(e.node);
        return;
    }
  };

  const end = (events.at(-1)?.t ?? 0) + policy.liveness.staleAfterMs + LIVENESS_SWEEP_MS;
  let next = 0;
  let nextStep = 0;
  for (let tick = 0; tick <= end; tick += LIVENESS_SWEEP_MS) {
    // Events with the same time are one burst, evaluated once, as the
    // poller coalesces samples that arrive together.
    while (next < events.length && (events[next]?.t ?? Infinity) <= tick) {
      now = events[next]?.t ?? now;
      for (; next < events.length && events[next]?.t === now; next += 1) apply(events[next] as TraceEvent);
      evaluate();
    }
    now = tick;
    table.sweep();
    evaluate();
    while (nextStep <= tick) {
      series.push({ t: nextStep, weights: columns.map((c) => current.get(c) ?? null) });
      nextStep += stepMs;
    }
  }
  const width = columns.length;
  for (const row of series) while (row.weights.length < width) row.weights.push(null);
  return { columns, series, changes };
}

export function formatSimulation(r: SimulationResult, format: 'table' | 'csv' | 'json'): string {
  const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;
  if (format === 'json') return `${JSON.stringify(r, null, 2)}\n`;
  if (format === 'csv') {
    const q = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    return [
      't_ms,service,server,node,from,to,state,reason',
      ...r.changes.map((c) => [c.t, c.service, c.server, c.node ?? '', c.from ?? '', c.to, c.state, q(c.reason)].join(',')),
      '',
    ].join('\n');
  }
  const widths = r.columns.map((c) => Math.max(c.length, 6));
  const pad = (s: string, w: number): string => s.padStart(w);
  const lines = [
    ['time'.padStart(8), ...r.columns.map((c, i) => pad(c, widths[i] ?? 6))].join('  '),
    ...r.series.map((row) => [pad(secs(row.t), 8), ...row.weights.map((w, i) => pad(w === null ? '-' : String(w), widths[i] ?? 6))].join('  ')),
    '',
    'changes:',
    ...r.changes.map((c) => `${pad(secs(c.t), 8)}  ${c.service} ${c.server}${c.node ? ` (${c.node})` : ''}: ${c.from ?? '-'} → ${c.to}  [${c.state}] ${c.reason}`),
    '',
  ];
  return lines.join('\n');
}
