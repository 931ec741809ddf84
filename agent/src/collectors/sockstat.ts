// Host TCP totals, the cheap way (no per-socket walk):
//   /proc/net/sockstat   "TCP: inuse 1 orphan 0 tw 6 alloc 1 mem 0"
//   /proc/net/sockstat6  "TCP6: inuse 0"
//   /proc/net/snmp       "Tcp: RtoAlgorithm RtoMin ... CurrEstab ..." header line,
//                        then "Tcp: 1 200 ..." with the values in the same order.
import { join } from 'node:path';
import { DEFAULT_PROC_ROOT, readText, readTextOrNull } from './read-text.js';
import { fields, integerField, lines, parseError } from './parse-text.js';

export interface TcpSnmp {
  /** Connections in ESTABLISHED or CLOSE_WAIT now. */
  readonly currEstab: number;
  /** Cumulative connections accepted (SYN_RECV → ESTABLISHED on a listener). */
  readonly passiveOpens: number;
  readonly activeOpens: number;
}

/** TCP `inuse` from sockstat (line "TCP:") or sockstat6 (line "TCP6:"). */
export function parseSockstat(text: string, file = '/proc/net/sockstat'): number {
  for (const line of lines(file, text)) {
    const [key, ...rest] = fields(line);
    if (key !== 'TCP:' && key !== 'TCP6:') continue;
    const at = rest.indexOf('inuse');
    if (at < 0) throw parseError(file, `no inuse in line ${JSON.stringify(line)}`);
    return integerField(file, rest[at + 1], line);
  }
  throw parseError(file, 'no TCP line');
}

export function parseSnmp(text: string, file = '/proc/net/snmp'): TcpSnmp {
  const all = lines(file, text);
  const at = all.findIndex((line) => line.startsWith('Tcp:'));
  const header = all[at];
  const values = all[at + 1];
  if (header === undefined) throw parseError(file, 'no Tcp lines');
  if (values === undefined || !values.startsWith('Tcp:')) throw parseError(file, 'Tcp header without a value line');
  const names = fields(header);
  const numbers = fields(values);
  if (names.length !== numbers.length) {
    throw parseError(file, `Tcp header has ${names.length} fields, value line ${JSON.stringify(values)} has ${numbers.length}`);
  }
  const field = (name: string): number => {
    const i = names.indexOf(name);
    if (i < 0) throw parseError(file, `no ${name} in line ${JSON.stringify(header)}`);
    return integerField(file, numbers[i], values);
  };
  return { currEstab: field('CurrEstab'), passiveOpens: field('PassiveOpens'), activeOpens: field('ActiveOpens') };
}

/** New connections accepted per second from two PassiveOpens readings; null when the counter went backwards. */
export function acceptsPerSecond(prevPassiveOpens: number, curPassiveOpens: number, windowMs: number): number | null {
  const delta = curPassiveOpens - prevPassiveOpens;
  if (delta < 0 || windowMs <= 0) return null;
  return delta / (windowMs / 1000);
}

/** TCP sockets in use, IPv4 plus IPv6 (sockstat6 is absent when the kernel has no IPv6). */
export async function readTcpInuse(procRoot = DEFAULT_PROC_ROOT): Promise<number> {
  const v4File = join(procRoot, 'net', 'sockstat');
  const v6File = join(procRoot, 'net', 'sockstat6');
  const [v4, v6] = await Promise.all([readText(v4File), readTextOrNull(v6File)]);
  return parseSockstat(v4, v4File) + (v6 === null ? 0 : parseSockstat(v6, v6File));
}

export async function readTcpSnmp(procRoot = DEFAULT_PROC_ROOT): Promise<TcpSnmp> {
  const file = join(procRoot, 'net', 'snmp');
  return parseSnmp(await readText(file), file);
}
