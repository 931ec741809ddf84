// The nft script that makes the kernel hold exactly a given set of services:
// pure. Layout of the loadfeed-owned table (family inet, so IPv4 and IPv6
// services share it):
//
//   table inet loadfeed {
//     map svc4_tcp_c000020a_80 {                  one map per service, named after it
//       typeof numgen random mod 2 : ip daddr . tcp dport
//       flags interval
//       elements = { 0-49 : 10.0.0.1 . 8080,      weight 50: 50 values of the modulus
//                    50-59 : 10.0.0.2 . 8080,     weight 10
//                    2147483648 : 10.0.0.3 . 8080 }  weight 0: a key numgen never draws
//     }
//     chain services {
//       ip daddr 192.0.2.10 tcp dport 80 dnat ip to numgen random mod 60 map @svc4_tcp_c000020a_80
//     }
//     chain prerouting { type nat hook prerouting priority -100; policy accept; ct state new jump services }
//     chain output { type nat hook output priority -100; policy accept; ct state new jump services }
//   }
//
// The modulus is the sum of the weights and each destination with weight w
// gets w contiguous values, so the ranges carry the weights exactly (no
// rounding) and ruleset.ts reads them back. A destination with weight 0 keeps
// an element at a key of 2^31 or more, outside what `numgen … mod N` draws, so
// it stays listed but gets no new connection. A service whose weights are all
// 0 (or that has no destination) has no rule: new connections to it are not
// translated and go wherever the director's routing sends them (to the
// director itself when the VIP is one of its addresses, where nothing listens,
// so they are refused). `prerouting` translates forwarded traffic (the director
// as a router), `output` the director's own connections. Existing connections
// keep their translation: conntrack holds it, whatever the rules become. The
// `ct state new` match matters for that: a network namespace runs conntrack
// only while some rule needs it, and without it, the moment the last DNAT rule
// went (all weights 0), conntrack would stop and established connections
// would lose their translation (seen: reset). NAT chains only ever see a
// connection's first packet, so the match changes nothing else.
//
// Every update rewrites the whole table in one `nft -f` transaction (`add` then
// `delete` so that a missing table is not an error): the kernel switches from
// the old ruleset to the new one atomically.
import { UnsupportedError } from '../errors.js';
import { formatIp, parseIp } from '../ipvs/inet.js';
import type { NftService, NftServiceKey } from './model.js';

/** First key given to weight-0 destinations; `numgen random mod N` draws 0..N-1 with N below it. */
export const ZERO_WEIGHT_KEY_BASE = 2 ** 31;
/** Largest modulus (sum of a service's weights): below ZERO_WEIGHT_KEY_BASE. */
export const MAX_TOTAL_WEIGHT = ZERO_WEIGHT_KEY_BASE - 1;
const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const MAP_NAME = /^svc([46])_(tcp|udp)_([0-9a-f]{8}|[0-9a-f]{32})_(\d{1,5})$/;

export function checkTableName(name: string): boolean {
  return TABLE_NAME.test(name);
}

/** `svc4_tcp_c000020a_80` for `tcp 192.0.2.10:80`: the address in hex, so any IPv6 text fits a name. */
export function mapName(key: NftServiceKey): string {
  const hex = Buffer.from(parseIp(key.host)).toString('hex');
  return `svc${key.family === 'ip' ? '4' : '6'}_${key.protocol}_${hex}_${key.port}`;
}

/** The service a map name stands for; null for a name the engine does not write. */
export function parseMapName(name: string): NftServiceKey | null {
  const m = MAP_NAME.exec(name);
  if (m === null) return null;
  const [, digit, protocol, hex, port] = m;
  const family = digit === '4' ? 'ip' : 'ip6';
  if ((family === 'ip') !== (hex?.length === 8)) return null;
  const host = formatIp(Uint8Array.from(Buffer.from(hex ?? '', 'hex')));
  const portNumber = Number(port);
  if (portNumber < 1 || portNumber > 65535) return null;
  return { protocol: protocol === 'udp' ? 'udp' : 'tcp', family, host, port: portNumber };
}

export interface MapElement {
  /** First and last key (equal for one value). */
  readonly from: number;
  readonly to: number;
  readonly host: string;
  readonly port: number;
}

/** Elements of a service's map: contiguous ranges by weight, in destination order; weight 0 beyond the modulus. */
export function elementsOf(service: NftService): { elements: MapElement[]; total: number } {
  const elements: MapElement[] = [];
  let next = 0;
  let zero = ZERO_WEIGHT_KEY_BASE;
  for (const d of service.destinations) {
    if (d.weight > 0) {
      elements.push({ from: next, to: next + d.weight - 1, host: d.host, port: d.port });
      next += d.weight;
    } else {
      elements.push({ from: zero, to: zero, host: d.host, port: d.port });
      zero++;
    }
  }
  if (next > MAX_TOTAL_WEIGHT) {
    throw new UnsupportedError(`the weights of a service add up to at most ${MAX_TOTAL_WEIGHT}, not ${next}`);
  }
  return { elements, total: next };
}

/** The whole table as one nft script (see the file comment). */
export function renderScript(table: string, services: readonly NftService[]): string {
  if (!checkTableName(table)) throw new UnsupportedError(`"${table}" is not an nftables table name this engine writes`);
  const lines = [`add table inet ${table}`, `delete table inet ${table}`, `table inet ${table} {`];
  const rules: string[] = [];
  for (const service of services) {
    const { key } = service;
    const name = mapName(key);
    const { elements, total } = elementsOf(service);
    lines.push(
      `\tmap ${name} {`,
      `\t\ttypeof numgen random mod 2 : ${key.family} daddr . ${key.protocol} dport`,
      '\t\tflags interval',
    );
    if (elements.length > 0) {
      const listed = elements.map((e) => `${e.from === e.to ? e.from : `${e.from}-${e.to}`} : ${e.host} . ${e.port}`);
      lines.push(`\t\telements = { ${listed.join(', ')} }`);
    }
    lines.push('\t}');
    if (total > 0) {
      rules.push(
        `\t\t${key.family} daddr ${key.host} ${key.protocol} dport ${key.port} ` +
          `dnat ${key.family} to numgen random mod ${total} map @${name}`,
      );
    }
  }
  lines.push(
    '\tchain services {',
    ...rules,
    '\t}',
    '\tchain prerouting {',
    '\t\ttype nat hook prerouting priority -100; policy accept;',
    '\t\tct state new jump services',
    '\t}',
    '\tchain output {',
    '\t\ttype nat hook output priority -100; policy accept;',
    '\t\tct state new jump services',
    '\t}',
    '}',
  );
  return `${lines.join('\n')}\n`;
}
