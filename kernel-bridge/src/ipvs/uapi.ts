// Constants of the kernel's IPVS generic netlink interface, copied from the
// kernel's user-space API headers (each block names its header). Values are
// ABI: the kernel never renumbers them, so they are safe to hard-code.

// --- include/uapi/linux/ip_vs.h: family -------------------------------------

/** `IPVS_GENL_NAME`: the generic netlink family name. */
export const IPVS_GENL_NAME = 'IPVS';
/** `IPVS_GENL_VERSION`: the version sent in every generic netlink header. */
export const IPVS_GENL_VERSION = 0x1;
/** `IP_VS_SCHEDNAME_MAXLEN`: scheduler names, including the terminating NUL. */
export const IP_VS_SCHEDNAME_MAXLEN = 16;
/** `IP_VS_PENAME_MAXLEN`: persistence engine names, including the NUL. */
export const IP_VS_PENAME_MAXLEN = 16;

// --- include/uapi/linux/ip_vs.h: commands (enum IPVS_CMD_*) -----------------

export const IPVS_CMD = {
  UNSPEC: 0,
  NEW_SERVICE: 1, // add service
  SET_SERVICE: 2, // modify service
  DEL_SERVICE: 3, // delete service
  GET_SERVICE: 4, // get service info
  NEW_DEST: 5, // add destination
  SET_DEST: 6, // modify destination
  DEL_DEST: 7, // delete destination
  GET_DEST: 8, // get destination info
  NEW_DAEMON: 9, // start sync daemon
  DEL_DAEMON: 10, // stop sync daemon
  GET_DAEMON: 11, // get sync daemon status
  SET_CONFIG: 12, // set config settings
  GET_CONFIG: 13, // get config settings
  SET_INFO: 14, // only used in GET_INFO reply
  GET_INFO: 15, // get general IPVS info
  ZERO: 16, // zero all counters and stats
  FLUSH: 17, // flush services and dests
} as const;

/** Command names by number, for error messages. */
export const IPVS_CMD_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(IPVS_CMD).map(([name, value]) => [value, `IPVS_CMD_${name}`]),
);

// --- include/uapi/linux/ip_vs.h: first-level attributes (enum IPVS_CMD_ATTR_*)

export const IPVS_CMD_ATTR = {
  UNSPEC: 0,
  SERVICE: 1, // nested service attribute
  DEST: 2, // nested destination attribute
  DAEMON: 3, // nested sync daemon attribute
  TIMEOUT_TCP: 4, // TCP connection timeout (u32, seconds)
  TIMEOUT_TCP_FIN: 5, // TCP FIN wait timeout (u32, seconds)
  TIMEOUT_UDP: 6, // UDP timeout (u32, seconds)
} as const;

// --- include/uapi/linux/ip_vs.h: service attributes (enum IPVS_SVC_ATTR_*) --

export const IPVS_SVC_ATTR = {
  UNSPEC: 0,
  AF: 1, // address family (u16)
  PROTOCOL: 2, // virtual service protocol (u16)
  ADDR: 3, // virtual service address (union nf_inet_addr, 16 bytes)
  PORT: 4, // virtual service port (__be16)
  FWMARK: 5, // firewall mark of service (u32)
  SCHED_NAME: 6, // name of scheduler (NUL-terminated string)
  FLAGS: 7, // virtual service flags (struct ip_vs_flags, 8 bytes)
  TIMEOUT: 8, // persistent timeout (u32, seconds)
  NETMASK: 9, // persistent netmask (__be32; a prefix length for IPv6)
  STATS: 10, // nested attribute for service stats (32-bit counters)
  PE_NAME: 11, // name of ct retriever (persistence engine, string)
  STATS64: 12, // nested attribute for service stats (64-bit counters)
} as const;

// --- include/uapi/linux/ip_vs.h: destination attributes (enum IPVS_DEST_ATTR_*)

export const IPVS_DEST_ATTR = {
  UNSPEC: 0,
  ADDR: 1, // real server address (union nf_inet_addr, 16 bytes)
  PORT: 2, // real server port (__be16)
  FWD_METHOD: 3, // forwarding method (u32, IP_VS_CONN_F_FWD_MASK bits)
  WEIGHT: 4, // destination weight (u32; the kernel reads it as int)
  U_THRESH: 5, // upper threshold (u32, active connections; 0 = none)
  L_THRESH: 6, // lower threshold (u32)
  ACTIVE_CONNS: 7, // active connections (u32)
  INACT_CONNS: 8, // inactive connections (u32)
  PERSIST_CONNS: 9, // persistent connections (u32)
  STATS: 10, // nested attribute for dest stats (32-bit counters)
  ADDR_FAMILY: 11, // address family of address (u16)
  STATS64: 12, // nested attribute for dest stats (64-bit counters)
  TUN_TYPE: 13, // tunnel type (u8, IP_VS_CONN_F_TUNNEL_TYPE_*)
  TUN_PORT: 14, // tunnel port (__be16)
  TUN_FLAGS: 15, // tunnel flags (u16, IP_VS_TUNNEL_ENCAP_FLAG_*)
} as const;

// --- include/uapi/linux/ip_vs.h: sync daemon attributes (enum IPVS_DAEMON_ATTR_*)

export const IPVS_DAEMON_ATTR = {
  UNSPEC: 0,
  STATE: 1, // sync daemon state (master/backup)
  MCAST_IFN: 2, // multicast interface name
  SYNC_ID: 3, // SyncID we belong to
  SYNC_MAXLEN: 4, // UDP payload size
  MCAST_GROUP: 5, // IPv4 multicast address
  MCAST_GROUP6: 6, // IPv6 multicast address
  MCAST_PORT: 7, // multicast port (base)
  MCAST_TTL: 8, // multicast TTL
} as const;

// --- include/uapi/linux/ip_vs.h: statistics attributes (enum IPVS_STATS_ATTR_*)
// In STATS, CONNS/INPKTS/OUTPKTS and the rates are u32, INBYTES/OUTBYTES u64;
// in STATS64 every counter is u64 (with PAD attributes for alignment).

export const IPVS_STATS_ATTR = {
  UNSPEC: 0,
  CONNS: 1, // connections scheduled
  INPKTS: 2, // incoming packets
  OUTPKTS: 3, // outgoing packets
  INBYTES: 4, // incoming bytes
  OUTBYTES: 5, // outgoing bytes
  CPS: 6, // current connection rate
  INPPS: 7, // current in packet rate
  OUTPPS: 8, // current out packet rate
  INBPS: 9, // current in byte rate
  OUTBPS: 10, // current out byte rate
  PAD: 11, // padding for 64-bit alignment, no payload meaning
} as const;

// --- include/uapi/linux/ip_vs.h: GET_INFO reply (enum IPVS_INFO_ATTR_*) -----

export const IPVS_INFO_ATTR = {
  UNSPEC: 0,
  VERSION: 1, // IPVS version number (u32, 0x010201 = 1.2.1)
  CONN_TAB_SIZE: 2, // size of connection hash table (u32)
} as const;

// --- include/uapi/linux/ip_vs.h: virtual service flags (IP_VS_SVC_F_*) ------

export const IP_VS_SVC_F = {
  PERSISTENT: 0x0001, // persistent port
  HASHED: 0x0002, // hashed entry
  ONEPACKET: 0x0004, // one-packet scheduling
  SCHED1: 0x0008, // scheduler flag 1 (sh: fallback)
  SCHED2: 0x0010, // scheduler flag 2 (sh: use port)
  SCHED3: 0x0020, // scheduler flag 3
} as const;

// --- include/uapi/linux/ip_vs.h: forwarding methods (IP_VS_CONN_F_*) --------

export const IP_VS_CONN_F = {
  FWD_MASK: 0x0007, // mask for the fwd methods
  MASQ: 0x0000, // masquerading/NAT
  LOCALNODE: 0x0001, // local node
  TUNNEL: 0x0002, // tunneling
  DROUTE: 0x0003, // direct routing
  BYPASS: 0x0004, // cache bypass
} as const;

/** `enum IP_VS_CONN_F_TUNNEL_TYPE_*`: encapsulation of tunnelled destinations. */
export const IP_VS_CONN_F_TUNNEL_TYPE = {
  IPIP: 0,
  GUE: 1,
  GRE: 2,
} as const;

// --- include/uapi/linux/socket.h and include/uapi/linux/in.h -----------------

/** `AF_INET`, `AF_INET6` (linux/socket.h). */
export const AF = { INET: 2, INET6: 10 } as const;
/** `IPPROTO_TCP`, `IPPROTO_UDP`, `IPPROTO_SCTP` (linux/in.h). */
export const IPPROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;

// --- include/uapi/linux/netlink.h ---------------------------------------------

/** `struct nlmsghdr` flags. */
export const NLM_F = {
  REQUEST: 0x01, // it is a request message
  MULTI: 0x02, // multipart message, terminated by NLMSG_DONE
  ACK: 0x04, // reply with ack, with zero or error code
  ROOT: 0x100, // GET: specify tree root
  MATCH: 0x200, // GET: return all matching
  DUMP: 0x300, // GET: NLM_F_ROOT | NLM_F_MATCH
} as const;

/** Reserved `nlmsg_type` values. */
export const NLMSG = { NOOP: 0x1, ERROR: 0x2, DONE: 0x3, OVERRUN: 0x4 } as const;

/** `struct nlattr` type bits: the top two are flags, the rest the type. */
export const NLA_F_NESTED = 1 << 15;
export const NLA_F_NET_BYTEORDER = 1 << 14;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;
/** `NLA_HDRLEN`: `struct nlattr` is {u16 nla_len, u16 nla_type}. */
export const NLA_HDRLEN = 4;
/** `NLA_ALIGNTO`. */
export const NLA_ALIGNTO = 4;

// --- include/uapi/linux/genetlink.h -------------------------------------------

/** `GENL_HDRLEN`: `struct genlmsghdr` is {u8 cmd, u8 version, u16 reserved}. */
export const GENL_HDRLEN = 4;
/** `GENL_ID_CTRL`: the controller family, which resolves family names. */
export const GENL_ID_CTRL = 0x10;
/** `CTRL_CMD_GETFAMILY`. */
export const CTRL_CMD_GETFAMILY = 3;
/** `CTRL_ATTR_*` used to resolve a family. */
export const CTRL_ATTR = { FAMILY_ID: 1, FAMILY_NAME: 2, VERSION: 3 } as const;
/** The controller's own version, sent in its generic netlink header. */
export const CTRL_VERSION = 1;
