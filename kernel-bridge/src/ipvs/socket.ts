// The only part of the IPVS engine that touches the OS: a generic netlink
// socket from the npm package `netlink` (pinned; Node has no AF_NETLINK of its
// own), the "IPVS" family resolved once, and one `execute(cmd, attrs, flags)`
// that sends a request and returns the attribute payloads of the replies.
//
// `NetlinkTransport` is the seam tests use: a fake peer implements it and
// checks the family, command and flags of every request it is sent.
import { getSystemErrorMap } from 'node:util';
import type { GenericNetlinkSocket } from 'netlink';
import {
  BridgeError,
  EnginePermissionError,
  EngineUnavailableError,
  MalformedReplyError,
  NetlinkErrnoError,
} from '../errors.js';
import { ipvsCodec, type CommandAttributes, type IpvsCodec } from './codec.js';
import {
  CTRL_CMD_GETFAMILY,
  CTRL_VERSION,
  GENL_ID_CTRL,
  IPVS_CMD_NAMES,
  IPVS_GENL_NAME,
  IPVS_GENL_VERSION,
  NLM_F,
  NLMSG,
} from './uapi.js';

/** How long one request may wait for the kernel's answer. */
export const DEFAULT_NETLINK_TIMEOUT_MS = 5_000;

/** What a kernel without IPVS makes every IPVS driver say. */
export const IPVS_UNAVAILABLE_MESSAGE =
  'IPVS is not available in this kernel: load it with `modprobe ip_vs` (CONFIG_IP_VS), or use engine fastpath/nftables/haproxy';

/** What EPERM from IPVS means. */
export const IPVS_PERMISSION_MESSAGE =
  'IPVS refused the request (EPERM): the process needs CAP_NET_ADMIN (run as root, or grant it, e.g. systemd AmbientCapabilities=CAP_NET_ADMIN)';

/** One message of an answer: `nlmsg_type`, `nlmsg_flags` and the payload after `struct nlmsghdr`. */
export interface NetlinkReply {
  readonly type: number;
  readonly flags: number;
  readonly payload: Uint8Array;
}

/** One request/answer exchange on a NETLINK_GENERIC socket. */
export interface NetlinkTransport {
  /**
   * Send one message and resolve with the kernel's answer to it: the reply
   * (followed by nothing else), the parts of a dump (without NLMSG_DONE), or
   * one NLMSG_ERROR (errno 0 is the ACK). `flags` are the complete
   * `nlmsg_flags`, NLM_F_REQUEST and NLM_F_ACK included.
   */
  request(type: number, flags: number, payload: Uint8Array): Promise<readonly NetlinkReply[]>;
  close(): void;
}

export interface IpvsSocket {
  /**
   * Send IPVS command `cmd` with `attrs` and `flags` added to
   * NLM_F_REQUEST | NLM_F_ACK (NLM_F_DUMP for a dump); resolve with the
   * attribute bytes of each reply message (empty for an ACK). Kernel errors
   * reject as NetlinkErrnoError (EPERM as EnginePermissionError).
   */
  execute(cmd: number, attrs: CommandAttributes, flags?: number): Promise<Uint8Array[]>;
  /** The "IPVS" family id, resolved on first use and then kept. */
  family(): Promise<number>;
  close(): void;
}

export interface NetlinkTransportOptions {
  readonly timeoutMs?: number;
}

/** A real NETLINK_GENERIC socket. The native module is loaded only when called. */
export async function openNetlinkTransport(options: NetlinkTransportOptions = {}): Promise<NetlinkTransport> {
  const timeout = options.timeoutMs ?? DEFAULT_NETLINK_TIMEOUT_MS;
  let socket: GenericNetlinkSocket;
  try {
    const netlink = await import('netlink');
    socket = netlink.createGenericNetlink();
  } catch (error) {
    throw new EngineUnavailableError(
      `cannot open a generic netlink socket (npm package "netlink"): ${(error as Error).message}; the ipvsadm driver does not need it`,
      { cause: error },
    );
  }
  const nl = socket.socket;
  // An asynchronous socket error (ENOBUFS when the kernel dropped answers) must
  // not crash the process as an unhandled 'error' event: it is kept, and the
  // request that then times out says what happened.
  let socketError: Error | null = null;
  nl.on('error', (error) => {
    socketError = error;
  });
  return {
    async request(type, flags, payload) {
      try {
        const [messages] = await nl.request(type, [payload], { flags, checkError: false, timeout });
        return messages.map((m) => ({ type: m.type, flags: m.flags, payload: m.data }));
      } catch (error) {
        const errno = (error as { errno?: unknown }).errno;
        if (typeof errno === 'number') throw errnoError(Math.abs(errno), `sending netlink message type ${type}`);
        const after = socketError === null ? '' : ` (socket error before: ${socketError.message})`;
        throw new BridgeError('BRIDGE_NETLINK_FAILED', `netlink request failed: ${(error as Error).message}${after}`, {
          cause: error,
        });
      }
    },
    close() {
      nl.close();
    },
  };
}

/** `execute()` over `transport`; the family is resolved on first use. */
export function createIpvsSocket(transport: NetlinkTransport, codec: IpvsCodec = ipvsCodec): IpvsSocket {
  let familyId: Promise<number> | null = null;

  async function resolve(): Promise<number> {
    const payload = codec.encodeGenl({
      cmd: CTRL_CMD_GETFAMILY,
      version: CTRL_VERSION,
      attributes: codec.encodeCtrl({ familyName: IPVS_GENL_NAME }),
    });
    let replies: readonly NetlinkReply[];
    try {
      replies = checkErrors(await transport.request(GENL_ID_CTRL, NLM_F.REQUEST | NLM_F.ACK, payload), codec, 'CTRL_CMD_GETFAMILY IPVS');
    } catch (error) {
      if (error instanceof NetlinkErrnoError && error.errnoName === 'ENOENT') {
        throw new EngineUnavailableError(IPVS_UNAVAILABLE_MESSAGE, { cause: error });
      }
      throw error;
    }
    for (const reply of replies) {
      if (reply.type !== GENL_ID_CTRL) continue;
      const id = codec.decodeCtrl(codec.decodeGenl(reply.payload).attributes).familyId;
      if (id !== undefined) return id;
    }
    throw new MalformedReplyError('the generic netlink controller answered without CTRL_ATTR_FAMILY_ID for "IPVS"');
  }

  function family(): Promise<number> {
    // Kept once resolved; a failure is not kept, so a later call sees a module loaded meanwhile.
    familyId ??= resolve().catch((error: unknown) => {
      familyId = null;
      throw error;
    });
    return familyId;
  }

  return {
    family,
    async execute(cmd, attrs, flags = 0) {
      const id = await family();
      const payload = codec.encodeGenl({ cmd, version: IPVS_GENL_VERSION, attributes: codec.encodeCommand(attrs) });
      const what = IPVS_CMD_NAMES[cmd] ?? `IPVS command ${cmd}`;
      const replies = checkErrors(await transport.request(id, NLM_F.REQUEST | NLM_F.ACK | flags, payload), codec, what);
      const out: Uint8Array[] = [];
      for (const reply of replies) {
        if (reply.type === NLMSG.ERROR || reply.type === NLMSG.DONE || reply.type === NLMSG.NOOP) continue;
        if (reply.type !== id) {
          throw new MalformedReplyError(`${what}: reply of netlink type ${reply.type}, expected the IPVS family (${id})`);
        }
        out.push(codec.decodeGenl(reply.payload).attributes);
      }
      return out;
    },
    close() {
      transport.close();
    },
  };
}

/** A real IPVS socket: `createIpvsSocket(await openNetlinkTransport())`. */
export async function openIpvsSocket(options: NetlinkTransportOptions = {}): Promise<IpvsSocket> {
  return createIpvsSocket(await openNetlinkTransport(options));
}

function checkErrors(replies: readonly NetlinkReply[], codec: IpvsCodec, what: string): readonly NetlinkReply[] {
  for (const reply of replies) {
    if (reply.type !== NLMSG.ERROR) continue;
    const errno = codec.decodeNetlinkErrno(reply.payload);
    if (errno !== 0) throw errnoError(errno, what);
  }
  return replies;
}

/** Positive errno → NetlinkErrnoError naming it (EPERM → EnginePermissionError). */
export function errnoError(errno: number, what: string): BridgeError {
  const [name, text] = getSystemErrorMap().get(-errno) ?? [`errno ${errno}`, 'unknown error'];
  if (name === 'EPERM') return new EnginePermissionError(`${what}: ${IPVS_PERMISSION_MESSAGE}`);
  return new NetlinkErrnoError(errno, name, `${what}: the kernel answered ${name} (${text})`);
}
