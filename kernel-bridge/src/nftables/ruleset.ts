// Reads the loadfeed table back from `nft -j list table inet <name>`: pure.
// Weights come from the map ranges (script.ts), checked against the rule's
// modulus, so what observe() reports is what the kernel draws from. Maps the
// engine does not write are ignored (the next update drops them: the table is
// loadfeed's); a table that breaks the layout is a MalformedReplyError.
import { MalformedReplyError } from '../errors.js';
import { canonicalIp } from '../ipvs/inet.js';
import { familyOfHost, serviceAddress, sortServices, type NftDestination, type NftService, type NftServiceKey } from './model.js';
import { ZERO_WEIGHT_KEY_BASE, parseMapName } from './script.js';

/** The chain holding one DNAT rule per service with a weight above 0. */
export const SERVICES_CHAIN = 'services';

type Json = unknown;

export function parseRuleset(text: string, table: string): NftService[] {
  let document: Json;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new MalformedReplyError(`nft -j list table inet ${table}: not JSON: ${(error as Error).message}`, { cause: error });
  }
  const items = field(document, 'nftables');
  if (!Array.isArray(items)) throw new MalformedReplyError(`nft -j list table inet ${table}: no "nftables" array`);

  const maps = new Map<string, { key: NftServiceKey; elements: Element[] }>();
  const moduli = new Map<string, number>();
  for (const item of items) {
    const map = field(item, 'map');
    if (map !== undefined && field(map, 'table') === table) {
      const name = stringField(map, 'name', 'map');
      const key = parseMapName(name);
      if (key !== null) maps.set(name, { key, elements: parseElements(map, name, key) });
    }
    const rule = field(item, 'rule');
    if (rule !== undefined && field(rule, 'table') === table && field(rule, 'chain') === SERVICES_CHAIN) {
      const found = parseRule(rule);
      if (found !== null) {
        if (moduli.has(found.map)) throw new MalformedReplyError(`two rules use map ${found.map}`);
        moduli.set(found.map, found.modulus);
        const key = parseMapName(found.map);
        if (key === null || key.host !== found.host || key.port !== found.port || key.protocol !== found.protocol) {
          throw new MalformedReplyError(
            `the rule for ${found.protocol} ${found.host} port ${found.port} uses map ${found.map}, which is not that service's`,
          );
        }
      }
    }
  }
  for (const name of moduli.keys()) {
    if (!maps.has(name)) throw new MalformedReplyError(`a rule uses map ${name}, which the table does not have`);
  }
  return sortServices([...maps].map(([name, { key, elements }]) => ({ key, destinations: weightsOf(key, elements, moduli.get(name)) })));
}

interface Element {
  readonly from: number;
  readonly to: number;
  readonly host: string;
  readonly port: number;
}

function parseElements(map: Json, name: string, key: NftServiceKey): Element[] {
  const expected = key.family === 'ip' ? 'ipv4_addr . inet_service' : 'ipv6_addr . inet_service';
  if (field(map, 'type') !== 'integer' || field(map, 'map') !== expected) {
    throw new MalformedReplyError(`map ${name}: type ${JSON.stringify(field(map, 'type'))} : ${JSON.stringify(field(map, 'map'))}, expected integer : ${expected}`);
  }
  const elem = field(map, 'elem') ?? [];
  if (!Array.isArray(elem)) throw new MalformedReplyError(`map ${name}: "elem" is not a list`);
  return elem.map((pair: Json, i): Element => {
    const where = `map ${name} element ${i + 1}`;
    if (!Array.isArray(pair) || pair.length !== 2) throw new MalformedReplyError(`${where}: expected [key, value]`);
    const [rawKey, value] = pair as [Json, Json];
    const keyJson = field(field(rawKey, 'elem'), 'val') ?? rawKey;
    const range = field(keyJson, 'range');
    const [from, to] = Array.isArray(range) ? range : [keyJson, keyJson];
    const concat = field(value, 'concat');
    if (!isCount(from) || !isCount(to) || from > to || !Array.isArray(concat) || concat.length !== 2) {
      throw new MalformedReplyError(`${where}: expected an integer or range mapped to address . port, got ${JSON.stringify(pair)}`);
    }
    const [address, port] = concat as [Json, Json];
    if (typeof address !== 'string' || !isCount(port) || port < 1 || port > 65535) {
      throw new MalformedReplyError(`${where}: bad address . port ${JSON.stringify(concat)}`);
    }
    const host = canonicalIp(address);
    if (familyOfHost(host) !== key.family) throw new MalformedReplyError(`${where}: ${address} is not of the service's family`);
    return { from, to, host, port };
  });
}

/** Weights from ranges: w contiguous values below the modulus; one key at 2^31 or above for weight 0. */
function weightsOf(key: NftServiceKey, elements: readonly Element[], modulus: number | undefined): NftDestination[] {
  const where = `service ${serviceAddress(key)}`;
  const drawn = elements.filter((e) => e.from < ZERO_WEIGHT_KEY_BASE).sort((a, b) => a.from - b.from);
  let next = 0;
  for (const e of drawn) {
    if (e.from !== next || e.to >= ZERO_WEIGHT_KEY_BASE) {
      throw new MalformedReplyError(`${where}: the ranges do not cover 0..${(modulus ?? 0) - 1} one after another (at ${e.from}-${e.to})`);
    }
    next = e.to + 1;
  }
  if (next !== (modulus ?? 0)) {
    throw new MalformedReplyError(
      `${where}: the ranges cover 0..${next - 1} but ${modulus === undefined ? 'there is no rule' : `the rule draws mod ${modulus}`}`,
    );
  }
  const seen = new Set<string>();
  return elements.map((e) => {
    const address = `${e.host} ${e.port}`;
    if (seen.has(address)) throw new MalformedReplyError(`${where}: destination ${e.host} port ${e.port} appears twice`);
    seen.add(address);
    if (e.from >= ZERO_WEIGHT_KEY_BASE && e.from !== e.to) throw new MalformedReplyError(`${where}: a weight-0 key is a range`);
    return { host: e.host, port: e.port, weight: e.from >= ZERO_WEIGHT_KEY_BASE ? 0 : e.to - e.from + 1 };
  });
}

/** `<ip|ip6> daddr H <tcp|udp> dport P dnat <ip|ip6> to numgen random mod N map @M`, or null for any other rule. */
function parseRule(rule: Json): { host: string; port: number; protocol: 'tcp' | 'udp'; map: string; modulus: number } | null {
  const expr = field(rule, 'expr');
  if (!Array.isArray(expr)) return null;
  let host: string | undefined;
  let port: number | undefined;
  let protocol: 'tcp' | 'udp' | undefined;
  let found: { map: string; modulus: number } | undefined;
  for (const e of expr) {
    const match = field(e, 'match');
    const payload = field(field(match, 'left'), 'payload');
    const right = field(match, 'right');
    const proto = field(payload, 'protocol');
    const name = field(payload, 'field');
    if ((proto === 'ip' || proto === 'ip6') && name === 'daddr' && typeof right === 'string') host = canonicalIp(right);
    if ((proto === 'tcp' || proto === 'udp') && name === 'dport' && isCount(right)) {
      protocol = proto;
      port = right;
    }
    const map = field(field(field(e, 'dnat'), 'addr'), 'map');
    const numgen = field(field(map, 'key'), 'numgen');
    const data = field(map, 'data');
    const modulus = field(numgen, 'mod');
    if (field(numgen, 'mode') === 'random' && isCount(modulus) && typeof data === 'string' && data.startsWith('@')) {
      if ((field(numgen, 'offset') ?? 0) !== 0) throw new MalformedReplyError(`rule for map ${data}: numgen offset is not 0`);
      found = { map: data.slice(1), modulus };
    }
  }
  if (found === undefined) return null;
  if (host === undefined || port === undefined || protocol === undefined) {
    throw new MalformedReplyError(`the rule using map ${found.map} does not match one address and port`);
  }
  return { host, port, protocol, ...found };
}

function field(value: Json, name: string): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, Json>)[name] : undefined;
}

function stringField(value: Json, name: string, what: string): string {
  const found = field(value, name);
  if (typeof found !== 'string') throw new MalformedReplyError(`${what} without a "${name}"`);
  return found;
}

function isCount(value: Json): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}
