// Strict number parsing shared by the /proc and /sys parsers: a value that is
// not exactly a number is a parse error naming the file and the line, never
// NaN or 0 (Number('') is 0, parseInt('12abc') is 12).
import { AgentError } from '../errors.js';

const INTEGER = /^-?\d+$/;
const DECIMAL = /^-?\d+(?:\.\d+)?$/;

export function parseError(file: string, detail: string): AgentError {
  return new AgentError('AGENT_PROC_PARSE', `${file}: ${detail}`);
}

/**
 * An integer field. Counters above 2^53 (cpuacct.usage in ns after months)
 * lose low digits, which is irrelevant for per-second deltas.
 */
export function integerField(file: string, token: string | undefined, line: string): number {
  if (token === undefined || !INTEGER.test(token)) throw badValue(file, token, line);
  return Number(token);
}

/** A decimal field such as a load average or a PSI percentage. */
export function decimalField(file: string, token: string | undefined, line: string): number {
  if (token === undefined || !DECIMAL.test(token)) throw badValue(file, token, line);
  return Number(token);
}

/** The lines of a file without the trailing empty one; throws on an empty file. */
export function lines(file: string, text: string): string[] {
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  if (all.length === 0) throw parseError(file, 'empty file');
  return all;
}

/**
 * Where the first line of `text` starting with `prefix` begins (at or after
 * `from`), or -1. Parsers that need a few lines of a long file find them
 * this way instead of splitting it all: under the agent's --lite-mode every
 * split and regular expression runs in the interpreter, and /proc/meminfo
 * (55 lines) cost 65 µs split line by line against 2 µs for its two lines.
 */
export function lineStart(text: string, prefix: string, from = 0): number {
  if (from === 0 && text.startsWith(prefix)) return 0;
  const at = text.indexOf(`\n${prefix}`, Math.max(0, from - 1));
  return at < 0 ? -1 : at + 1;
}

/** The line that begins at `start`, without its newline. */
export function lineAt(text: string, start: number): string {
  const end = text.indexOf('\n', start);
  return text.slice(start, end < 0 ? text.length : end);
}

/** Whitespace-separated tokens of one line. */
export function fields(line: string): string[] {
  return line.trim().split(/\s+/);
}

function badValue(file: string, token: string | undefined, line: string): AgentError {
  return token === undefined
    ? parseError(file, `truncated line ${JSON.stringify(line)}`)
    : parseError(file, `bad value ${JSON.stringify(token)} in line ${JSON.stringify(line)}`);
}
