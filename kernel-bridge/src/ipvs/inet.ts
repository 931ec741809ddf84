// IP address text ↔ bytes, as the kernel's `union nf_inet_addr` holds them
// (16 bytes: an IPv4 address in the first 4, network byte order). Pure.
import { isIPv4, isIPv6 } from 'node:net';
import { AddressError } from '../errors.js';

export type IpvsFamily = 'inet' | 'inet6';

/** `sizeof(union nf_inet_addr)`. */
export const INET_ADDR_LEN = 16;

export function familyOf(text: string): IpvsFamily {
  if (isIPv4(text)) return 'inet';
  if (isIPv6(text)) return 'inet6';
  throw new AddressError(`"${text}" is not an IP address`);
}

/** `192.0.2.1` → 4 bytes, `2001:db8::1` → 16 bytes. */
export function parseIp(text: string): Uint8Array {
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number));
  if (!isIPv6(text)) throw new AddressError(`"${text}" is not an IP address`);
  let head = text;
  let tail4: number[] = [];
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two groups.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1] !== undefined && dotted[2] !== undefined) {
    head = dotted[1].endsWith('::') ? dotted[1] : dotted[1].slice(0, -1);
    tail4 = dotted[2].split('.').map(Number);
  }
  const groupsOf = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const [left = '', right] = head.split('::');
  const leftGroups = groupsOf(left);
  const rightGroups = right === undefined ? [] : groupsOf(right);
  const tailGroups = tail4.length === 4 ? [((tail4[0] ?? 0) << 8) | (tail4[1] ?? 0), ((tail4[2] ?? 0) << 8) | (tail4[3] ?? 0)] : [];
  const missing = 8 - leftGroups.length - rightGroups.length - tailGroups.length;
  const groups = [...leftGroups, ...new Array<number>(right === undefined ? 0 : missing).fill(0), ...rightGroups, ...tailGroups];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** 4 bytes → dotted quad; 16 bytes → RFC 5952 text (lower case, longest zero run as `::`). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) throw new AddressError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0));
  // RFC 5952 4.2: the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** The 16-byte `union nf_inet_addr` of an address. */
export function encodeInetAddr(text: string): Uint8Array {
  const bytes = parseIp(text);
  const out = new Uint8Array(INET_ADDR_LEN);
  out.set(bytes);
  return out;
}

/** Read a `union nf_inet_addr` as `family` says (IPv4 uses the first 4 bytes). */
export function decodeInetAddr(family: IpvsFamily, bytes: Uint8Array): string {
  if (bytes.length !== INET_ADDR_LEN) {
    throw new AddressError(`union nf_inet_addr has ${INET_ADDR_LEN} bytes, not ${bytes.length}`);
  }
  return formatIp(family === 'inet' ? bytes.subarray(0, 4) : bytes);
}

/** The canonical spelling of an address: `formatIp(parseIp(text))`. */
export function canonicalIp(text: string): string {
  return formatIp(parseIp(text));
}
