// A parser of the Prometheus text exposition format (version 0.0.4, which
// prom-client, client_golang and every exporter serve), for the few series an
// agent keeps. It looks at each line's metric name first and parses the rest
// only for wanted names, so a scrape of a large exposition costs little more
// than splitting it into lines. Libraries that exist parse every family into
// objects; this is the part we need, with table tests.
import { AgentError } from '../errors.js';
import { excerpt } from './source.js';

export type PromType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface PromSeries {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PromExposition {
  /** `# TYPE` of each family named in the text. */
  readonly types: ReadonlyMap<string, PromType>;
  /** Series whose metric name is wanted, in text order. */
  readonly series: readonly PromSeries[];
}

export type LabelOp = '=' | '!=' | '=~' | '!~';

export interface LabelMatcher {
  readonly label: string;
  readonly op: LabelOp;
  readonly value: string;
  /** Anchored, as in PromQL; for =~ and !~. */
  readonly re: RegExp | null;
}

export interface SeriesSelector {
  readonly metric: string;
  readonly matchers: readonly LabelMatcher[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES: readonly PromType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

/** Parses `text`; lines of other metrics are skipped unparsed when `wanted` is given. */
export function parsePrometheusText(text: string, wanted: ReadonlySet<string> | null = null): PromExposition {
  const types = new Map<string, PromType>();
  const series: PromSeries[] = [];
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    lineNo += 1;
    if (line.length === 0) continue;
    if (line.startsWith('#')) {
      const m = /^#\s+TYPE\s+(\S+)\s+(\S+)\s*$/.exec(line);
      if (m?.[1] !== undefined && m[2] !== undefined) {
        const t = m[2] as PromType;
        if (!TYPES.includes(t)) throw parseError(lineNo, `unknown type "${excerpt(m[2])}"`);
        types.set(m[1], t);
      }
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (name === undefined) {
      if (line.trim() === '') continue;
      throw parseError(lineNo, `expected a metric name, got "${excerpt(line)}"`);
    }
    if (wanted !== null && !wanted.has(name)) continue;
    let at = name.length;
    let labels: Record<string, string> = {};
    if (line[at] === '{') {
      const parsed = parseLabels(line, at + 1, lineNo, false);
      labels = Object.fromEntries(parsed.matchers.map((m) => [m.label, m.value]));
      at = parsed.end;
    }
    const rest = line.slice(at).trim().split(/\s+/);
    if (rest.length < 1 || rest.length > 2 || rest[0] === '') throw parseError(lineNo, `expected "value [timestamp]" after ${name}, got "${excerpt(line.slice(at))}"`);
    const value = parseValue(rest[0] ?? '');
    if (value === null) throw parseError(lineNo, `${name}: value "${excerpt(rest[0] ?? '')}" is not a number`);
    series.push({ name, labels, value });
  }
  return { types, series };
}

/** `metric{label="v",other!~"re.*"}` or a bare `metric`, as a PromQL instant selector without functions. */
export function parseSeriesSelector(text: string): SeriesSelector {
  const metric = NAME.exec(text)?.[0];
  if (metric === undefined) throw new AgentError('AGENT_CONFIG_INVALID', `series selector "${excerpt(text)}": expected a metric name`);
  if (text.length === metric.length) return { metric, matchers: [] };
  if (text[metric.length] !== '{' || !text.endsWith('}')) {
    throw new AgentError('AGENT_CONFIG_INVALID', `series selector "${excerpt(text)}": expected metric{label="value",...}`);
  }
  try {
    const { matchers, end } = parseLabels(text, metric.length + 1, 1, true);
    if (end !== text.length) throw parseError(1, `unexpected "${excerpt(text.slice(end))}"`);
    return { metric, matchers };
  } catch (err) {
    throw new AgentError('AGENT_CONFIG_INVALID', `series selector "${excerpt(text)}": ${(err as Error).message.replace(/^line 1: /, '')}`, { cause: err });
  }
}

export function selects(selector: SeriesSelector, s: PromSeries): boolean {
  if (s.name !== selector.metric) return false;
  for (const m of selector.matchers) {
    const v = s.labels[m.label] ?? '';
    const ok = m.op === '=' ? v === m.value : m.op === '!=' ? v !== m.value : m.re?.test(v) === (m.op === '=~');
    if (!ok) return false;
  }
  return true;
}

/** Labels from just after `{` to just after `}`; `selector` allows the != =~ !~ operators. */
function parseLabels(line: string, from: number, lineNo: number, selector: boolean): { matchers: LabelMatcher[]; end: number } {
  const matchers: LabelMatcher[] = [];
  let i = from;
  const skipSpace = (): void => {
    while (line[i] === ' ' || line[i] === '\t') i += 1;
  };
  for (;;) {
    skipSpace();
    if (line[i] === '}') return { matchers, end: i + 1 };
    const label = LABEL_NAME.exec(line.slice(i))?.[0];
    if (label === undefined) throw parseError(lineNo, `expected a label name at column ${i + 1}`);
    i += label.length;
    skipSpace();
    const op = (['=~', '!~', '!=', '='] as const).find((o) => line.startsWith(o, i));
    if (op === undefined || (!selector && op !== '=')) throw parseError(lineNo, `expected = after label ${label}`);
    i += op.length;
    skipSpace();
    if (line[i] !== '"') throw parseError(lineNo, `expected a quoted value for label ${label}`);
    i += 1;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) throw parseError(lineNo, `unterminated value of label ${label}`);
      i += 1;
      if (c === '"') break;
      if (c === '\\') {
        const e = line[i];
        i += 1;
        value += e === 'n' ? '\n' : e === '\\' ? '\\' : e === '"' ? '"' : `\\${e ?? ''}`;
      } else {
        value += c;
      }
    }
    let re: RegExp | null = null;
    if (op === '=~' || op === '!~') {
      try {
        re = new RegExp(`^(?:${value})$`);
      } catch (err) {
        throw parseError(lineNo, `label ${label}: ${(err as Error).message}`);
      }
    }
    matchers.push({ label, op, value, re });
    skipSpace();
    if (line[i] === ',') i += 1;
    else if (line[i] !== '}') throw parseError(lineNo, `expected , or } after label ${label}`);
  }
}

function parseValue(text: string): number | null {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return null;
  return Number(text);
}

function parseError(lineNo: number, what: string): AgentError {
  return new AgentError('AGENT_APP_METRICS', `line ${lineNo}: ${what}`);
}
