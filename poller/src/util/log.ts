// The poller's logger: pino JSON lines for journald and log shippers, and
// the same records as one readable line each when a person watches a
// terminal (`--log-format auto`, the default, picks by isTTY). The readable
// form is a few lines of our own rather than pino-pretty and its 13
// dependencies; it is for eyes only, the JSON form is the contract.
import { pino, type Logger } from 'pino';
import { OptionError } from '../errors.js';

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const LEVELS: Record<number, { readonly name: string; readonly color: string }> = {
  10: { name: 'TRACE', color: '\x1b[90m' },
  20: { name: 'DEBUG', color: '\x1b[36m' },
  30: { name: 'INFO ', color: '\x1b[32m' },
  40: { name: 'WARN ', color: '\x1b[33m' },
  50: { name: 'ERROR', color: '\x1b[31m' },
  60: { name: 'FATAL', color: '\x1b[35m' },
};
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

export interface LogTarget {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export function parseLogFormat(text: string): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(text)) return text as LogFormat;
  throw new OptionError(`--log-format: "${text}" must be one of ${LOG_FORMATS.join(', ')}`);
}

export function createLogger(level: string, format: LogFormat, target: LogTarget = process.stdout): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && target.isTTY === true);
  if (!pretty) return target === process.stdout ? pino({ level }) : pino({ level }, { write: (line: string) => target.write(line) });
  const color = target.isTTY === true;
  return pino({ level }, { write: (line: string) => target.write(formatLogLine(line, color)) });
}

/**
 * One pino JSON line as `12:00:01.234 INFO  msg key=value …`; a weight change
 * reads `weight changed web 10.0.0.21:80 50 → 62 (cpu 0.41 of 4 cores)`.
 * Lines that are not JSON pass through.
 */
export function formatLogLine(line: string, color = false): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const level = LEVELS[Number(rec['level'])] ?? { name: String(rec['level']).padEnd(5), color: '' };
  const time = typeof rec['time'] === 'number' ? new Date(rec['time']).toISOString().slice(11, 23) : '';
  const paint = (code: string, text: string): string => (color && code !== '' ? `${code}${text}\x1b[0m` : text);
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) if (!OMIT.has(k)) rest[k] = v;
  let msg = typeof rec['msg'] === 'string' ? rec['msg'] : '';
  if (msg === 'weight changed' && 'to' in rest) {
    const from = rest['from'] === null || rest['from'] === undefined ? 'new' : String(rest['from']);
    msg = `weight changed ${String(rest['service'] ?? '')} ${String(rest['server'] ?? '')} ${from} → ${String(rest['to'])}`;
    if (typeof rest['reason'] === 'string' && rest['reason'] !== '') msg += ` (${rest['reason']})`;
    for (const k of ['service', 'server', 'from', 'to', 'reason']) delete rest[k];
  }
  let stack = '';
  const err = rest['err'];
  if (err !== null && typeof err === 'object') {
    const e = err as { message?: unknown; stack?: unknown };
    rest['err'] = e.message;
    if (typeof e.stack === 'string') stack = `\n    ${e.stack.split('\n').slice(1, 4).map((l) => l.trim()).join('\n    ')}`;
  }
  const fields = Object.entries(rest).map(([k, v]) => `${paint('\x1b[2m', `${k}=`)}${value(v)}`);
  return `${paint('\x1b[2m', time)} ${paint(level.color, level.name)} ${msg}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}${stack}\n`;
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? 'undefined';
}
