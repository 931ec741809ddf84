// What IPVS holds, in loadfeed's terms. Identity (what names a service or a
// destination: the key the kernel looks it up by) is kept apart from its
// settings (what an edit may change) and from observed counters (what only
// the kernel writes), as cloudflare/ipvs separates Service from
// ServiceExtended. Conversions to and from the codec's attribute records and
// the engine-neutral address strings live here too.
import { formatHostPort, parseHostPort } from '../address.js';
import { AddressError } from '../errors.js';
import type { DestAttributes, ServiceAttributes, StatsAttributes } from './codec.js';
import { canonicalIp, decodeInetAddr, encodeInetAddr, familyOf, type IpvsFamily } from './inet.js';
import { AF, IPPROTO, IP_VS_CONN_F, IP_VS_CONN_F_TUNNEL_TYPE, IP_VS_SVC_F } from './uapi.js';

export type { IpvsFamily } from './inet.js';
export type IpvsProtocol = 'tcp' | 'udp' | 'sctp';
/** IP_VS_CONN_F_* forwarding methods, as ipvsadm names them (Masq, Local, Tunnel, Route, Bypass). */
export type IpvsForwardMethod = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass';
export type IpvsTunnelType = 'ipip' | 'gue' | 'gre';

/**
 * Identity of a virtual service: protocol + address + port, or a firewall
 * mark (with the address family it applies to).
 */
export type IpvsServiceKey =
  | {
      readonly kind: 'address';
      readonly family: IpvsFamily;
      readonly protocol: IpvsProtocol;
      /** Canonical IP text (`canonicalIp`). */
      readonly address: string;
      readonly port: number;
    }
  | { readonly kind: 'fwmark'; readonly family: IpvsFamily; readonly fwmark: number };

/** What an edit of a service may change. */
export interface IpvsServiceSettings {
  readonly scheduler: string;
  /** IP_VS_SVC_F_* bits (persistent, one-packet, scheduler flags). */
  readonly flags: number;
  /** Persistence timeout in seconds (0 when not persistent). */
  readonly timeout: number;
  /** Persistence netmask: an IPv4 mask as a number, or an IPv6 prefix length. */
  readonly netmask: number;
  /** Persistence engine (`sip`), null when none. */
  readonly persistenceEngine: string | null;
}

/**
 * Counters since the service or destination was added (or IPVS_CMD_ZERO).
 * Rates are per second, estimated by the kernel; null when the driver does not
 * read them (ipvsadm).
 */
export interface IpvsStats {
  readonly connections: bigint;
  readonly inPackets: bigint;
  readonly outPackets: bigint;
  readonly inBytes: bigint;
  readonly outBytes: bigint;
  readonly connectionsPerSecond: bigint | null;
  readonly inPacketsPerSecond: bigint | null;
  readonly outPacketsPerSecond: bigint | null;
  readonly inBytesPerSecond: bigint | null;
  readonly outBytesPerSecond: bigint | null;
}

export interface IpvsService {
  readonly key: IpvsServiceKey;
  readonly settings: IpvsServiceSettings;
  /** From STATS64 when the kernel sends it (4.x and later), else STATS; null when absent. */
  readonly stats: IpvsStats | null;
}

/** Identity of a destination within its service. */
export interface IpvsDestinationKey {
  readonly family: IpvsFamily;
  /** Canonical IP text. */
  readonly address: string;
  readonly port: number;
}

export interface IpvsTunnel {
  readonly type: IpvsTunnelType;
  /** Encapsulation port for GUE, 0 otherwise. */
  readonly port: number;
  /** IP_VS_TUNNEL_ENCAP_FLAG_* bits. */
  readonly flags: number;
}

/** What IPVS_CMD_SET_DEST must carry: all of it, or the kernel resets what is left out. */
export interface IpvsDestinationSettings {
  readonly forward: IpvsForwardMethod;
  readonly weight: number;
  /** Upper connection threshold; 0 = no limit. */
  readonly upperThreshold: number;
  /** Lower threshold at which an overloaded destination is used again; 0 = 3/4 of the upper one. */
  readonly lowerThreshold: number;
  /** Tunnel encapsulation; null when the kernel does not report it (before 5.2). */
  readonly tunnel: IpvsTunnel | null;
}

export interface IpvsDestinationCounters {
  readonly activeConnections: number;
  readonly inactiveConnections: number;
  /** Connections held by persistence templates; null when the driver does not read them (ipvsadm). */
  readonly persistentConnections: number | null;
  readonly stats: IpvsStats | null;
}

export interface IpvsDestination {
  readonly key: IpvsDestinationKey;
  readonly settings: IpvsDestinationSettings;
  readonly counters: IpvsDestinationCounters;
}

/** One service and its destinations, as the kernel reported them. */
export interface IpvsServiceState {
  readonly service: IpvsService;
  readonly destinations: readonly IpvsDestination[];
}

// --- names ------------------------------------------------------------------

const PROTOCOLS: Readonly<Record<IpvsProtocol, number>> = { tcp: IPPROTO.TCP, udp: IPPROTO.UDP, sctp: IPPROTO.SCTP };
const FORWARD: Readonly<Record<IpvsForwardMethod, number>> = {
  masq: IP_VS_CONN_F.MASQ,
  local: IP_VS_CONN_F.LOCALNODE,
  tunnel: IP_VS_CONN_F.TUNNEL,
  route: IP_VS_CONN_F.DROUTE,
  bypass: IP_VS_CONN_F.BYPASS,
};
const TUNNEL_TYPES: Readonly<Record<IpvsTunnelType, number>> = {
  ipip: IP_VS_CONN_F_TUNNEL_TYPE.IPIP,
  gue: IP_VS_CONN_F_TUNNEL_TYPE.GUE,
  gre: IP_VS_CONN_F_TUNNEL_TYPE.GRE,
};

const nameOf = <K extends string>(table: Readonly<Record<K, number>>, value: number): K | undefined =>
  (Object.keys(table) as K[]).find((k) => table[k] === value);

export const afOf = (family: IpvsFamily): number => (family === 'inet' ? AF.INET : AF.INET6);
export function familyOfAf(af: number): IpvsFamily | undefined {
  if (af === AF.INET) return 'inet';
  if (af === AF.INET6) return 'inet6';
  return undefined;
}
export const protocolNumber = (protocol: IpvsProtocol): number => PROTOCOLS[protocol];
export const protocolName = (value: number): IpvsProtocol | undefined => nameOf(PROTOCOLS, value);
export const forwardNumber = (method: IpvsForwardMethod): number => FORWARD[method];
export const forwardName = (value: number): IpvsForwardMethod | undefined =>
  nameOf(FORWARD, value & IP_VS_CONN_F.FWD_MASK);
export const tunnelTypeNumber = (type: IpvsTunnelType): number => TUNNEL_TYPES[type];
export const tunnelTypeName = (value: number): IpvsTunnelType | undefined => nameOf(TUNNEL_TYPES, value);

// --- address strings (the Engine interface's ServiceAddress / DestinationAddress)

/**
 * `tcp 192.0.2.10:80`, `udp [2001:db8::1]:53`, `sctp 192.0.2.10:3868`, or
 * `fwmark 7` (IPv4) / `fwmark 7 ipv6`. The protocol defaults to tcp, as in
 * the other engines.
 */
export function parseServiceKey(text: string): IpvsServiceKey {
  const fwmark = /^\s*fwmark\s+(\d+)(?:\s+(ipv4|ipv6))?\s*$/i.exec(text);
  if (fwmark) {
    const mark = Number(fwmark[1]);
    if (!Number.isInteger(mark) || mark < 1 || mark > 0xffffffff) {
      throw new AddressError(`"${text}": firewall mark ${fwmark[1]} must be 1..4294967295`);
    }
    return { kind: 'fwmark', family: fwmark[2]?.toLowerCase() === 'ipv6' ? 'inet6' : 'inet', fwmark: mark };
  }
  const m = /^\s*(?:(tcp|udp|sctp)\s+)?(\S+)\s*$/i.exec(text);
  if (!m || m[2] === undefined) {
    throw new AddressError(
      `"${text}" is not an IPVS service address: expected "tcp IP:PORT" (or udp, sctp) or "fwmark N [ipv6]"`,
    );
  }
  const { host, port } = parseHostPort(m[2]);
  return {
    kind: 'address',
    family: familyOf(host),
    protocol: (m[1]?.toLowerCase() ?? 'tcp') as IpvsProtocol,
    address: canonicalIp(host),
    port,
  };
}

export function formatServiceKey(key: IpvsServiceKey): string {
  if (key.kind === 'fwmark') return `fwmark ${key.fwmark}${key.family === 'inet6' ? ' ipv6' : ''}`;
  return `${key.protocol} ${formatHostPort({ host: key.address, port: key.port })}`;
}

/** `192.0.2.21:8080` or `[2001:db8::1]:8080`; port 0 is allowed (fwmark services without port mapping). */
export function parseDestinationKey(text: string): IpvsDestinationKey {
  const { host, port } = parseHostPort(text, { allowPortZero: true });
  return { family: familyOf(host), address: canonicalIp(host), port };
}

export function formatDestinationKey(key: IpvsDestinationKey): string {
  return formatHostPort({ host: key.address, port: key.port });
}

// --- codec records ↔ model -----------------------------------------------------

/** The attributes that name a service in a request. */
export function serviceKeyAttributes(key: IpvsServiceKey): ServiceAttributes {
  if (key.kind === 'fwmark') return { af: afOf(key.family), fwmark: key.fwmark };
  return {
    af: afOf(key.family),
    protocol: protocolNumber(key.protocol),
    addr: encodeInetAddr(key.address),
    port: key.port,
  };
}

/** The attributes that name a destination in a request. */
export function destinationKeyAttributes(key: IpvsDestinationKey): DestAttributes {
  return { addr: encodeInetAddr(key.address), port: key.port, addrFamily: afOf(key.family) };
}

/** Why a record from the kernel cannot be read as a service or destination; the caller wraps it. */
export class IncompleteRecordError extends Error {}

export function serviceFromAttributes(attrs: ServiceAttributes): IpvsService {
  const family = familyOfAf(need(attrs.af, 'AF'));
  if (family === undefined) throw new IncompleteRecordError(`unknown address family ${String(attrs.af)}`);
  let key: IpvsServiceKey;
  if (attrs.fwmark !== undefined && attrs.fwmark !== 0) {
    key = { kind: 'fwmark', family, fwmark: attrs.fwmark };
  } else {
    const protocol = protocolName(need(attrs.protocol, 'PROTOCOL'));
    if (protocol === undefined) throw new IncompleteRecordError(`unknown protocol ${String(attrs.protocol)}`);
    key = {
      kind: 'address',
      family,
      protocol,
      address: decodeInetAddr(family, need(attrs.addr, 'ADDR')),
      port: need(attrs.port, 'PORT'),
    };
  }
  return {
    key,
    settings: {
      scheduler: need(attrs.schedName, 'SCHED_NAME'),
      // HASHED is the kernel's bookkeeping, not a setting (sending it back would break the service).
      flags: (attrs.flags?.flags ?? 0) & ~IP_VS_SVC_F.HASHED,
      timeout: attrs.timeout ?? 0,
      netmask: attrs.netmask ?? 0,
      persistenceEngine: attrs.peName === undefined || attrs.peName === '' ? null : attrs.peName,
    },
    stats: statsFrom(attrs.stats64 ?? attrs.stats),
  };
}

export function destinationFromAttributes(attrs: DestAttributes, serviceFamily: IpvsFamily): IpvsDestination {
  // ADDR_FAMILY came with mixed-family tunnels (4.14); older kernels imply the service's.
  const family = attrs.addrFamily === undefined ? serviceFamily : familyOfAf(attrs.addrFamily);
  if (family === undefined) throw new IncompleteRecordError(`unknown address family ${String(attrs.addrFamily)}`);
  const forward = forwardName(need(attrs.fwdMethod, 'FWD_METHOD'));
  if (forward === undefined) throw new IncompleteRecordError(`unknown forwarding method ${String(attrs.fwdMethod)}`);
  const tunnelType = attrs.tunType === undefined ? undefined : tunnelTypeName(attrs.tunType);
  return {
    key: { family, address: decodeInetAddr(family, need(attrs.addr, 'ADDR')), port: need(attrs.port, 'PORT') },
    settings: {
      forward,
      weight: need(attrs.weight, 'WEIGHT'),
      upperThreshold: attrs.uThresh ?? 0,
      lowerThreshold: attrs.lThresh ?? 0,
      tunnel:
        tunnelType === undefined ? null : { type: tunnelType, port: attrs.tunPort ?? 0, flags: attrs.tunFlags ?? 0 },
    },
    counters: {
      activeConnections: attrs.activeConns ?? 0,
      inactiveConnections: attrs.inactConns ?? 0,
      persistentConnections: attrs.persistConns ?? 0,
      stats: statsFrom(attrs.stats64 ?? attrs.stats),
    },
  };
}

/** The full attribute set of NEW_DEST / SET_DEST for `settings`. */
export function destinationSettingsAttributes(settings: IpvsDestinationSettings): DestAttributes {
  return {
    fwdMethod: forwardNumber(settings.forward),
    weight: settings.weight,
    uThresh: settings.upperThreshold,
    lThresh: settings.lowerThreshold,
    ...(settings.tunnel === null
      ? {}
      : { tunType: tunnelTypeNumber(settings.tunnel.type), tunPort: settings.tunnel.port, tunFlags: settings.tunnel.flags }),
  };
}

function statsFrom(stats: StatsAttributes | undefined): IpvsStats | null {
  if (stats === undefined) return null;
  return {
    connections: stats.conns ?? 0n,
    inPackets: stats.inpkts ?? 0n,
    outPackets: stats.outpkts ?? 0n,
    inBytes: stats.inbytes ?? 0n,
    outBytes: stats.outbytes ?? 0n,
    connectionsPerSecond: stats.cps ?? 0n,
    inPacketsPerSecond: stats.inpps ?? 0n,
    outPacketsPerSecond: stats.outpps ?? 0n,
    inBytesPerSecond: stats.inbps ?? 0n,
    outBytesPerSecond: stats.outbps ?? 0n,
  };
}

function need<T>(value: T | undefined, attribute: string): T {
  if (value === undefined) throw new IncompleteRecordError(`attribute ${attribute} is missing`);
  return value;
}

/**
 * Close to `ipvsadm -Ln`'s order: IPv4 before IPv6, address services before
 * fwmark ones, then protocol, address bytes, port (or mark).
 */
export function compareServiceKeys(a: IpvsServiceKey, b: IpvsServiceKey): number {
  if (a.family !== b.family) return a.family === 'inet' ? -1 : 1;
  if (a.kind !== b.kind) return a.kind === 'address' ? -1 : 1;
  if (a.kind === 'fwmark' && b.kind === 'fwmark') return a.fwmark - b.fwmark;
  if (a.kind === 'address' && b.kind === 'address') {
    return (
      protocolNumber(a.protocol) - protocolNumber(b.protocol) ||
      compareBytes(encodeInetAddr(a.address), encodeInetAddr(b.address)) ||
      a.port - b.port
    );
  }
  return 0;
}

export function compareDestinationKeys(a: IpvsDestinationKey, b: IpvsDestinationKey): number {
  if (a.family !== b.family) return a.family === 'inet' ? -1 : 1;
  return compareBytes(encodeInetAddr(a.address), encodeInetAddr(b.address)) || a.port - b.port;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
