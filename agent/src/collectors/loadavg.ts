// /proc/loadavg: "0.19 0.14 0.09 2/86 4667" = load averages over 1, 5 and 15
// minutes, runnable/total scheduling entities, last PID.
import { decimalField, fields, integerField, lines, parseError } from './parse-text.js';

export interface LoadAvg {
  readonly load1: number;
  readonly load5: number;
  readonly load15: number;
  /** Currently runnable tasks: the kernel's nr_running(), the same value as /proc/stat procs_running. */
  readonly runnable: number;
  readonly tasks: number;
}

export function parseLoadavg(text: string, file = '/proc/loadavg'): LoadAvg {
  const [line] = lines(file, text);
  if (line === undefined) throw parseError(file, 'empty file');
  const [l1, l5, l15, entities] = fields(line);
  const [runnable, tasks] = entities?.split('/') ?? [];
  return {
    load1: decimalField(file, l1, line),
    load5: decimalField(file, l5, line),
    load15: decimalField(file, l15, line),
    runnable: integerField(file, runnable, line),
    tasks: integerField(file, tasks, line),
  };
}
