// Pure encode/decode of the IPVS generic netlink messages: netlink headers,
// generic netlink headers and the IPVS attributes (include/uapi/linux/ip_vs.h).
//
// Byte order, as the kernel writes it: netlink and attribute headers and all
// integers are in the host's order (native endian), except ports (`__be16`).
// The persistence netmask is declared `__be32` and copied as it is: an IPv4
// mask is in network order, but an IPv6 prefix length is a plain host-order
// int (the kernel compares it with 128), so its byte order follows the
// service's address family. Addresses are the 16-byte `union nf_inet_addr`.
// Service flags are the 8-byte `struct ip_vs_flags {u32 flags; u32 mask}`.
//
// Attributes this codec does not know (a newer kernel's) are kept, in order,
// in `unknown`, and encoded back after the known ones: nothing is dropped.
// Known attributes with a wrong payload size are an error, never guessed at.
import { endianness } from 'node:os';
import { MalformedReplyError } from '../errors.js';
import {
  AF,
  CTRL_ATTR,
  GENL_HDRLEN,
  IPVS_CMD_ATTR,
  IPVS_DEST_ATTR,
  IPVS_INFO_ATTR,
  IPVS_STATS_ATTR,
  IPVS_SVC_ATTR,
  NLA_ALIGNTO,
  NLA_F_NESTED,
  NLA_F_NET_BYTEORDER,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
} from './uapi.js';

export type Endianness = 'LE' | 'BE';
/** The byte order of this machine: little on x86 and arm64. */
export const HOST_ENDIANNESS: Endianness = endianness();

/** One attribute as it is on the wire, type without its flag bits. */
export interface RawAttribute {
  readonly type: number;
  /** `NLA_F_NESTED` was set. */
  readonly nested: boolean;
  /** `NLA_F_NET_BYTEORDER` was set. */
  readonly netByteOrder: boolean;
  readonly payload: Uint8Array;
}

/** `struct ip_vs_flags`: the flags to set and which bits of them count. */
export interface IpvsFlags {
  readonly flags: number;
  readonly mask: number;
}

/** IPVS_STATS_ATTR_*; every counter as bigint (STATS64 counters are u64). */
export interface StatsAttributes {
  readonly conns?: bigint;
  readonly inpkts?: bigint;
  readonly outpkts?: bigint;
  readonly inbytes?: bigint;
  readonly outbytes?: bigint;
  readonly cps?: bigint;
  readonly inpps?: bigint;
  readonly outpps?: bigint;
  readonly inbps?: bigint;
  readonly outbps?: bigint;
  readonly unknown?: readonly RawAttribute[];
}

/** IPVS_SVC_ATTR_* inside IPVS_CMD_ATTR_SERVICE. */
export interface ServiceAttributes {
  readonly af?: number;
  readonly protocol?: number;
  /** 16-byte `union nf_inet_addr`. */
  readonly addr?: Uint8Array;
  readonly port?: number;
  readonly fwmark?: number;
  readonly schedName?: string;
  readonly flags?: IpvsFlags;
  readonly timeout?: number;
  /** IPv4: the mask (0xffffff00 for /24); IPv6 (`af` AF_INET6): the prefix length. */
  readonly netmask?: number;
  readonly stats?: StatsAttributes;
  readonly peName?: string;
  readonly stats64?: StatsAttributes;
  readonly unknown?: readonly RawAttribute[];
}

/** IPVS_DEST_ATTR_* inside IPVS_CMD_ATTR_DEST. */
export interface DestAttributes {
  readonly addr?: Uint8Array;
  readonly port?: number;
  readonly fwdMethod?: number;
  readonly weight?: number;
  readonly uThresh?: number;
  readonly lThresh?: number;
  readonly activeConns?: number;
  readonly inactConns?: number;
  readonly persistConns?: number;
  readonly stats?: StatsAttributes;
  readonly addrFamily?: number;
  readonly stats64?: StatsAttributes;
  readonly tunType?: number;
  readonly tunPort?: number;
  readonly tunFlags?: number;
  readonly unknown?: readonly RawAttribute[];
}

/** The first level of an IPVS message (IPVS_CMD_ATTR_*). */
export interface CommandAttributes {
  readonly service?: ServiceAttributes;
  readonly dest?: DestAttributes;
  /** Sync daemon attributes, kept as they are (loadfeed does not use them). */
  readonly daemon?: readonly RawAttribute[];
  readonly timeoutTcp?: number;
  readonly timeoutTcpFin?: number;
  readonly timeoutUdp?: number;
  readonly unknown?: readonly RawAttribute[];
}

/** IPVS_INFO_ATTR_* of a GET_INFO reply. */
export interface InfoAttributes {
  readonly version?: number;
  readonly connTabSize?: number;
  readonly unknown?: readonly RawAttribute[];
}

/** CTRL_ATTR_* of the generic netlink controller (family resolution). */
export interface CtrlAttributes {
  readonly familyId?: number;
  readonly familyName?: string;
  readonly version?: number;
  readonly unknown?: readonly RawAttribute[];
}

/** `struct nlmsghdr` and its payload. */
export interface NetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  readonly payload: Uint8Array;
}

/** `struct genlmsghdr` and the attributes after it. */
export interface GenlMessage {
  readonly cmd: number;
  readonly version: number;
  readonly attributes: Uint8Array;
}

// --- field schemas --------------------------------------------------------

type Kind =
  | 'u8'
  | 'u16'
  | 'be16'
  | 'u32'
  | 'netmask' // be32 for IPv4, host order for IPv6 (see above)
  | 'u32n' // u32 held as bigint (32-bit stats counters)
  | 'u64n'
  | 'string'
  | 'addr'
  | 'flags'
  | 'stats32'
  | 'stats64'
  | 'service'
  | 'dest'
  | 'raw-nested';

interface Field {
  readonly key: string;
  readonly type: number;
  readonly kind: Kind;
}

type Schema = readonly Field[];

const STATS32_SCHEMA: Schema = [
  { key: 'conns', type: IPVS_STATS_ATTR.CONNS, kind: 'u32n' },
  { key: 'inpkts', type: IPVS_STATS_ATTR.INPKTS, kind: 'u32n' },
  { key: 'outpkts', type: IPVS_STATS_ATTR.OUTPKTS, kind: 'u32n' },
  { key: 'inbytes', type: IPVS_STATS_ATTR.INBYTES, kind: 'u64n' },
  { key: 'outbytes', type: IPVS_STATS_ATTR.OUTBYTES, kind: 'u64n' },
  { key: 'cps', type: IPVS_STATS_ATTR.CPS, kind: 'u32n' },
  { key: 'inpps', type: IPVS_STATS_ATTR.INPPS, kind: 'u32n' },
  { key: 'outpps', type: IPVS_STATS_ATTR.OUTPPS, kind: 'u32n' },
  { key: 'inbps', type: IPVS_STATS_ATTR.INBPS, kind: 'u32n' },
  { key: 'outbps', type: IPVS_STATS_ATTR.OUTBPS, kind: 'u32n' },
];

const STATS64_SCHEMA: Schema = STATS32_SCHEMA.map((f) => ({ ...f, kind: 'u64n' as const }));

const SERVICE_SCHEMA: Schema = [
  { key: 'af', type: IPVS_SVC_ATTR.AF, kind: 'u16' },
  { key: 'protocol', type: IPVS_SVC_ATTR.PROTOCOL, kind: 'u16' },
  { key: 'addr', type: IPVS_SVC_ATTR.ADDR, kind: 'addr' },
  { key: 'port', type: IPVS_SVC_ATTR.PORT, kind: 'be16' },
  { key: 'fwmark', type: IPVS_SVC_ATTR.FWMARK, kind: 'u32' },
  { key: 'schedName', type: IPVS_SVC_ATTR.SCHED_NAME, kind: 'string' },
  { key: 'flags', type: IPVS_SVC_ATTR.FLAGS, kind: 'flags' },
  { key: 'timeout', type: IPVS_SVC_ATTR.TIMEOUT, kind: 'u32' },
  { key: 'netmask', type: IPVS_SVC_ATTR.NETMASK, kind: 'netmask' },
  { key: 'stats', type: IPVS_SVC_ATTR.STATS, kind: 'stats32' },
  { key: 'peName', type: IPVS_SVC_ATTR.PE_NAME, kind: 'string' },
  { key: 'stats64', type: IPVS_SVC_ATTR.STATS64, kind: 'stats64' },
];

const DEST_SCHEMA: Schema = [
  { key: 'addr', type: IPVS_DEST_ATTR.ADDR, kind: 'addr' },
  { key: 'port', type: IPVS_DEST_ATTR.PORT, kind: 'be16' },
  { key: 'fwdMethod', type: IPVS_DEST_ATTR.FWD_METHOD, kind: 'u32' },
  { key: 'weight', type: IPVS_DEST_ATTR.WEIGHT, kind: 'u32' },
  { key: 'uThresh', type: IPVS_DEST_ATTR.U_THRESH, kind: 'u32' },
  { key: 'lThresh', type: IPVS_DEST_ATTR.L_THRESH, kind: 'u32' },
  { key: 'activeConns', type: IPVS_DEST_ATTR.ACTIVE_CONNS, kind: 'u32' },
  { key: 'inactConns', type: IPVS_DEST_ATTR.INACT_CONNS, kind: 'u32' },
  { key: 'persistConns', type: IPVS_DEST_ATTR.PERSIST_CONNS, kind: 'u32' },
  { key: 'stats', type: IPVS_DEST_ATTR.STATS, kind: 'stats32' },
  { key: 'addrFamily', type: IPVS_DEST_ATTR.ADDR_FAMILY, kind: 'u16' },
  { key: 'stats64', type: IPVS_DEST_ATTR.STATS64, kind: 'stats64' },
  { key: 'tunType', type: IPVS_DEST_ATTR.TUN_TYPE, kind: 'u8' },
  { key: 'tunPort', type: IPVS_DEST_ATTR.TUN_PORT, kind: 'be16' },
  { key: 'tunFlags', type: IPVS_DEST_ATTR.TUN_FLAGS, kind: 'u16' },
];

const COMMAND_SCHEMA: Schema = [
  { key: 'service', type: IPVS_CMD_ATTR.SERVICE, kind: 'service' },
  { key: 'dest', type: IPVS_CMD_ATTR.DEST, kind: 'dest' },
  { key: 'daemon', type: IPVS_CMD_ATTR.DAEMON, kind: 'raw-nested' },
  { key: 'timeoutTcp', type: IPVS_CMD_ATTR.TIMEOUT_TCP, kind: 'u32' },
  { key: 'timeoutTcpFin', type: IPVS_CMD_ATTR.TIMEOUT_TCP_FIN, kind: 'u32' },
  { key: 'timeoutUdp', type: IPVS_CMD_ATTR.TIMEOUT_UDP, kind: 'u32' },
];

const INFO_SCHEMA: Schema = [
  { key: 'version', type: IPVS_INFO_ATTR.VERSION, kind: 'u32' },
  { key: 'connTabSize', type: IPVS_INFO_ATTR.CONN_TAB_SIZE, kind: 'u32' },
];

const CTRL_SCHEMA: Schema = [
  { key: 'familyId', type: CTRL_ATTR.FAMILY_ID, kind: 'u16' },
  { key: 'familyName', type: CTRL_ATTR.FAMILY_NAME, kind: 'string' },
  { key: 'version', type: CTRL_ATTR.VERSION, kind: 'u32' },
];

/** Payload sizes of the fixed-size kinds. */
const SIZE: Partial<Record<Kind, number>> = {
  u8: 1,
  u16: 2,
  be16: 2,
  u32: 4,
  netmask: 4,
  u32n: 4,
  u64n: 8,
  addr: 16,
  flags: 8,
};

const NESTED_KINDS: ReadonlySet<Kind> = new Set(['stats32', 'stats64', 'service', 'dest', 'raw-nested']);

const align = (n: number): number => (n + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);

/** The codec for one byte order; `ipvsCodec` is the host's. */
export interface IpvsCodec {
  readonly endianness: Endianness;
  encodeAttributes(attrs: readonly RawAttribute[]): Uint8Array;
  /** `where` names the enclosing structure in error messages. */
  decodeAttributes(bytes: Uint8Array, where?: string): RawAttribute[];
  encodeCommand(attrs: CommandAttributes): Uint8Array;
  decodeCommand(bytes: Uint8Array): CommandAttributes;
  encodeService(attrs: ServiceAttributes): Uint8Array;
  decodeService(bytes: Uint8Array): ServiceAttributes;
  encodeDest(attrs: DestAttributes): Uint8Array;
  decodeDest(bytes: Uint8Array): DestAttributes;
  encodeInfo(attrs: InfoAttributes): Uint8Array;
  decodeInfo(bytes: Uint8Array): InfoAttributes;
  encodeCtrl(attrs: CtrlAttributes): Uint8Array;
  decodeCtrl(bytes: Uint8Array): CtrlAttributes;
  encodeGenl(message: GenlMessage): Uint8Array;
  decodeGenl(bytes: Uint8Array): GenlMessage;
  encodeNetlinkMessages(messages: readonly NetlinkMessage[]): Uint8Array;
  decodeNetlinkMessages(bytes: Uint8Array): NetlinkMessage[];
  /** The payload of an NLMSG_ERROR: `struct nlmsgerr {int error; struct nlmsghdr msg; …}`. */
  encodeNetlinkError(errno: number, request: Omit<NetlinkMessage, 'payload'> & { readonly length: number }): Uint8Array;
  /** The positive errno of an NLMSG_ERROR payload; 0 for an ACK. */
  decodeNetlinkErrno(payload: Uint8Array): number;
}

export function createIpvsCodec(endian: Endianness = HOST_ENDIANNESS): IpvsCodec {
  const le = endian === 'LE';
  const view = (bytes: Uint8Array): DataView => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  function encodeAttributes(attrs: readonly RawAttribute[]): Uint8Array {
    const total = attrs.reduce((n, a) => n + align(NLA_HDRLEN + a.payload.length), 0);
    const out = new Uint8Array(total);
    const dv = view(out);
    let offset = 0;
    for (const a of attrs) {
      const length = NLA_HDRLEN + a.payload.length;
      if (length > 0xffff) throw new RangeError(`attribute ${a.type}: ${a.payload.length} bytes do not fit nla_len`);
      if (a.type !== (a.type & NLA_TYPE_MASK)) throw new RangeError(`attribute type ${a.type} is out of range`);
      const type = a.type | (a.nested ? NLA_F_NESTED : 0) | (a.netByteOrder ? NLA_F_NET_BYTEORDER : 0);
      dv.setUint16(offset, length, le);
      dv.setUint16(offset + 2, type, le);
      out.set(a.payload, offset + NLA_HDRLEN);
      offset += align(length);
    }
    return out;
  }

  function decodeAttributes(bytes: Uint8Array, where = 'attributes'): RawAttribute[] {
    const dv = view(bytes);
    const attrs: RawAttribute[] = [];
    let offset = 0;
    while (offset < bytes.length) {
      if (bytes.length - offset < NLA_HDRLEN) {
        throw new MalformedReplyError(`${where}: ${bytes.length - offset} stray bytes at offset ${offset}`);
      }
      const length = dv.getUint16(offset, le);
      const rawType = dv.getUint16(offset + 2, le);
      if (length < NLA_HDRLEN || offset + length > bytes.length) {
        throw new MalformedReplyError(
          `${where}: attribute ${rawType & NLA_TYPE_MASK} at offset ${offset} claims ${length} bytes, ${bytes.length - offset} left`,
        );
      }
      attrs.push({
        type: rawType & NLA_TYPE_MASK,
        nested: (rawType & NLA_F_NESTED) !== 0,
        netByteOrder: (rawType & NLA_F_NET_BYTEORDER) !== 0,
        payload: bytes.slice(offset + NLA_HDRLEN, offset + length),
      });
      offset += Math.min(align(length), bytes.length - offset);
    }
    return attrs;
  }

  function encodeValue(kind: Kind, value: unknown, record: Record<string, unknown>): Uint8Array {
    const size = SIZE[kind];
    const out = new Uint8Array(size ?? 0);
    const dv = view(out);
    switch (kind) {
      case 'u8':
        dv.setUint8(0, checkUint(value, 0xff));
        return out;
      case 'u16':
        dv.setUint16(0, checkUint(value, 0xffff), le);
        return out;
      case 'be16':
        dv.setUint16(0, checkUint(value, 0xffff), false);
        return out;
      case 'u32':
        dv.setUint32(0, checkUint(value, 0xffffffff), le);
        return out;
      case 'netmask':
        dv.setUint32(0, checkUint(value, 0xffffffff), record['af'] === AF.INET6 ? le : false);
        return out;
      case 'u32n':
        dv.setUint32(0, Number(checkBigUint(value, 32)), le);
        return out;
      case 'u64n':
        dv.setBigUint64(0, checkBigUint(value, 64), le);
        return out;
      case 'addr': {
        const bytes = value as Uint8Array;
        if (bytes.length !== 16) throw new RangeError(`an address attribute has 16 bytes, not ${bytes.length}`);
        return Uint8Array.from(bytes);
      }
      case 'flags': {
        const flags = value as IpvsFlags;
        dv.setUint32(0, checkUint(flags.flags, 0xffffffff), le);
        dv.setUint32(4, checkUint(flags.mask, 0xffffffff), le);
        return out;
      }
      case 'string': {
        const text = Buffer.from(value as string, 'utf8');
        const bytes = new Uint8Array(text.length + 1);
        bytes.set(text);
        return bytes;
      }
      case 'stats32':
        return encodeRecord(STATS32_SCHEMA, value as StatsAttributes);
      case 'stats64':
        return encodeRecord(STATS64_SCHEMA, value as StatsAttributes);
      case 'service':
        return encodeRecord(SERVICE_SCHEMA, value as ServiceAttributes);
      case 'dest':
        return encodeRecord(DEST_SCHEMA, value as DestAttributes);
      case 'raw-nested':
        return encodeAttributes(value as readonly RawAttribute[]);
    }
  }

  function decodeValue(kind: Kind, payload: Uint8Array, where: string): unknown {
    const size = SIZE[kind];
    if (size !== undefined && payload.length !== size) {
      throw new MalformedReplyError(`${where}: expected ${size} bytes, got ${payload.length}`);
    }
    const dv = view(payload);
    switch (kind) {
      case 'u8':
        return dv.getUint8(0);
      case 'u16':
        return dv.getUint16(0, le);
      case 'be16':
        return dv.getUint16(0, false);
      case 'u32':
        return dv.getUint32(0, le);
      case 'netmask':
        // Read once the record is complete (the family may come later): see decodeRecord.
        return Uint8Array.from(payload);
      case 'u32n':
        return BigInt(dv.getUint32(0, le));
      case 'u64n':
        return dv.getBigUint64(0, le);
      case 'addr':
        return Uint8Array.from(payload);
      case 'flags':
        return { flags: dv.getUint32(0, le), mask: dv.getUint32(4, le) };
      case 'string': {
        const nul = payload.indexOf(0);
        return Buffer.from(payload.subarray(0, nul < 0 ? payload.length : nul)).toString('utf8');
      }
      case 'stats32':
        return decodeRecord(STATS32_SCHEMA, payload, where);
      case 'stats64':
        return decodeRecord(STATS64_SCHEMA, payload, where);
      case 'service':
        return decodeRecord(SERVICE_SCHEMA, payload, where);
      case 'dest':
        return decodeRecord(DEST_SCHEMA, payload, where);
      case 'raw-nested':
        return decodeAttributes(payload, where);
    }
  }

  function encodeRecord(schema: Schema, record: object): Uint8Array {
    const values = record as Record<string, unknown>;
    const attrs: RawAttribute[] = [];
    for (const field of schema) {
      const value = values[field.key];
      if (value === undefined) continue;
      attrs.push({
        type: field.type,
        nested: NESTED_KINDS.has(field.kind),
        netByteOrder: false,
        payload: encodeValue(field.kind, value, values),
      });
    }
    const unknown = (values['unknown'] as readonly RawAttribute[] | undefined) ?? [];
    return encodeAttributes([...attrs, ...unknown]);
  }

  function decodeRecord(schema: Schema, bytes: Uint8Array, where: string): Record<string, unknown> {
    const record: Record<string, unknown> = {};
    const unknown: RawAttribute[] = [];
    for (const attr of decodeAttributes(bytes, where)) {
      const field = schema.find((f) => f.type === attr.type);
      if (field === undefined) {
        // Stats padding has no meaning; anything else is kept.
        if (!(schema === STATS64_SCHEMA || schema === STATS32_SCHEMA) || attr.type !== IPVS_STATS_ATTR.PAD) {
          unknown.push(attr);
        }
        continue;
      }
      // Like nla_parse(): the last copy of a repeated attribute wins.
      record[field.key] = decodeValue(field.kind, attr.payload, `${where}.${field.key}`);
    }
    const netmask = record['netmask'];
    if (netmask instanceof Uint8Array) {
      record['netmask'] = view(netmask).getUint32(0, record['af'] === AF.INET6 ? le : false);
    }
    record['unknown'] = unknown;
    return record;
  }

  function encodeGenl(message: GenlMessage): Uint8Array {
    const out = new Uint8Array(GENL_HDRLEN + message.attributes.length);
    out[0] = checkUint(message.cmd, 0xff);
    out[1] = checkUint(message.version, 0xff);
    out.set(message.attributes, GENL_HDRLEN);
    return out;
  }

  function decodeGenl(bytes: Uint8Array): GenlMessage {
    if (bytes.length < GENL_HDRLEN) {
      throw new MalformedReplyError(`generic netlink message of ${bytes.length} bytes has no header`);
    }
    return { cmd: bytes[0] ?? 0, version: bytes[1] ?? 0, attributes: bytes.slice(GENL_HDRLEN) };
  }

  const NLMSG_HDRLEN = 16;

  function encodeNetlinkMessages(messages: readonly NetlinkMessage[]): Uint8Array {
    const total = messages.reduce((n, m) => n + align(NLMSG_HDRLEN + m.payload.length), 0);
    const out = new Uint8Array(total);
    const dv = view(out);
    let offset = 0;
    for (const m of messages) {
      const length = NLMSG_HDRLEN + m.payload.length;
      dv.setUint32(offset, length, le);
      dv.setUint16(offset + 4, checkUint(m.type, 0xffff), le);
      dv.setUint16(offset + 6, checkUint(m.flags, 0xffff), le);
      dv.setUint32(offset + 8, checkUint(m.seq, 0xffffffff), le);
      dv.setUint32(offset + 12, checkUint(m.pid, 0xffffffff), le);
      out.set(m.payload, offset + NLMSG_HDRLEN);
      offset += align(length);
    }
    return out;
  }

  function decodeNetlinkMessages(bytes: Uint8Array): NetlinkMessage[] {
    const dv = view(bytes);
    const messages: NetlinkMessage[] = [];
    let offset = 0;
    while (offset < bytes.length) {
      if (bytes.length - offset < NLMSG_HDRLEN) {
        throw new MalformedReplyError(`netlink: ${bytes.length - offset} stray bytes at offset ${offset}`);
      }
      const length = dv.getUint32(offset, le);
      if (length < NLMSG_HDRLEN || offset + length > bytes.length) {
        throw new MalformedReplyError(
          `netlink: message at offset ${offset} claims ${length} bytes, ${bytes.length - offset} left`,
        );
      }
      messages.push({
        type: dv.getUint16(offset + 4, le),
        flags: dv.getUint16(offset + 6, le),
        seq: dv.getUint32(offset + 8, le),
        pid: dv.getUint32(offset + 12, le),
        payload: bytes.slice(offset + NLMSG_HDRLEN, offset + length),
      });
      offset += Math.min(align(length), bytes.length - offset);
    }
    return messages;
  }

  function encodeNetlinkError(
    errno: number,
    request: Omit<NetlinkMessage, 'payload'> & { readonly length: number },
  ): Uint8Array {
    const out = new Uint8Array(4 + NLMSG_HDRLEN);
    const dv = view(out);
    dv.setInt32(0, -errno, le);
    dv.setUint32(4, request.length, le);
    dv.setUint16(8, request.type, le);
    dv.setUint16(10, request.flags, le);
    dv.setUint32(12, request.seq, le);
    dv.setUint32(16, request.pid, le);
    return out;
  }

  function decodeNetlinkErrno(payload: Uint8Array): number {
    if (payload.length < 4) throw new MalformedReplyError(`NLMSG_ERROR payload of ${payload.length} bytes`);
    const error = view(payload).getInt32(0, le);
    return error === 0 ? 0 : -error; // not -0 for an ACK
  }

  return {
    endianness: endian,
    encodeAttributes,
    decodeAttributes,
    encodeCommand: (attrs) => encodeRecord(COMMAND_SCHEMA, attrs),
    decodeCommand: (bytes) => decodeRecord(COMMAND_SCHEMA, bytes, 'command') as CommandAttributes,
    encodeService: (attrs) => encodeRecord(SERVICE_SCHEMA, attrs),
    decodeService: (bytes) => decodeRecord(SERVICE_SCHEMA, bytes, 'service') as ServiceAttributes,
    encodeDest: (attrs) => encodeRecord(DEST_SCHEMA, attrs),
    decodeDest: (bytes) => decodeRecord(DEST_SCHEMA, bytes, 'dest') as DestAttributes,
    encodeInfo: (attrs) => encodeRecord(INFO_SCHEMA, attrs),
    decodeInfo: (bytes) => decodeRecord(INFO_SCHEMA, bytes, 'info') as InfoAttributes,
    encodeCtrl: (attrs) => encodeRecord(CTRL_SCHEMA, attrs),
    decodeCtrl: (bytes) => decodeRecord(CTRL_SCHEMA, bytes, 'ctrl') as CtrlAttributes,
    encodeGenl,
    decodeGenl,
    encodeNetlinkMessages,
    decodeNetlinkMessages,
    encodeNetlinkError,
    decodeNetlinkErrno,
  };
}

/** The host's codec. */
export const ipvsCodec: IpvsCodec = createIpvsCodec();

function checkUint(value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${String(value)} is not an integer in 0..${max}`);
  }
  return value;
}

function checkBigUint(value: unknown, bits: 32 | 64): bigint {
  if (typeof value !== 'bigint' || value < 0n || value >= 1n << BigInt(bits)) {
    throw new RangeError(`${String(value)} is not a ${bits}-bit unsigned integer`);
  }
  return value;
}
