// `loadfeed top`'s screen, as a pure function of the status document and
// the terminal width, so tests compare text. Readable at 80 columns: the
// name and address columns share what the numbers leave; wider terminals
// also get each server's reason. The metric columns are the catalog's
// (proto's METRICS, `display.column`), so a new metric needs no edit here.
import { metricGroups, type MetricGroup } from '@loadfeed/proto';
import type { NodeStatus, ServerStatus, StatusDocument } from '../../status/document.js';

/** A metric column's label, or one of the columns that are not metrics. */
export type SortKey = string;
/** Columns that are not catalogued metrics, with their keys in the live view. */
const OWN_SORT_KEYS: Readonly<Record<string, SortKey>> = { n: 'conn', w: 'weight', s: 'share', a: 'name' };
/** Keys the live view keeps for itself. */
const RESERVED_KEYS = new Set(['r', 'q']);

const metricColumns = (): MetricGroup[] => metricGroups().filter((g) => g.column);

/** Sort keys: the catalog's metric columns by label, then conn, weight, share, name. */
export function sortKeys(): SortKey[] {
  return [...metricColumns().map((g) => g.label), ...Object.values(OWN_SORT_KEYS)];
}

/** Key → sort key in the live view: a metric column takes the first letter of its label that is still free. */
export function sortByKey(): Record<string, SortKey> {
  const out: Record<string, SortKey> = {};
  const taken = new Set([...Object.keys(OWN_SORT_KEYS), ...RESERVED_KEYS]);
  for (const g of metricColumns()) {
    const letter = [...g.label.toLowerCase()].find((c) => /[a-z]/.test(c) && !taken.has(c));
    if (letter === undefined) continue;
    taken.add(letter);
    out[letter] = g.label;
  }
  return { ...out, ...OWN_SORT_KEYS };
}

export const MIN_COLUMNS = 60;
const REASON_MIN = 16;

export interface RenderOptions {
  readonly sort?: SortKey;
  /** Ascending instead of the default (descending; names ascending). */
  readonly reverse?: boolean;
  /** Screen height; rows that do not fit are counted on the last line. */
  readonly rows?: number;
  /** Where the document came from, shown in the title. */
  readonly source?: string;
  /** Bold headings and coloured states (ANSI), for a terminal. */
  readonly color?: boolean;
}

interface Row {
  readonly name: string;
  readonly address: string;
  readonly state: string;
  readonly bad: boolean;
  /** Each metric column's value by label (a shared column: the largest). */
  readonly metrics: Readonly<Record<string, number | null>>;
  readonly conn: number | null;
  readonly weight: number | null;
  readonly share: number | null;
  /** The application metrics the service's policy reads, e.g. "in_flight 3 latency_seconds 0.05"; empty when none. */
  readonly app: string;
  readonly reason: string;
}

interface Column {
  readonly head: string;
  readonly width: number;
  readonly right: boolean;
  cell(r: Row): string;
}

const OK_STATES = new Set(['live', 'slow-start', 'blackout']);

export function render(doc: StatusDocument, columns: number, options: RenderOptions = {}): string {
  const width = Math.max(MIN_COLUMNS, Math.floor(columns));
  const sort = options.sort ?? 'cpu';
  const bold = (s: string): string => (options.color ? `\x1b[1m${s}\x1b[0m` : s);
  const red = (s: string): string => (options.color ? `\x1b[31m${s}\x1b[0m` : s);
  const fit = (s: string): string => truncate(s, width);

  const groups = metricColumns();
  const sections = doc.services.map((svc) => ({
    title: `${svc.name}  ${svc.address}  ${svc.engine}  ${svc.servers.length} server${svc.servers.length === 1 ? '' : 's'}  weight ${svc.totalWeight}`,
    rows: sortRows(svc.servers.map((s) => serverRow(s, groups)), sort, options.reverse === true),
  }));
  const inService = new Set(doc.services.flatMap((s) => s.servers.map((x) => x.node)));
  const others = doc.nodes.filter((n) => !inService.has(n.id));
  if (others.length > 0) {
    sections.push({
      title: `agents in no service  ${others.length}`,
      rows: sortRows(
        others.map((n) => ({
          name: n.id,
          address: n.hostname,
          state: n.state,
          bad: n.state !== 'live',
          metrics: columnValues(n, groups),
          // No service to count its connections on: the host's established ones.
          conn: n.tcpEstablished,
          weight: null,
          share: null,
          app: '',
          reason: '',
        })),
        sort,
        options.reverse === true,
      ),
    });
  }

  const cols = layout(width, [...sections.flatMap((s) => s.rows)], groups);
  const head = cols.map((c) => pad(c.head, c.width, c.right)).join(' ');
  const line = (r: Row): string => {
    const text = cols.map((c) => pad(c.cell(r), c.width, c.right)).join(' ');
    return r.bad ? red(fit(text)) : fit(text);
  };

  const arrow = (options.reverse === true) !== (sort === 'name') ? '▲' : '▼';
  const title = `loadfeed top  ${options.source ?? ''}  ${doc.health.status}  ${new Date(doc.generatedAt).toISOString().slice(11, 19)}Z  sort ${sort} ${arrow}`;
  const out: string[] = [bold(fit(title.replace(/ {3,}/g, '  '))), fit(summary(doc))];
  for (const reason of doc.health.reasons) out.push(red(fit(`DEGRADED: ${reason}`)));
  const body: string[] = [];
  for (const s of sections) {
    body.push('', bold(fit(s.title)), bold(fit(head)));
    for (const r of s.rows) body.push(line(r));
  }
  if (doc.services.length === 0 && others.length === 0) body.push('', 'no services in the policy and no agent connected');
  const keys = Object.entries(sortByKey());
  const footer = fit(`keys: ${keys.map(([k]) => k).join(' ')} sort (${keys.map(([, v]) => v).join(' ')})  r reverse  q quit`);
  const room = options.rows === undefined ? Infinity : Math.max(1, options.rows - out.length - 1);
  if (body.length > room) {
    const shown = body.slice(0, room - 1);
    const hidden = body.slice(room - 1).filter((l) => l !== '').length;
    out.push(...shown, fit(`… ${hidden} more lines: a taller terminal shows them`));
  } else {
    out.push(...body);
  }
  out.push(footer);
  return `${out.map((l) => l.trimEnd()).join('\n')}\n`;
}

/** Cluster totals in one line: nodes by liveness, CPU and memory, connections, weight, changes. */
export function summary(doc: StatusDocument): string {
  const live = doc.nodes.filter((n) => n.state === 'live').length;
  let cores = 0;
  let busy = 0;
  let memBytes = 0;
  let memUsed = 0;
  for (const n of doc.nodes) {
    if (n.cpuUtilization !== null) {
      cores += n.cores;
      busy += n.cpuUtilization * n.cores;
    }
    if (n.memUtilization !== null) {
      memBytes += n.memoryBytes;
      memUsed += n.memUtilization * n.memoryBytes;
    }
  }
  const servers = doc.services.flatMap((s) => s.servers);
  const conns = servers.reduce((a, s) => a + (s.connections ?? 0), 0);
  const weight = doc.services.reduce((a, s) => a + s.totalWeight, 0);
  return [
    `nodes ${doc.nodes.length} (${live} live${doc.nodes.length > live ? `, ${doc.nodes.length - live} stale` : ''})`,
    `cpu ${percent(cores > 0 ? busy / cores : null)} of ${round(cores)} cores`,
    `mem ${percent(memBytes > 0 ? memUsed / memBytes : null)}`,
    `conns ${conns}`,
    `weight ${weight}`,
  ].join('  ');
}

function serverRow(s: ServerStatus, groups: readonly MetricGroup[]): Row {
  return {
    name: s.node ?? '-',
    address: s.address,
    state: s.state,
    bad: !OK_STATES.has(s.state),
    metrics: columnValues(s.metrics, groups),
    conn: s.connections,
    weight: s.weight,
    share: s.share,
    app: Object.entries(s.app).map(([name, v]) => `${name.replace(/^app\./, '')} ${v === null ? '-' : round(v)}`).join(' '),
    reason: s.reason,
  };
}

/** Each metric column's value: the largest of its metrics that is known. */
function columnValues(readings: ServerStatus['metrics'] | NodeStatus, groups: readonly MetricGroup[]): Record<string, number | null> {
  return Object.fromEntries(groups.map((g) => [g.label, maxOf(...g.fields.map((f) => readings[f]))]));
}

function sortValue(r: Row, key: SortKey): number | null {
  if (key === 'conn' || key === 'weight' || key === 'share') return r[key];
  return r.metrics[key] ?? null;
}

function sortRows(rows: Row[], key: SortKey, reverse: boolean): Row[] {
  const byName = (a: Row, b: Row): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.address < b.address ? -1 : a.address > b.address ? 1 : 0);
  const cmp = (a: Row, b: Row): number => {
    if (key === 'name') return byName(a, b);
    const x = sortValue(a, key);
    const y = sortValue(b, key);
    // Unknown values sort last whichever the direction.
    if (x === null || y === null) return x === y ? byName(a, b) : x === null ? 1 : -1;
    return y - x || byName(a, b);
  };
  const sorted = [...rows].sort(cmp);
  if (!reverse) return sorted;
  const known = sorted.filter((r) => key === 'name' || sortValue(r, key) !== null).reverse();
  return [...known, ...sorted.filter((r) => key !== 'name' && sortValue(r, key) === null)];
}

/** Room a value of each format needs (percent: up to "999%" or "12x"). */
const FORMAT_WIDTH: Readonly<Record<MetricGroup['format'], number>> = { percent: 4, integer: 5, decimal: 5 };

function layout(width: number, rows: readonly Row[], groups: readonly MetricGroup[]): Column[] {
  const fixed: Column[] = [
    { head: 'STATE', width: 10, right: false, cell: (r) => r.state },
    ...groups.map((g): Column => {
      const head = g.label.toUpperCase();
      return { head, width: Math.max(head.length, FORMAT_WIDTH[g.format]), right: true, cell: (r) => formatted(r.metrics[g.label] ?? null, g.format) };
    }),
    { head: 'CONN', width: 5, right: true, cell: (r) => (r.conn === null ? '-' : String(r.conn)) },
    { head: 'WEIGHT', width: 6, right: true, cell: (r) => (r.weight === null ? '-' : String(r.weight)) },
    { head: 'SHARE', width: 5, right: true, cell: (r) => percent(r.share) },
  ];
  const fixedWidth = fixed.reduce((a, c) => a + c.width + 1, 0);
  const longest = (f: (r: Row) => string, head: string): number => Math.max(head.length, ...rows.map((r) => f(r).length));
  const flexible = width - fixedWidth - 1;
  const nameWant = longest((r) => r.name, 'NAME');
  const addrWant = longest((r) => r.address, 'ADDRESS');
  let nameW = Math.min(nameWant, Math.max(6, Math.floor(flexible * 0.45)));
  let addrW = Math.min(addrWant, flexible - nameW);
  nameW = Math.min(nameWant, flexible - addrW);
  addrW = flexible - nameW;
  const spare = addrW - addrWant;
  const cols: Column[] = [
    { head: 'NAME', width: nameW, right: false, cell: (r) => r.name },
    { head: 'ADDRESS', width: spare >= REASON_MIN + 1 ? addrWant : addrW, right: false, cell: (r) => r.address },
    ...fixed,
  ];
  if (spare < REASON_MIN + 1) return cols;
  // Application metrics the policy reads come before the reason, which gets what is left.
  const appWant = rows.some((r) => r.app !== '') ? longest((r) => r.app, 'APP') : 0;
  const appW = Math.min(appWant, spare - 1);
  if (appW > 0) cols.push({ head: 'APP', width: appW, right: false, cell: (r) => r.app });
  const left = spare - 1 - (appW > 0 ? appW + 1 : 0);
  if (left >= REASON_MIN) cols.push({ head: 'WHY', width: left, right: false, cell: (r) => r.reason });
  return cols;
}

function pad(text: string, width: number, right: boolean): string {
  const t = truncate(text, width);
  return right ? t.padStart(width) : t.padEnd(width);
}

function truncate(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

function formatted(x: number | null, format: MetricGroup['format']): string {
  if (x === null || format === 'percent') return percent(x);
  return format === 'integer' ? String(Math.round(x)) : String(Number(x.toPrecision(3)));
}

function percent(x: number | null): string {
  if (x === null) return '-';
  // Process scope may run far over its declared capacity: 12x still fits.
  if (x >= 10) return `${Math.round(x)}x`;
  return `${(x * 100).toFixed(x > 0 && x < 0.0995 ? 1 : 0)}%`;
}

function round(x: number): string {
  return String(Math.round(x * 100) / 100);
}

function maxOf(...xs: (number | null)[]): number | null {
  const known = xs.filter((x): x is number => x !== null);
  return known.length > 0 ? Math.max(...known) : null;
}
