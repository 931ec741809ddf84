// Host TCP totals, the cheap way (no per-socket walk):
//   /proc/net/sockstat   "TCP: inuse 1 orphan 0 tw 6 alloc 1 mem 0"
//   /proc/net/sockstat6  "TCP6: inuse 0"
//   /proc/net/snmp       "Tcp: RtoAlgorithm RtoMin ... CurrEstab ..." header line,
//                        then "Tcp: 1 200 ..." with the values in the same order.
import { fields, integerField, lineAt, lineStart, parseError } from './parse-text.js';

export interface TcpSnmp {
  /** Connections in ESTABLISHED or CLOSE_WAIT now. */
  readonly currEstab: number;
  /** Cumulative connections accepted (SYN_RECV → ESTABLISHED on a listener). */
  readonly passiveOpens: number;
  readonly activeOpens: number;
}

/** TCP `inuse` from sockstat (line "TCP:") or sockstat6 (line "TCP6:"). */
export function parseSockstat(text: string, file = '/proc/net/sockstat'): number {
  if (text === '' || text === '\n') throw parseError(file, 'empty file');
  let at = lineStart(text, 'TCP:');
  if (at < 0) at = lineStart(text, 'TCP6:');
  if (at < 0) throw parseError(file, 'no TCP line');
  const line = lineAt(text, at);
  const rest = fields(line);
  const inuse = rest.indexOf('inuse');
  if (inuse < 0) throw parseError(file, `no inuse in line ${JSON.stringify(line)}`);
  return integerField(file, rest[inuse + 1], line);
}

export function parseSnmp(text: string, file = '/proc/net/snmp'): TcpSnmp {
  if (text === '' || text === '\n') throw parseError(file, 'empty file');
  const at = lineStart(text, 'Tcp:');
  if (at < 0) throw parseError(file, 'no Tcp lines');
  const header = lineAt(text, at);
  const next = at + header.length + 1;
  const values = next < text.length ? lineAt(text, next) : '';
  if (!values.startsWith('Tcp:')) throw parseError(file, 'Tcp header without a value line');
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
