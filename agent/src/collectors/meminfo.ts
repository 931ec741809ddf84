// /proc/meminfo: MemTotal and MemAvailable ("MemTotal:       24683620 kB").
// MemAvailable exists since Linux 3.14; Node 20 needs 4.18, so it is required.
import { join } from 'node:path';
import { DEFAULT_PROC_ROOT, readText } from './read-text.js';
import { fields, integerField, lines, parseError } from './parse-text.js';

const KIB = 1024;

export interface MemInfo {
  readonly memTotalBytes: number;
  readonly memAvailableBytes: number;
}

export function parseMeminfo(text: string, file = '/proc/meminfo'): MemInfo {
  let total: number | null = null;
  let available: number | null = null;
  for (const line of lines(file, text)) {
    const [key, value, unit] = fields(line);
    if (key !== 'MemTotal:' && key !== 'MemAvailable:') continue;
    if (unit !== 'kB') throw parseError(file, `expected kB in line ${JSON.stringify(line)}`);
    const bytes = integerField(file, value, line) * KIB;
    if (key === 'MemTotal:') total = bytes;
    else available = bytes;
  }
  if (total === null || total <= 0) throw parseError(file, 'no positive MemTotal');
  if (available === null) throw parseError(file, 'no MemAvailable');
  return { memTotalBytes: total, memAvailableBytes: available };
}

export async function readMeminfo(procRoot = DEFAULT_PROC_ROOT): Promise<MemInfo> {
  const file = join(procRoot, 'meminfo');
  return parseMeminfo(await readText(file), file);
}
