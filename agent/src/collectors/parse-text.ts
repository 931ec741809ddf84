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

/** Whitespace-separated tokens of one line. */
export function fields(line: string): string[] {
  return line.trim().split(/\s+/);
}

function badValue(file: string, token: string | undefined, line: string): AgentError {
  return token === undefined
    ? parseError(file, `truncated line ${JSON.stringify(line)}`)
    : parseError(file, `bad value ${JSON.stringify(token)} in line ${JSON.stringify(line)}`);
}
