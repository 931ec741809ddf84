// The IPVS engine's netlink driver against a fake kernel (ipvs-fake-peer.ts):
// which requests it sends (family, command, flags, attributes), in what order,
// how many before the first ACK, and how kernel errors come back. The fake
// answers with messages captured from a real kernel where it can.
import test from 'ava';
import {
  ConflictError,
  ConnectionLimitError,
  EngineClosedError,
  EnginePermissionError,
  EngineUnavailableError,
  IPVS_UNAVAILABLE_MESSAGE,
  MalformedReplyError,
  NetlinkErrnoError,
  OptionError,
  UnknownTargetError,
  UnsupportedError,
  AddressError,
  WeightRangeError,
  createIpvsEngine,
  createIpvsSocket,
  ipvsUapi as u,
  openIpvsSocket,
  type EngineOp,
  type IpvsEngine,
  type IpvsEngineOptions,
  type ServiceAttributes,
} from '@loadfeed/kernel-bridge';
import { capturedReply, IPVS_FIXTURE_FAMILY } from './ipvs-fixtures.js';
import {
  ACK,
  asReplies,
  DO_FLAGS,
  DUMP_FLAGS,
  FakeIpvsPeer,
  familyReply,
  settle,
  ipvsMessage,
  type Answer,
  type Expectation,
  type SeenRequest,
} from './ipvs-fake-peer.js';

const TCP80 = 'tcp 127.0.0.1:80';
const v4 = (a: string): Uint8Array => Uint8Array.from([...a.split('.').map(Number), ...new Array<number>(12).fill(0)]);

const resolveFamily: Expectation = {
  family: 'ctrl',
  cmd: u.CTRL_CMD_GETFAMILY,
  flags: DO_FLAGS,
  answer: asReplies(capturedReply('netlink-ctrl-getfamily-ipvs')),
};
const getInfo: Expectation = {
  family: 'ipvs',
  cmd: u.IPVS_CMD.GET_INFO,
  flags: DO_FLAGS,
  answer: asReplies(capturedReply('netlink-get-info')),
};
const serviceDump: Expectation = {
  family: 'ipvs',
  cmd: u.IPVS_CMD.GET_SERVICE,
  flags: DUMP_FLAGS,
  answer: asReplies(capturedReply('netlink-get-service-dump')),
};

/** The captured destination dump of the service a GET_DEST request names; an empty dump for the others. */
function capturedDests(request: SeenRequest): Answer {
  const s = request.attrs.service;
  if (s?.fwmark === 7) return asReplies(capturedReply('netlink-get-dest-dump-fwmark-7'));
  if (s?.port === 80 && s.protocol === u.IPPROTO.TCP) {
    return asReplies(capturedReply(s.af === u.AF.INET6 ? 'netlink-get-dest-dump-tcp6-80' : 'netlink-get-dest-dump-tcp-80'));
  }
  return [];
}
const destDump: Expectation = { family: 'ipvs', cmd: u.IPVS_CMD.GET_DEST, flags: DUMP_FLAGS, answer: capturedDests };
const ipvs = (cmd: number, answer: Expectation['answer'] = ACK): Expectation => ({
  family: 'ipvs',
  cmd,
  flags: DO_FLAGS,
  answer,
});

/** A fake kernel that expects the engine's opening exchange (family, GET_INFO), then `more`. */
function peerWith(...more: Expectation[]): FakeIpvsPeer {
  return new FakeIpvsPeer().expect(resolveFamily, getInfo, ...more);
}

async function engineOn(peer: FakeIpvsPeer, options: IpvsEngineOptions = {}): Promise<IpvsEngine> {
  return createIpvsEngine({ driver: 'netlink', socket: createIpvsSocket(peer), ...options });
}

const setWeight = (destination: string, weight: number, extra: Partial<Extract<EngineOp, { op: 'set-weight' }>> = {}): EngineOp => ({
  op: 'set-weight',
  service: TCP80,
  destination,
  weight,
  ...extra,
});

const addrText = (s: ServiceAttributes | undefined): string =>
  s?.addr === undefined ? '-' : [...s.addr.subarray(0, 4)].join('.');

test('opening resolves the "IPVS" family once, then every command goes to it with version 1', async (t) => {
  const peer = peerWith(serviceDump, destDump, destDump, destDump, destDump, destDump, destDump, destDump, destDump, destDump);
  const engine = await engineOn(peer);
  t.is(engine.driver, 'netlink');
  t.is(engine.kind, 'ipvs');
  await engine.observe();
  t.deepEqual(peer.mismatches, []);
  t.is(peer.pending, 0);
  t.is(peer.seen.filter((r) => r.family === 'ctrl').length, 1);
  t.true(peer.seen.slice(1).every((r) => r.family === 'ipvs' && r.version === u.IPVS_GENL_VERSION));
  await engine.close();
  t.true(peer.closed);
});

test('no IPVS family (ENOENT from the controller) is one clear error', async (t) => {
  const peer = new FakeIpvsPeer().expect({ ...resolveFamily, answer: asReplies(capturedReply('netlink-ctrl-getfamily-nosuch')) });
  const error = await t.throwsAsync(engineOn(peer), { instanceOf: EngineUnavailableError });
  t.is(error?.message, IPVS_UNAVAILABLE_MESSAGE);
  t.is(error?.code, 'BRIDGE_ENGINE_UNAVAILABLE');
  t.regex(IPVS_UNAVAILABLE_MESSAGE, /modprobe ip_vs.*CONFIG_IP_VS.*fastpath\/nftables\/haproxy/);
  t.false(peer.closed, 'a socket handed in stays its owner\'s when opening fails');
});

test('observe(): a GET_SERVICE dump, then one GET_DEST dump per service, never two dumps at once', async (t) => {
  const peer = peerWith(serviceDump, ...new Array<Expectation>(9).fill(destDump));
  const engine = await engineOn(peer);
  const observed = await engine.observe();
  t.deepEqual(peer.mismatches, []);
  t.deepEqual(
    observed.services.map((s) => `${s.address} ${s.scheduler} ${s.destinations.length}`),
    [
      'tcp 127.0.0.1:80 wrr 6',
      'tcp 127.0.0.1:443 rr 0',
      'udp 127.0.0.1:53 rr 0'.replace('rr', 'sh'),
      'udp 127.0.0.1:514 rr 0',
      'udp 127.0.0.1:5060 rr 0',
      'sctp 127.0.0.1:3868 lc 0',
      'fwmark 7 wlc 1',
      'tcp [::1]:80 wlc 2',
      'fwmark 8 ipv6 wlc 0',
    ],
  );
  const [tcp80] = observed.services;
  t.deepEqual(tcp80?.destinations[0], {
    address: '127.0.0.2:8080',
    weight: 50,
    activeConnections: 0,
    inactiveConnections: 0,
    totalConnections: 0,
    maxConnections: 100,
    up: true,
  });
  t.deepEqual(
    observed.services.find((s) => s.address === 'tcp [::1]:80')?.destinations.map((d) => [d.address, d.weight]),
    [
      ['[::2]:8080', 65535],
      ['[2001:db8::1:0:0:1]:8080', 7],
    ],
  );
  t.deepEqual(
    observed.services.find((s) => s.address === 'fwmark 7')?.destinations.map((d) => d.address),
    ['127.0.0.9:0'],
  );
  // The dest dumps named each service by its key.
  const named = peer.seen.filter((r) => r.cmd === u.IPVS_CMD.GET_DEST).map((r) => r.attrs.service);
  t.true(named.every((s) => s?.af !== undefined && (s.fwmark !== undefined || (s.protocol !== undefined && s.port !== undefined))));
});

test('observeIpvs(): forwarding methods, tunnels, thresholds and flags as the kernel has them', async (t) => {
  const peer = peerWith(serviceDump, ...new Array<Expectation>(9).fill(destDump));
  const engine = await engineOn(peer);
  const states = await engine.observeIpvs();
  const tcp80 = states[0];
  t.deepEqual(
    tcp80?.destinations.map((d) => [d.key.address, d.settings.forward, d.settings.tunnel?.type ?? null]),
    [
      ['127.0.0.2', 'masq', 'ipip'],
      ['127.0.0.3', 'route', 'ipip'],
      ['127.0.0.4', 'tunnel', 'gue'],
      ['127.0.0.5', 'tunnel', 'gre'],
      ['127.0.0.6', 'tunnel', 'ipip'],
      ['127.0.0.7', 'masq', 'ipip'],
    ],
  );
  t.deepEqual(tcp80?.destinations[2]?.settings.tunnel, { type: 'gue', port: 6080, flags: 0 });
  const persistent = states.find((s) => s.service.key.kind === 'address' && s.service.key.port === 443);
  t.deepEqual(persistent?.service.settings, {
    scheduler: 'rr',
    flags: u.IP_VS_SVC_F.PERSISTENT,
    timeout: 300,
    netmask: 0xffffff00,
    persistenceEngine: null,
  });
  t.is(states.find((s) => s.service.key.kind === 'fwmark' && s.service.key.fwmark === 8)?.service.settings.netmask, 128);
  t.is(tcp80?.service.stats?.connectionsPerSecond, 0n);
});

test('apply(): reads only the services it touches, then sends SET_DEST back to back before any ACK', async (t) => {
  const peer = peerWith(serviceDump, destDump, ipvs(u.IPVS_CMD.SET_DEST), ipvs(u.IPVS_CMD.SET_DEST), ipvs(u.IPVS_CMD.SET_DEST));
  const engine = await engineOn(peer);
  peer.hold(u.IPVS_CMD.SET_DEST);
  let done = false;
  const applied = engine
    .apply([setWeight('127.0.0.2:8080', 9), setWeight('127.0.0.3:80', 8), setWeight('127.0.0.4:80', 7)])
    .finally(() => (done = true));
  await settle();
  t.is(peer.count(u.IPVS_CMD.SET_DEST), 3, 'all three sent while no ACK has come');
  t.false(done, 'apply() waits for the ACKs');
  peer.release();
  await applied;
  t.deepEqual(peer.mismatches, []);
  t.is(peer.pending, 0);
  const sets = peer.seen.filter((r) => r.cmd === u.IPVS_CMD.SET_DEST);
  t.deepEqual(sets.map((r) => addrText(r.attrs.service)), ['127.0.0.1', '127.0.0.1', '127.0.0.1']);
  // Everything SET_DEST needs, from the fresh read: the forwarding method, thresholds and tunnel stay.
  t.like(sets[0]?.attrs.dest, { port: 8080, fwdMethod: u.IP_VS_CONN_F.MASQ, weight: 9, uThresh: 100, lThresh: 20, addrFamily: u.AF.INET });
  t.like(sets[1]?.attrs.dest, { port: 80, fwdMethod: u.IP_VS_CONN_F.DROUTE, weight: 8, uThresh: 0, lThresh: 0 });
  t.like(sets[2]?.attrs.dest, { fwdMethod: u.IP_VS_CONN_F.TUNNEL, weight: 7, tunType: 1, tunPort: 6080, tunFlags: 0 });
});

test('apply(): a weight that does not change is not written', async (t) => {
  const peer = peerWith(serviceDump, destDump, ipvs(u.IPVS_CMD.SET_DEST));
  const engine = await engineOn(peer);
  await engine.apply([setWeight('127.0.0.2:8080', 50), setWeight('127.0.0.3:80', 4), setWeight('127.0.0.4:80', 1)]);
  t.deepEqual(peer.mismatches, []);
  t.deepEqual(
    peer.seen.filter((r) => r.cmd === u.IPVS_CMD.SET_DEST).map((r) => addrText({ addr: r.attrs.dest?.addr })),
    ['127.0.0.3'],
  );
});

test('apply(): no more requests in flight than the window', async (t) => {
  const sets = new Array<Expectation>(5).fill(ipvs(u.IPVS_CMD.SET_DEST));
  const peer = peerWith(serviceDump, destDump, ...sets);
  const engine = await engineOn(peer, { netlinkWindow: 2 });
  peer.hold(u.IPVS_CMD.SET_DEST);
  const applied = engine.apply(
    ['127.0.0.2:8080', '127.0.0.3:80', '127.0.0.4:80', '127.0.0.5:80', '127.0.0.6:80'].map((d, i) => setWeight(d, 100 + i)),
  );
  const inFlight: number[] = [];
  for (let i = 0; i < 3; i++) {
    await settle();
    inFlight.push(peer.count(u.IPVS_CMD.SET_DEST));
    peer.flush();
  }
  peer.release();
  await applied;
  t.deepEqual(inFlight, [2, 4, 5], 'each window waits for the ACKs of the one before');
  t.deepEqual(peer.mismatches, []);
  t.is(peer.pending, 0);
});

test('apply(): an unknown destination rejects naming it; only the ops before it are sent', async (t) => {
  const peer = peerWith(serviceDump, destDump, ipvs(u.IPVS_CMD.SET_DEST));
  const engine = await engineOn(peer);
  const error = await t.throwsAsync(
    engine.apply([setWeight('127.0.0.2:8080', 7), setWeight('127.0.0.99:8080', 1), setWeight('127.0.0.3:80', 9)]),
    { instanceOf: UnknownTargetError, message: /127\.0\.0\.99:8080/ },
  );
  t.is(error?.code, 'BRIDGE_UNKNOWN_TARGET');
  t.deepEqual(peer.mismatches, []);
  t.is(peer.pending, 0);
  t.is(peer.seen.filter((r) => r.cmd === u.IPVS_CMD.SET_DEST).length, 1);
});

test('apply(): bad weights, limits and addresses reject before anything is read or sent', async (t) => {
  const peer = peerWith();
  const engine = await engineOn(peer);
  const opened = peer.seen.length;
  await t.throwsAsync(engine.apply([setWeight('127.0.0.2:8080', 1), setWeight('127.0.0.3:80', 65536)]), { instanceOf: WeightRangeError });
  await t.throwsAsync(engine.apply([setWeight('127.0.0.2:8080', -1)]), { instanceOf: WeightRangeError });
  await t.throwsAsync(engine.apply([setWeight('127.0.0.2:8080', 1, { maxConnections: -1 })]), {
    instanceOf: ConnectionLimitError,
    message: /maxConnections -1 must be an integer in 0\.\.2147483647 \(0 = no limit\)/,
  });
  await t.throwsAsync(engine.apply([setWeight('127.0.0.2:8080', 1, { maxConnections: 1.5 })]), {
    instanceOf: ConnectionLimitError,
  });
  await t.throwsAsync(engine.apply([setWeight('127.0.0.2:8080', 1, { maxConnections: 2 ** 31 })]), {
    instanceOf: ConnectionLimitError,
  });
  await t.throwsAsync(engine.apply([{ op: 'set-weight', service: 'tcp 127.0.0.1', destination: '127.0.0.2:1', weight: 1 }]), {
    instanceOf: AddressError,
  });
  await t.throwsAsync(engine.apply([{ op: 'add-service', service: { address: TCP80, scheduler: 'Bad Name' } }]), {
    instanceOf: UnsupportedError,
  });
  await engine.apply([]);
  t.is(peer.seen.length, opened);
  t.deepEqual(peer.mismatches, []);
});

test('apply(): maxConnections sets the upper threshold; a lower threshold above it is reset to 0', async (t) => {
  const peer = peerWith(serviceDump, destDump, ipvs(u.IPVS_CMD.SET_DEST), ipvs(u.IPVS_CMD.SET_DEST), ipvs(u.IPVS_CMD.SET_DEST));
  const engine = await engineOn(peer);
  await engine.apply([
    setWeight('127.0.0.2:8080', 50, { maxConnections: 10 }), // 100/20 → 10/0
    setWeight('127.0.0.3:80', 3, { maxConnections: 500 }), // 0/0 → 500/0
    setWeight('127.0.0.4:80', 2, { maxConnections: 0 }), // weight only; 0 = no limit, as it was
  ]);
  t.deepEqual(peer.mismatches, []);
  const sets = peer.seen.filter((r) => r.cmd === u.IPVS_CMD.SET_DEST).map((r) => r.attrs.dest);
  t.like(sets[0], { weight: 50, uThresh: 10, lThresh: 0 });
  t.like(sets[1], { weight: 3, uThresh: 500, lThresh: 0 });
  t.like(sets[2], { weight: 2, uThresh: 0, lThresh: 0 });
});

test('apply(): add and remove services and destinations', async (t) => {
  const emptyDump: Expectation = { ...serviceDump, answer: [] };
  const peer = peerWith(
    emptyDump,
    ipvs(u.IPVS_CMD.NEW_SERVICE),
    ipvs(u.IPVS_CMD.NEW_DEST),
    ipvs(u.IPVS_CMD.NEW_SERVICE),
    ipvs(u.IPVS_CMD.NEW_DEST),
    ipvs(u.IPVS_CMD.DEL_DEST),
    ipvs(u.IPVS_CMD.DEL_SERVICE),
    ipvs(u.IPVS_CMD.NEW_SERVICE),
  );
  const engine = await engineOn(peer, { scheduler: 'wrr' });
  await engine.apply([
    { op: 'add-service', service: { address: 'tcp 192.0.2.10:80', scheduler: 'mh' } },
    { op: 'add-destination', service: 'tcp 192.0.2.10:80', destination: '192.0.2.21:8080', weight: 5 },
    { op: 'add-service', service: { address: 'udp [2001:db8::10]:53' } },
    { op: 'add-destination', service: 'udp [2001:db8::10]:53', destination: '[2001:db8::21]:53', weight: 0 },
    { op: 'remove-destination', service: 'udp [2001:db8::10]:53', destination: '[2001:db8::21]:53' },
    { op: 'remove-service', service: 'udp [2001:db8::10]:53' },
    { op: 'add-service', service: { address: 'fwmark 7 ipv6' } },
  ]);
  t.deepEqual(peer.mismatches, []);
  const writes = peer.seen.filter((r) => r.cmd !== u.IPVS_CMD.GET_SERVICE).slice(2);
  t.like(writes[0]?.attrs.service, {
    af: u.AF.INET,
    protocol: u.IPPROTO.TCP,
    port: 80,
    schedName: 'mh',
    flags: { flags: 0, mask: 0xffffffff },
    timeout: 0,
    netmask: 0xffffffff,
  });
  t.like(writes[1]?.attrs.dest, { port: 8080, fwdMethod: u.IP_VS_CONN_F.MASQ, weight: 5, uThresh: 0, lThresh: 0, addrFamily: u.AF.INET });
  t.like(writes[2]?.attrs.service, { af: u.AF.INET6, protocol: u.IPPROTO.UDP, schedName: 'wrr', netmask: 128 });
  t.like(writes[3]?.attrs.dest, { weight: 0, addrFamily: u.AF.INET6 });
  t.deepEqual(Object.keys(writes[4]?.attrs.dest ?? {}).sort(), ['addr', 'addrFamily', 'port', 'unknown']);
  t.deepEqual(Object.keys(writes[5]?.attrs.service ?? {}).sort(), ['addr', 'af', 'port', 'protocol', 'unknown']);
  t.like(writes[6]?.attrs.service, { af: u.AF.INET6, fwmark: 7 });
});

test('apply(): route and tunnel cannot map ports, so such a destination is refused, not rewritten', async (t) => {
  const peer = peerWith(serviceDump, destDump, ipvs(u.IPVS_CMD.NEW_DEST));
  const engine = await engineOn(peer, { forward: 'route' });
  const error = await t.throwsAsync(
    engine.apply([
      { op: 'add-destination', service: TCP80, destination: '127.0.0.20:80', weight: 1 },
      { op: 'add-destination', service: TCP80, destination: '127.0.0.21:8080', weight: 1 },
    ]),
    { instanceOf: UnsupportedError, message: /cannot map port 80 to 8080/ },
  );
  t.truthy(error);
  t.deepEqual(peer.mismatches, []);
  t.like(peer.seen.find((r) => r.cmd === u.IPVS_CMD.NEW_DEST)?.attrs.dest, { fwdMethod: u.IP_VS_CONN_F.DROUTE, port: 80 });
});

const KERNEL_ERRORS: readonly {
  readonly errno: number;
  readonly name: string;
  readonly check: (error: unknown) => boolean;
  readonly message: RegExp;
}[] = [
  { errno: 2, name: 'ENOENT', check: (e) => e instanceof UnknownTargetError, message: /has no destination "127\.0\.0\.2:8080" \(kernel: ENOENT\)/ },
  { errno: 3, name: 'ESRCH', check: (e) => e instanceof UnknownTargetError, message: /no service "tcp 127\.0\.0\.1:80" \(kernel: ESRCH\)/ },
  { errno: 17, name: 'EEXIST', check: (e) => e instanceof ConflictError, message: /already \(kernel: EEXIST\)/ },
  { errno: 1, name: 'EPERM', check: (e) => e instanceof EnginePermissionError, message: /CAP_NET_ADMIN/ },
  {
    errno: 22,
    name: 'EINVAL',
    check: (e) => e instanceof NetlinkErrnoError && e.errno === 22 && e.errnoName === 'EINVAL' && e.code === 'BRIDGE_NETLINK_ERRNO',
    message: /set-destination "tcp 127\.0\.0\.1:80" "127\.0\.0\.2:8080" \(masq, weight 9, thresholds 100\/20.*\): IPVS_CMD_SET_DEST: the kernel answered EINVAL \(invalid argument\)/i,
  },
  { errno: 34, name: 'ERANGE', check: (e) => e instanceof NetlinkErrnoError && e.errnoName === 'ERANGE', message: /ERANGE/ },
];

for (const { errno, name, check, message } of KERNEL_ERRORS) {
  test(`kernel errno ${name} on SET_DEST becomes a typed error`, async (t) => {
    const peer = peerWith(serviceDump, destDump, ipvs(u.IPVS_CMD.SET_DEST, { errno }));
    const engine = await engineOn(peer);
    const error = await t.throwsAsync(engine.apply([setWeight('127.0.0.2:8080', 9)]), { message });
    t.true(check(error), `${String(error?.name)}: ${String(error?.message)}`);
    t.deepEqual(peer.mismatches, []);
  });
}

test('kernel ENOENT on NEW_SERVICE means the scheduler module is missing', async (t) => {
  const peer = peerWith({ ...serviceDump, answer: [] }, ipvs(u.IPVS_CMD.NEW_SERVICE, { errno: 2 }));
  const engine = await engineOn(peer);
  await t.throwsAsync(engine.apply([{ op: 'add-service', service: { address: TCP80, scheduler: 'nosuch' } }]), {
    instanceOf: UnsupportedError,
    message: /scheduler "nosuch" is not available in this kernel \(no module ip_vs_nosuch/,
  });
});

test('the first refused edit of a window is reported, in batch order', async (t) => {
  const peer = peerWith(
    serviceDump,
    destDump,
    ipvs(u.IPVS_CMD.SET_DEST),
    ipvs(u.IPVS_CMD.SET_DEST, { errno: 2 }),
    ipvs(u.IPVS_CMD.SET_DEST, { errno: 22 }),
  );
  const engine = await engineOn(peer);
  await t.throwsAsync(
    engine.apply([setWeight('127.0.0.2:8080', 9), setWeight('127.0.0.3:80', 8), setWeight('127.0.0.4:80', 7)]),
    { instanceOf: UnknownTargetError, message: /127\.0\.0\.3:80/ },
  );
});

test('replies from another family or with broken attributes are MalformedReplyError', async (t) => {
  const alien = { type: 99, flags: 0, payload: new Uint8Array(4) };
  const broken = ipvsMessage(u.IPVS_CMD.NEW_SERVICE, { service: { af: u.AF.INET, protocol: 6, port: 80, addr: v4('1.2.3.4') } });
  const peer = peerWith({ ...serviceDump, answer: [alien] }, { ...serviceDump, answer: [broken] });
  const engine = await engineOn(peer);
  await t.throwsAsync(engine.observe(), { instanceOf: MalformedReplyError, message: /netlink type 99/ });
  await t.throwsAsync(engine.observe(), { instanceOf: MalformedReplyError, message: /SCHED_NAME is missing/ });
});

test('apply() calls run one at a time; close() waits for the batch and then refuses more', async (t) => {
  const peer = peerWith(serviceDump, destDump, ipvs(u.IPVS_CMD.SET_DEST), serviceDump, destDump, ipvs(u.IPVS_CMD.SET_DEST));
  const engine = await engineOn(peer);
  const first = engine.apply([setWeight('127.0.0.2:8080', 1)]);
  const second = engine.apply([setWeight('127.0.0.3:80', 2)]);
  await Promise.all([first, second]);
  t.deepEqual(peer.mismatches, [], 'the second batch read after the first wrote');
  await engine.close();
  await t.throwsAsync(engine.apply([setWeight('127.0.0.2:8080', 1)]), { instanceOf: EngineClosedError });
  await t.throwsAsync(engine.observe(), { instanceOf: EngineClosedError });
});

test('driver auto: netlink when it works; ipvsadm is not even asked', async (t) => {
  let ipvsadmCalls = 0;
  const engine = await createIpvsEngine({
    socket: createIpvsSocket(peerWith()),
    ipvsadm: { runner: { run: async () => ((ipvsadmCalls += 1), { exitCode: 0, stdout: '', stderr: '' }) } },
  });
  t.is(engine.driver, 'netlink');
  t.is(ipvsadmCalls, 0);
});

const EMPTY_LISTING = 'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';

test('driver auto: ipvsadm when the IPVS family is missing but ipvsadm works; netlink again if ipvsadm loaded the module', async (t) => {
  const missing = (): FakeIpvsPeer =>
    new FakeIpvsPeer().expect({ ...resolveFamily, answer: asReplies(capturedReply('netlink-ctrl-getfamily-nosuch')) });
  const runner = { run: async () => ({ exitCode: 0, stdout: EMPTY_LISTING, stderr: '' }) };
  const stays = await createIpvsEngine({ socket: createIpvsSocket(missing()), ipvsadm: { runner } });
  t.is(stays.driver, 'ipvsadm');

  // ipvsadm runs `modprobe ip_vs` itself: the second look finds the family.
  const peer = missing().expect({ ...resolveFamily, answer: familyReply() }, getInfo);
  const engine = await createIpvsEngine({ socket: createIpvsSocket(peer), ipvsadm: { runner } });
  t.is(engine.driver, 'netlink');
  t.deepEqual(peer.mismatches, []);
});

test('driver auto: both failing is one clear error with both reasons; EPERM is not hidden behind a fallback', async (t) => {
  const missing = new FakeIpvsPeer().expect({ ...resolveFamily, answer: { errno: 2 } });
  const runner = {
    run: async () => ({
      exitCode: 2,
      stdout: '',
      stderr: "Can't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?\n",
    }),
  };
  const error = await t.throwsAsync(createIpvsEngine({ socket: createIpvsSocket(missing), ipvsadm: { runner } }), {
    instanceOf: EngineUnavailableError,
  });
  t.true(error?.message.startsWith(IPVS_UNAVAILABLE_MESSAGE), error?.message);
  t.regex(error?.message ?? '', /netlink: IPVS is not available.*; ipvsadm: IPVS is not available.*Protocol not available/);

  const denied = new FakeIpvsPeer().expect(resolveFamily, { ...getInfo, answer: { errno: 1 } });
  await t.throwsAsync(createIpvsEngine({ socket: createIpvsSocket(denied), ipvsadm: { runner } }), {
    instanceOf: EnginePermissionError,
    message: /CAP_NET_ADMIN/,
  });
});

test('driver netlink / ipvsadm forced: each fails clearly on its own', async (t) => {
  const missing = new FakeIpvsPeer().expect({ ...resolveFamily, answer: { errno: 2 } });
  await t.throwsAsync(createIpvsEngine({ driver: 'netlink', socket: createIpvsSocket(missing) }), {
    instanceOf: EngineUnavailableError,
    message: IPVS_UNAVAILABLE_MESSAGE,
  });
  await t.throwsAsync(createIpvsEngine({ driver: 'ipvsadm', ipvsadm: { path: '/nonexistent/ipvsadm' } }), {
    instanceOf: EngineUnavailableError,
    message: /\/nonexistent\/ipvsadm not found: install ipvsadm \(apt-get install ipvsadm\) or use the netlink driver/,
  });
  await t.throwsAsync(createIpvsEngine({ driver: 'bogus' as 'auto' }), { instanceOf: OptionError });
  await t.throwsAsync(createIpvsEngine({ driver: 'netlink', forward: 'local' as 'masq' }), { instanceOf: OptionError });
  await t.throwsAsync(createIpvsEngine({ driver: 'netlink', netlinkWindow: 0 }), { instanceOf: OptionError });
});

test('this host: a real generic netlink socket either finds IPVS or says it is not available', async (t) => {
  const socket = await openIpvsSocket();
  try {
    const family = await socket.family();
    t.true(Number.isInteger(family) && family >= 16, `IPVS family ${family}`);
  } catch (error) {
    t.true(error instanceof EngineUnavailableError, String(error));
    t.is((error as Error).message, IPVS_UNAVAILABLE_MESSAGE);
  } finally {
    socket.close();
  }
});

test('the fake kernel itself notices a wrong command or flags', async (t) => {
  const peer = new FakeIpvsPeer(IPVS_FIXTURE_FAMILY).expect(resolveFamily, { ...getInfo, flags: DUMP_FLAGS });
  await t.throwsAsync(engineOn(peer), { message: /expected ipvs IPVS_CMD_GET_INFO flags 0x305, got ipvs IPVS_CMD_GET_INFO flags 0x5/ });
  t.is(peer.mismatches.length, 1);
});
