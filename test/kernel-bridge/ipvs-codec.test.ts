// The IPVS netlink codec: property round trips in both byte orders (fast-check),
// exact bytes where the kernel's layout is subtle (ports, netmask, flags),
// unknown attributes kept, malformed input refused, and the datagrams a real
// kernel sent (test/fixtures/ipvs/) decoded.
import test from 'ava';
import fc from 'fast-check';
import {
  MalformedReplyError,
  canonicalIp,
  createIpvsCodec,
  formatIp,
  formatIpvsDestinationKey,
  formatIpvsServiceKey,
  ipvsCodec,
  ipvsUapi as u,
  parseIp,
  parseIpvsDestinationKey,
  parseIpvsServiceKey,
  AddressError,
  type DestAttributes,
  type Endianness,
  type RawAttribute,
  type ServiceAttributes,
  type StatsAttributes,
} from '@loadfeed/kernel-bridge';
import { capturedReply, IPVS_FIXTURE_FAMILY } from './ipvs-fixtures.js';

const ENDIANNESS: readonly Endianness[] = ['LE', 'BE'];
const RUNS = { numRuns: 2_000 };

// --- arbitraries --------------------------------------------------------------

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u32n = fc.bigInt({ min: 0n, max: 2n ** 32n - 1n });
const u64n = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const addr = fc.uint8Array({ minLength: 16, maxLength: 16 });
const name = fc.stringMatching(/^[a-z0-9_]{0,15}$/);

/** Attributes of types the record does not know: kept, in order. */
function unknownAttributes(known: readonly number[]): fc.Arbitrary<RawAttribute[]> {
  return fc.array(
    fc.record({
      type: fc.integer({ min: 0, max: 0x3fff }).filter((t) => !known.includes(t)),
      nested: fc.boolean(),
      netByteOrder: fc.boolean(),
      payload: fc.uint8Array({ maxLength: 24 }),
    }),
    { maxLength: 3 },
  );
}

const stats32: fc.Arbitrary<StatsAttributes> = fc.record(
  {
    conns: u32n,
    inpkts: u32n,
    outpkts: u32n,
    inbytes: u64n,
    outbytes: u64n,
    cps: u32n,
    inpps: u32n,
    outpps: u32n,
    inbps: u32n,
    outbps: u32n,
    unknown: unknownAttributes([...Object.values(u.IPVS_STATS_ATTR)]),
  },
  { requiredKeys: ['unknown'] },
);
const stats64: fc.Arbitrary<StatsAttributes> = fc.record(
  {
    conns: u64n,
    inpkts: u64n,
    outpkts: u64n,
    inbytes: u64n,
    outbytes: u64n,
    cps: u64n,
    inpps: u64n,
    outpps: u64n,
    inbps: u64n,
    outbps: u64n,
    unknown: unknownAttributes([...Object.values(u.IPVS_STATS_ATTR)]),
  },
  { requiredKeys: ['unknown'] },
);

const service: fc.Arbitrary<ServiceAttributes> = fc.record(
  {
    af: fc.constantFrom(u.AF.INET, u.AF.INET6, 0, 7),
    protocol: u16,
    addr,
    port: u16,
    fwmark: u32,
    schedName: name,
    flags: fc.record({ flags: u32, mask: u32 }),
    timeout: u32,
    netmask: u32,
    stats: stats32,
    peName: name,
    stats64,
    unknown: unknownAttributes([...Object.values(u.IPVS_SVC_ATTR)]),
  },
  { requiredKeys: ['unknown'] },
);

const dest: fc.Arbitrary<DestAttributes> = fc.record(
  {
    addr,
    port: u16,
    fwdMethod: u32,
    weight: u32,
    uThresh: u32,
    lThresh: u32,
    activeConns: u32,
    inactConns: u32,
    persistConns: u32,
    stats: stats32,
    addrFamily: u16,
    stats64,
    tunType: u8,
    tunPort: u16,
    tunFlags: u16,
    unknown: unknownAttributes([...Object.values(u.IPVS_DEST_ATTR)]),
  },
  { requiredKeys: ['unknown'] },
);

// --- round trips ------------------------------------------------------------------

for (const endian of ENDIANNESS) {
  const codec = createIpvsCodec(endian);

  test(`${endian}: service attributes round-trip, unknown attributes included`, (t) => {
    fc.assert(
      fc.property(service, (s) => {
        t.deepEqual(codec.decodeService(codec.encodeService(s)), s);
      }),
      RUNS,
    );
  });

  test(`${endian}: destination attributes round-trip, unknown attributes included`, (t) => {
    fc.assert(
      fc.property(dest, (d) => {
        t.deepEqual(codec.decodeDest(codec.encodeDest(d)), d);
      }),
      RUNS,
    );
  });

  test(`${endian}: command attributes round-trip (service + destination + timeouts + unknown)`, (t) => {
    const command = fc.record(
      {
        service,
        dest,
        timeoutTcp: u32,
        timeoutTcpFin: u32,
        timeoutUdp: u32,
        unknown: unknownAttributes([...Object.values(u.IPVS_CMD_ATTR)]),
      },
      { requiredKeys: ['unknown'] },
    );
    fc.assert(
      fc.property(command, (c) => {
        t.deepEqual(codec.decodeCommand(codec.encodeCommand(c)), c);
      }),
      { numRuns: 500 },
    );
  });

  test(`${endian}: raw attribute lists and netlink messages round-trip`, (t) => {
    fc.assert(
      fc.property(unknownAttributes([]), (attrs) => {
        t.deepEqual(codec.decodeAttributes(codec.encodeAttributes(attrs)), attrs);
      }),
      RUNS,
    );
    const message = fc.record({ type: u16, flags: u16, seq: u32, pid: u32, payload: fc.uint8Array({ maxLength: 40 }) });
    fc.assert(
      fc.property(fc.array(message, { maxLength: 4 }), (messages) => {
        t.deepEqual(codec.decodeNetlinkMessages(codec.encodeNetlinkMessages(messages)), messages);
      }),
      RUNS,
    );
  });

  test(`${endian}: any bytes decode or fail with MalformedReplyError, never otherwise`, (t) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) => {
        for (const decode of [codec.decodeCommand, codec.decodeService, codec.decodeDest, codec.decodeNetlinkMessages]) {
          try {
            decode(bytes);
          } catch (error) {
            t.true(error instanceof MalformedReplyError, String(error));
          }
        }
      }),
      RUNS,
    );
  });
}

// --- exact bytes --------------------------------------------------------------------

/** The payload of the single attribute of `type` in `bytes`. */
function payloadOf(bytes: Uint8Array, type: number, endian: Endianness = 'LE'): Uint8Array {
  const found = createIpvsCodec(endian)
    .decodeAttributes(bytes)
    .find((a) => a.type === type);
  if (found === undefined) throw new Error(`no attribute ${type}`);
  return found.payload;
}

test('ports are big-endian and other integers follow the byte order', (t) => {
  for (const endian of ENDIANNESS) {
    const bytes = createIpvsCodec(endian).encodeDest({ port: 8080, weight: 0x01020304, addrFamily: u.AF.INET });
    t.deepEqual([...payloadOf(bytes, u.IPVS_DEST_ATTR.PORT, endian)], [0x1f, 0x90], endian);
    t.deepEqual(
      [...payloadOf(bytes, u.IPVS_DEST_ATTR.WEIGHT, endian)],
      endian === 'LE' ? [4, 3, 2, 1] : [1, 2, 3, 4],
      endian,
    );
    t.deepEqual([...payloadOf(bytes, u.IPVS_DEST_ATTR.ADDR_FAMILY, endian)], endian === 'LE' ? [2, 0] : [0, 2]);
  }
});

test('flags are 8 bytes {flags, mask}; addresses 16 bytes; names NUL-terminated; nests flagged', (t) => {
  const bytes = ipvsCodec.encodeService({
    af: u.AF.INET,
    addr: Uint8Array.from([192, 0, 2, 10, ...new Array<number>(12).fill(0)]),
    schedName: 'wrr',
    flags: { flags: 1, mask: 0xffffffff },
  });
  t.deepEqual([...payloadOf(bytes, u.IPVS_SVC_ATTR.FLAGS)], [1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  t.is(payloadOf(bytes, u.IPVS_SVC_ATTR.ADDR).length, 16);
  t.deepEqual([...payloadOf(bytes, u.IPVS_SVC_ATTR.SCHED_NAME)], [0x77, 0x72, 0x72, 0]);
  const command = ipvsCodec.decodeAttributes(ipvsCodec.encodeCommand({ service: {} }));
  t.deepEqual(command.map((a) => [a.type, a.nested]), [[u.IPVS_CMD_ATTR.SERVICE, true]]);
});

test('the persistence netmask: an IPv4 mask in network order, an IPv6 prefix length in host order', (t) => {
  const v4 = ipvsCodec.encodeService({ af: u.AF.INET, netmask: 0xffffff00 });
  t.deepEqual([...payloadOf(v4, u.IPVS_SVC_ATTR.NETMASK)], [255, 255, 255, 0]);
  const v6 = createIpvsCodec('LE').encodeService({ af: u.AF.INET6, netmask: 64 });
  t.deepEqual([...payloadOf(v6, u.IPVS_SVC_ATTR.NETMASK)], [64, 0, 0, 0]);
  // The family may come after the netmask: it is read once the record is complete.
  const late = createIpvsCodec('LE').encodeAttributes([
    { type: u.IPVS_SVC_ATTR.NETMASK, nested: false, netByteOrder: false, payload: Uint8Array.from([128, 0, 0, 0]) },
    { type: u.IPVS_SVC_ATTR.AF, nested: false, netByteOrder: false, payload: Uint8Array.from([10, 0]) },
  ]);
  t.is(createIpvsCodec('LE').decodeService(late).netmask, 128);
});

test('STATS64 padding attributes are dropped, other unknown stats attributes kept', (t) => {
  const bytes = ipvsCodec.encodeAttributes([
    { type: u.IPVS_STATS_ATTR.PAD, nested: false, netByteOrder: false, payload: new Uint8Array() },
    { type: u.IPVS_STATS_ATTR.CONNS, nested: false, netByteOrder: false, payload: new Uint8Array(8).fill(1) },
    { type: 42, nested: false, netByteOrder: true, payload: Uint8Array.from([9]) },
  ]);
  const decoded = ipvsCodec.decodeService(
    ipvsCodec.encodeAttributes([{ type: u.IPVS_SVC_ATTR.STATS64, nested: true, netByteOrder: false, payload: bytes }]),
  );
  t.is(decoded.stats64?.conns, 0x0101010101010101n);
  t.deepEqual(decoded.stats64?.unknown, [{ type: 42, nested: false, netByteOrder: true, payload: Uint8Array.from([9]) }]);
});

test('encoding refuses values that do not fit their attribute', (t) => {
  t.throws(() => ipvsCodec.encodeDest({ port: 65536 }), { instanceOf: RangeError });
  t.throws(() => ipvsCodec.encodeDest({ weight: -1 }), { instanceOf: RangeError });
  t.throws(() => ipvsCodec.encodeDest({ weight: 1.5 }), { instanceOf: RangeError });
  t.throws(() => ipvsCodec.encodeDest({ addr: new Uint8Array(4) }), { instanceOf: RangeError });
  t.throws(() => ipvsCodec.encodeService({ stats64: { conns: 2n ** 64n } }), { instanceOf: RangeError });
  t.throws(() => ipvsCodec.encodeService({ stats: { conns: 2n ** 32n } }), { instanceOf: RangeError });
});

// --- malformed input --------------------------------------------------------------

const WEIGHT_2_BYTES = Uint8Array.from([6, 0, u.IPVS_DEST_ATTR.WEIGHT, 0, 1, 0, 0, 0]);
const MALFORMED: readonly { readonly name: string; readonly bytes: number[]; readonly message: RegExp }[] = [
  { name: 'stray bytes', bytes: [1, 2, 3], message: /3 stray bytes at offset 0/ },
  { name: 'length below the header', bytes: [2, 0, 1, 0], message: /claims 2 bytes/ },
  { name: 'truncated payload', bytes: [8, 0, 4, 0, 1, 2], message: /claims 8 bytes, 6 left/ },
  { name: 'known attribute of the wrong size', bytes: [...WEIGHT_2_BYTES], message: /dest\.weight: expected 4 bytes, got 2/ },
];

for (const { name: what, bytes, message } of MALFORMED) {
  test(`malformed destination: ${what}`, (t) => {
    t.throws(() => ipvsCodec.decodeDest(Uint8Array.from(bytes)), { instanceOf: MalformedReplyError, message });
  });
}

test('empty input decodes to an empty record; a netlink message cut anywhere is refused', (t) => {
  t.deepEqual(ipvsCodec.decodeDest(new Uint8Array()), { unknown: [] });
  t.deepEqual(ipvsCodec.decodeNetlinkMessages(new Uint8Array()), []);
  const whole = ipvsCodec.encodeNetlinkMessages(capturedReply('netlink-get-dest-dump-tcp-80'));
  const boundaries = new Set<number>([0]);
  let at = 0;
  for (const m of capturedReply('netlink-get-dest-dump-tcp-80')) boundaries.add((at += (16 + m.payload.length + 3) & ~3));
  for (let n = 1; n < whole.length; n++) {
    if (boundaries.has(n)) continue;
    t.throws(() => ipvsCodec.decodeNetlinkMessages(whole.subarray(0, n)), { instanceOf: MalformedReplyError }, `cut at ${n}`);
  }
});

// --- what the kernel sent ------------------------------------------------------------

const genlOf = (name: string): { type: number; cmd: number; attributes: Uint8Array }[] =>
  capturedReply(name)
    .filter((m) => m.type === IPVS_FIXTURE_FAMILY || m.type === u.GENL_ID_CTRL)
    .map((m) => ({ type: m.type, ...ipvsCodec.decodeGenl(m.payload) }));

test('kernel: family resolution answers the IPVS family id, with attributes we do not know kept', (t) => {
  const [reply] = genlOf('netlink-ctrl-getfamily-ipvs');
  const ctrl = ipvsCodec.decodeCtrl(reply?.attributes ?? new Uint8Array());
  t.is(ctrl.familyId, IPVS_FIXTURE_FAMILY);
  t.is(ctrl.familyName, 'IPVS');
  t.is(ctrl.version, u.IPVS_GENL_VERSION);
  t.true((ctrl.unknown ?? []).length >= 3, 'hdrsize, maxattr, ops…');
  const [error] = capturedReply('netlink-ctrl-getfamily-nosuch');
  t.is(error?.type, u.NLMSG.ERROR);
  t.is(ipvsCodec.decodeNetlinkErrno(error?.payload ?? new Uint8Array()), 2, 'ENOENT');
});

test('kernel: GET_INFO', (t) => {
  const [reply] = genlOf('netlink-get-info');
  t.is(reply?.cmd, u.IPVS_CMD.SET_INFO);
  t.deepEqual(ipvsCodec.decodeInfo(reply?.attributes ?? new Uint8Array()), {
    version: 0x010201,
    connTabSize: 4096,
    unknown: [],
  });
});

test('kernel: GET_SERVICE dump decodes every service ipvsadm created', (t) => {
  const services = genlOf('netlink-get-service-dump').map((m) => ipvsCodec.decodeCommand(m.attributes).service);
  const names = services.map((s) => {
    if (s === undefined) return 'none';
    if (s.fwmark !== undefined) return `fwmark ${s.fwmark} af ${s.af}`;
    const bytes = s.af === u.AF.INET ? s.addr?.subarray(0, 4) : s.addr;
    return `${s.protocol} ${formatIp(bytes ?? new Uint8Array(4))}:${s.port} ${s.schedName}`;
  });
  t.deepEqual(new Set(names), new Set([
    `6 ::1:80 wlc`,
    `6 127.0.0.1:80 wrr`,
    `17 127.0.0.1:514 rr`,
    `17 127.0.0.1:53 sh`,
    `17 127.0.0.1:5060 rr`,
    `132 127.0.0.1:3868 lc`,
    `6 127.0.0.1:443 rr`,
    `fwmark 7 af 2`,
    `fwmark 8 af 10`,
  ]));
  const persistent = services.find((s) => s?.port === 443);
  t.like(persistent, { timeout: 300, netmask: 0xffffff00, flags: { flags: 0x3, mask: 0xffffffff } });
  t.is(services.find((s) => s?.fwmark === 8)?.netmask, 128, 'IPv6 prefix, host order');
  t.is(services.find((s) => s?.port === 5060)?.peName, 'sip');
  t.is(services.find((s) => s?.port === 53)?.flags?.flags, 0x2 | 0x8 | 0x10, 'hashed, sh-fallback, sh-port');
});

test('kernel: GET_DEST dump: forwarding methods, tunnels, thresholds, 64-bit stats', (t) => {
  const dests = genlOf('netlink-get-dest-dump-tcp-80').map((m) => ipvsCodec.decodeCommand(m.attributes).dest);
  const byAddress = new Map(dests.map((d) => [formatIp(d?.addr?.subarray(0, 4) ?? new Uint8Array(4)), d]));
  t.like(byAddress.get('127.0.0.2'), { port: 8080, fwdMethod: u.IP_VS_CONN_F.MASQ, weight: 50, uThresh: 100, lThresh: 20 });
  t.like(byAddress.get('127.0.0.3'), { port: 80, fwdMethod: u.IP_VS_CONN_F.DROUTE, weight: 3 });
  t.like(byAddress.get('127.0.0.4'), { fwdMethod: u.IP_VS_CONN_F.TUNNEL, tunType: 1, tunPort: 6080, tunFlags: 0 });
  t.like(byAddress.get('127.0.0.5'), { fwdMethod: u.IP_VS_CONN_F.TUNNEL, tunType: 2, tunFlags: 1 });
  t.like(byAddress.get('127.0.0.7'), { weight: 70000, addrFamily: u.AF.INET });
  for (const d of dests) {
    t.is(d?.stats64?.conns, 0n);
    t.is(d?.stats?.conns, 0n);
    t.deepEqual(d?.unknown, []);
  }
});

test('kernel: errors are NLMSG_ERROR with ENOENT (no destination), ESRCH (no service), EEXIST; ACK is errno 0', (t) => {
  const errno = (name: string): number => {
    const [m] = capturedReply(name);
    t.is(m?.type, u.NLMSG.ERROR, name);
    return ipvsCodec.decodeNetlinkErrno(m?.payload ?? new Uint8Array());
  };
  t.is(errno('netlink-set-dest-enoent'), 2);
  t.is(errno('netlink-set-dest-esrch'), 3);
  t.is(errno('netlink-new-dest-eexist'), 17);
  t.is(errno('netlink-set-dest-ack'), 0);
});

test('kernel: an attribute from a newer kernel inside a captured destination is kept through decode and encode', (t) => {
  const [first] = genlOf('netlink-get-dest-dump-tcp-80');
  const command = ipvsCodec.decodeCommand(first?.attributes ?? new Uint8Array());
  const future: RawAttribute = { type: 40, nested: false, netByteOrder: false, payload: Uint8Array.from([1, 2, 3, 4]) };
  const extended = ipvsCodec.encodeCommand({ ...command, dest: { ...command.dest, unknown: [future] } });
  const decoded = ipvsCodec.decodeCommand(extended);
  t.deepEqual(decoded.dest?.unknown, [future]);
  t.deepEqual({ ...decoded.dest, unknown: [] }, { ...command.dest, unknown: [] });
});

// --- addresses ------------------------------------------------------------------------

test('IP text ↔ bytes: RFC 5952 spelling, the same as the WHATWG URL serializer', (t) => {
  fc.assert(
    fc.property(fc.ipV6(), (text) => {
      const canonical = formatIp(parseIp(text));
      t.is(canonical, new URL(`http://[${text}]/`).hostname.slice(1, -1));
      t.deepEqual(parseIp(canonical), parseIp(text));
    }),
    RUNS,
  );
  fc.assert(
    fc.property(fc.ipV4(), (text) => {
      t.is(formatIp(parseIp(text)), text);
    }),
    RUNS,
  );
  const table: [string, string][] = [
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
  ];
  for (const [text, expected] of table) t.is(canonicalIp(text), expected, text);
  t.throws(() => parseIp('300.1.1.1'), { instanceOf: AddressError });
});

test('IPVS service and destination addresses parse to canonical form and back', (t) => {
  const table: [string, string][] = [
    ['tcp 192.0.2.10:80', 'tcp 192.0.2.10:80'],
    ['192.0.2.10:80', 'tcp 192.0.2.10:80'],
    ['UDP [2001:DB8::0001]:53', 'udp [2001:db8::1]:53'],
    ['sctp 192.0.2.10:3868', 'sctp 192.0.2.10:3868'],
    ['fwmark 7', 'fwmark 7'],
    ['FWMARK 7 ipv6', 'fwmark 7 ipv6'],
    ['fwmark 7 ipv4', 'fwmark 7'],
  ];
  for (const [text, canonical] of table) t.is(formatIpvsServiceKey(parseIpvsServiceKey(text)), canonical, text);
  t.is(formatIpvsDestinationKey(parseIpvsDestinationKey('[2001:db8:0::2]:8080')), '[2001:db8::2]:8080');
  t.is(formatIpvsDestinationKey(parseIpvsDestinationKey('192.0.2.9:0')), '192.0.2.9:0');
  for (const bad of ['icmp 1.2.3.4:80', 'fwmark 0', 'fwmark 4294967296', 'tcp 1.2.3.4', 'tcp host:80']) {
    t.throws(() => parseIpvsServiceKey(bad), { instanceOf: AddressError }, bad);
  }
});
