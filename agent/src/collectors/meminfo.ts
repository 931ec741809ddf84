// /proc/meminfo: MemTotal and MemAvailable ("MemTotal:       24683620 kB").
// MemAvailable exists since Linux 3.14; Node 20 needs 4.18, so it is required.
import { join } from 'node:path';
import { DEFAULT_PROC_ROOT, readText } from './read-text.js';
import { fields, integerField, lineAt, lineStart, parseError } from './parse-text.js';

const KIB = 1024;

export interface MemInfo {
  readonly memTotalBytes: number;
  readonly memAvailableBytes: number;
}

export function parseMeminfo(text: string, file = '/proc/meminfo'): MemInfo {
  if (text === '' || text === '\n') throw parseError(file, 'empty file');
  // Only the two lines it needs: the file has about 55.
  const bytes = (key: string): number | null => {
    const at = lineStart(text, key);
    if (at < 0) return null;
    const line = lineAt(text, at);
    const [, value, unit] = fields(line);
    if (unit !== 'kB') throw parseError(file, `expected kB in line ${JSON.stringify(line)}`);
    return integerField(file, value, line) * KIB;
  };
  const total = bytes('MemTotal:');
  if (total === null || total <= 0) throw parseError(file, 'no positive MemTotal');
  const available = bytes('MemAvailable:');
  if (available === null) throw parseError(file, 'no MemAvailable');
  return { memTotalBytes: total, memAvailableBytes: available };
}

export async function readMeminfo(procRoot = DEFAULT_PROC_ROOT): Promise<MemInfo> {
  const file = join(procRoot, 'meminfo');
  return parseMeminfo(await readText(file), file);
}
