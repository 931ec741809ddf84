// The ipvsadm driver: its pure parsers on listings a real kernel produced
// (test/fixtures/ipvs/), cross-checked against the netlink dumps of the same
// kernel state; the -R script it writes; and the driver over a fake runner
// (one ipvsadm -R per apply, errors read back from stderr).
import test from 'ava';
import {
  CommandFailedError,
  ConflictError,
  EnginePermissionError,
  EngineUnavailableError,
  IPVS_UNAVAILABLE_MESSAGE,
  MalformedReplyError,
  UnknownTargetError,
  UnsupportedError,
  compileIpvsSteps,
  createIpvsadmBackend,
  createIpvsEngine,
  createIpvsSocket,
  firstMissingIpvsEdit,
  formatIpvsDestinationKey,
  formatIpvsServiceKey,
  ipvsadmScriptLine,
  mergeIpvsadmListings,
  parseIpvsadmListing,
  parseIpvsDestinationKey,
  parseIpvsServiceKey,
  planIpvsEdits,
  type IpvsadmResult,
  type IpvsadmRunner,
  type IpvsEdit,
  type IpvsServiceState,
} from '@loadfeed/kernel-bridge';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipvsFixtureText } from './ipvs-fixtures.js';
import { asReplies, DO_FLAGS, DUMP_FLAGS, FakeIpvsPeer } from './ipvs-fake-peer.js';
import { capturedReply } from './ipvs-fixtures.js';
import { ipvsUapi as u } from '@loadfeed/kernel-bridge';

const listing = (name: string): ReturnType<typeof parseIpvsadmListing> =>
  parseIpvsadmListing(ipvsFixtureText(`ipvsadm-Ln-exact${name}.txt`));

function capturedState(): IpvsServiceState[] {
  return mergeIpvsadmListings(listing('-tun-info'), listing('-thresholds'), listing('-stats'));
}

// --- parsers ------------------------------------------------------------------------

test('listings: the header tells the format', (t) => {
  t.is(listing('').format, 'plain');
  t.is(listing('-tun-info').format, 'tun-info');
  t.is(listing('-thresholds').format, 'thresholds');
  t.is(listing('-stats').format, 'stats');
  t.is(listing('-rate').format, 'rate');
  t.is(listing('-persistent-conn').format, 'persistent-conn');
  for (const name of ['', '-tun-info', '-thresholds', '-stats', '-rate', '-persistent-conn']) {
    t.deepEqual(
      listing(name).services.map((s) => formatIpvsServiceKey(s.key)),
      [
        'tcp 127.0.0.1:80',
        'tcp 127.0.0.1:443',
        'udp 127.0.0.1:53',
        'udp 127.0.0.1:514',
        'udp 127.0.0.1:5060',
        'sctp 127.0.0.1:3868',
        'tcp [::1]:80',
        'fwmark 7',
        'fwmark 8 ipv6',
      ],
      name,
    );
  }
});

test('listings merged: every setting and counter of the captured kernel state', (t) => {
  const states = capturedState();
  const tcp80 = states.find((s) => formatIpvsServiceKey(s.service.key) === 'tcp 127.0.0.1:80');
  t.deepEqual(
    tcp80?.destinations.map((d) => [
      formatIpvsDestinationKey(d.key),
      d.settings.forward,
      d.settings.weight,
      d.settings.upperThreshold,
      d.settings.lowerThreshold,
      d.settings.tunnel,
    ]),
    [
      ['127.0.0.2:8080', 'masq', 50, 100, 20, null],
      ['127.0.0.3:80', 'route', 3, 0, 0, null],
      ['127.0.0.4:80', 'tunnel', 1, 0, 0, { type: 'gue', port: 6080, flags: 0 }],
      ['127.0.0.5:80', 'tunnel', 1, 0, 0, { type: 'gre', port: 0, flags: 1 }],
      ['127.0.0.6:80', 'tunnel', 2, 0, 0, { type: 'ipip', port: 0, flags: 0 }],
      ['127.0.0.7:8080', 'masq', 70000, 0, 0, null],
    ],
  );
  t.deepEqual(tcp80?.destinations[0]?.counters, {
    activeConnections: 0,
    inactiveConnections: 0,
    persistentConnections: null,
    stats: {
      connections: 0n,
      inPackets: 0n,
      outPackets: 0n,
      inBytes: 0n,
      outBytes: 0n,
      connectionsPerSecond: null,
      inPacketsPerSecond: null,
      outPacketsPerSecond: null,
      inBytesPerSecond: null,
      outBytesPerSecond: null,
    },
  });
  const settings = (name: string): unknown =>
    states.find((s) => formatIpvsServiceKey(s.service.key) === name)?.service.settings;
  t.deepEqual(settings('tcp 127.0.0.1:443'), { scheduler: 'rr', flags: 1, timeout: 300, netmask: 0xffffff00, persistenceEngine: null });
  t.deepEqual(settings('udp 127.0.0.1:53'), { scheduler: 'sh', flags: 0x18, timeout: 0, netmask: 0xffffffff, persistenceEngine: null });
  t.deepEqual(settings('udp 127.0.0.1:514'), { scheduler: 'rr', flags: 0x4, timeout: 0, netmask: 0xffffffff, persistenceEngine: null });
  t.deepEqual(settings('udp 127.0.0.1:5060'), { scheduler: 'rr', flags: 1, timeout: 10, netmask: 0xffffffff, persistenceEngine: 'sip' });
  t.deepEqual(settings('fwmark 8 ipv6'), { scheduler: 'wlc', flags: 1, timeout: 60, netmask: 128, persistenceEngine: null });
});

test('listings agree with the netlink dumps of the same kernel state', async (t) => {
  const dests = (name: string): Answer => asReplies(capturedReply(name));
  type Answer = ReturnType<typeof asReplies>;
  const peer = new FakeIpvsPeer().expect(
    { family: 'ctrl', cmd: u.CTRL_CMD_GETFAMILY, flags: DO_FLAGS, answer: asReplies(capturedReply('netlink-ctrl-getfamily-ipvs')) },
    { family: 'ipvs', cmd: u.IPVS_CMD.GET_INFO, flags: DO_FLAGS, answer: asReplies(capturedReply('netlink-get-info')) },
    { family: 'ipvs', cmd: u.IPVS_CMD.GET_SERVICE, flags: DUMP_FLAGS, answer: asReplies(capturedReply('netlink-get-service-dump')) },
    ...new Array(9).fill(0).map(() => ({
      family: 'ipvs' as const,
      cmd: u.IPVS_CMD.GET_DEST,
      flags: DUMP_FLAGS,
      answer: (r: { attrs: { service?: { fwmark?: number; af?: number; port?: number; protocol?: number } } }): Answer => {
        const s = r.attrs.service;
        if (s?.fwmark === 7) return dests('netlink-get-dest-dump-fwmark-7');
        if (s?.port === 80 && s.protocol === u.IPPROTO.TCP) {
          return dests(s.af === u.AF.INET6 ? 'netlink-get-dest-dump-tcp6-80' : 'netlink-get-dest-dump-tcp-80');
        }
        return [];
      },
    })),
  );
  const engine = await createIpvsEngine({ driver: 'netlink', socket: createIpvsSocket(peer) });
  const fromNetlink = await engine.observeIpvs();
  const fromIpvsadm = capturedState();
  // Compare what both can see. ipvsadm shows no tunnel details for non-tunnel destinations, no
  // persistent-connection counts and no rates; the SCTP destination and UDP ones were not dumped.
  const view = (states: readonly IpvsServiceState[]): unknown =>
    states.map((s) => ({
      service: formatIpvsServiceKey(s.service.key),
      settings: s.service.settings,
      destinations: s.destinations.map((d) => ({
        key: formatIpvsDestinationKey(d.key),
        ...d.settings,
        tunnel: d.settings.forward === 'tunnel' ? d.settings.tunnel : null,
        active: d.counters.activeConnections,
        inactive: d.counters.inactiveConnections,
        connections: d.counters.stats?.connections,
      })),
    }));
  const dumped = new Set(['tcp 127.0.0.1:80', 'tcp [::1]:80', 'fwmark 7']);
  const withDests = (states: readonly IpvsServiceState[]): IpvsServiceState[] =>
    states.map((s) => (dumped.has(formatIpvsServiceKey(s.service.key)) ? s : { ...s, destinations: [] }));
  t.deepEqual(view(withDests(fromNetlink)), view(withDests(fromIpvsadm)));
  t.deepEqual(peer.mismatches, []);
});

const BAD_LISTINGS: readonly { readonly name: string; readonly text: string; readonly message: RegExp }[] = [
  { name: 'no header', text: 'TCP  127.0.0.1:80 wrr\n', message: /without its "Prot LocalAddress:Port" header/ },
  {
    name: 'destination before any service',
    text: 'Prot LocalAddress:Port Scheduler Flags\n  -> 127.0.0.2:80 Masq 1 0 0\n',
    message: /destination before any service/,
  },
  { name: 'bad line', text: 'Prot LocalAddress:Port Scheduler Flags\nICMP 127.0.0.1:80 rr\n', message: /not a service or destination line/ },
  { name: 'bad address', text: 'Prot LocalAddress:Port Scheduler Flags\nTCP  127.0.0.1 rr\n', message: /is not an address/ },
];

for (const { name, text, message } of BAD_LISTINGS) {
  test(`listing: ${name}`, (t) => {
    t.throws(() => parseIpvsadmListing(text), { instanceOf: MalformedReplyError, message });
  });
}

test('listing: empty output is no services; truncated or odd columns are refused when merged', (t) => {
  t.deepEqual(parseIpvsadmListing(''), { format: 'plain', services: [] });
  const header = 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
  t.deepEqual(mergeIpvsadmListings(parseIpvsadmListing(header), null, null), []);
  const cases: [string, RegExp][] = [
    ['TCP  127.0.0.1:80 wrr\n  -> 127.0.0.2:80 Masq 1 0\n', /expected "Forward Weight ActiveConn InActConn"/],
    ['TCP  127.0.0.1:80 wrr\n  -> 127.0.0.2:80 Gateway 1 0 0\n', /expected "Forward Weight/],
    ['TCP  127.0.0.1:80 wrr\n  -> 127.0.0.2:80 Masq 1K 0 0\n', /"1K" is not a count/],
    ['TCP  127.0.0.1:80\n', /no scheduler/],
  ];
  for (const [body, message] of cases) {
    t.throws(() => mergeIpvsadmListings(parseIpvsadmListing(header + body), null, null), { instanceOf: MalformedReplyError, message });
  }
  // Without --exact, ipvsadm abbreviates large counters.
  const stats = parseIpvsadmListing(
    'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  127.0.0.1:80  1 2 3 4K 5\n',
  );
  t.throws(() => mergeIpvsadmListings(parseIpvsadmListing(`${header}TCP  127.0.0.1:80 wrr\n`), null, stats), {
    message: /"4K" is not a count \(was --exact given\?\)/,
  });
});

// --- the -R script ------------------------------------------------------------------

test('script lines: each edit in ipvsadm -R syntax, matching what ipvsadm -S prints for the same state', (t) => {
  const saved = ipvsFixtureText('ipvsadm-S-n.txt').trim().split('\n');
  const lines: string[] = [];
  for (const state of capturedState()) {
    const s = state.service;
    if (s.settings.flags === 0 && s.settings.persistenceEngine === null) {
      lines.push(ipvsadmScriptLine({ kind: 'add-service', index: 0, service: s.key, settings: s.settings }));
    }
    for (const d of state.destinations) {
      lines.push(
        ipvsadmScriptLine({ kind: 'add-destination', index: 0, service: s.key, destination: d.key, settings: d.settings })
          // -S leaves the thresholds out; the driver always writes them (an edit without them resets them).
          .replace(/ -x \d+ -y \d+/, ''),
      );
    }
  }
  for (const line of lines) t.true(saved.includes(line), line);
  t.is(lines.length, 15);
});

test('script lines: set, remove, IPv6, fwmark, UDP and SCTP', (t) => {
  const [svc6, fwm, sctp] = ['udp [2001:db8::1]:53', 'fwmark 9 ipv6', 'sctp 192.0.2.1:3868'].map(parseIpvsServiceKey);
  const dest = parseIpvsDestinationKey('[2001:db8::2]:5353');
  const settings = { forward: 'masq' as const, weight: 7, upperThreshold: 10, lowerThreshold: 5, tunnel: null };
  const line = (edit: IpvsEdit): string => ipvsadmScriptLine(edit);
  if (svc6 === undefined || fwm === undefined || sctp === undefined) throw new Error('unreachable');
  t.is(
    line({ kind: 'set-destination', index: 0, service: svc6, destination: dest, settings }),
    '-e -u [2001:db8::1]:53 -r [2001:db8::2]:5353 -m -w 7 -x 10 -y 5',
  );
  t.is(line({ kind: 'remove-destination', index: 0, service: svc6, destination: dest }), '-d -u [2001:db8::1]:53 -r [2001:db8::2]:5353');
  t.is(line({ kind: 'remove-service', index: 0, service: fwm }), '-D -f 9 -6');
  t.is(line({ kind: 'remove-service', index: 0, service: sctp }), '-D --sctp-service 192.0.2.1:3868');
  t.throws(
    () =>
      line({
        kind: 'set-destination',
        index: 0,
        service: svc6,
        destination: dest,
        settings: { ...settings, forward: 'local' },
      }),
    { instanceOf: UnsupportedError, message: /ipvsadm cannot write forwarding method "local"; use the netlink driver/ },
  );
});

// --- the driver over a fake runner -------------------------------------------------

interface FakeRun {
  readonly args: readonly string[];
  readonly stdin: string | undefined;
}

/** ipvsadm answering listings from `state()` and recording every call. */
function fakeIpvsadm(listings: () => Record<string, string>, onRestore?: (stdin: string) => IpvsadmResult): {
  runner: IpvsadmRunner;
  runs: FakeRun[];
} {
  const runs: FakeRun[] = [];
  return {
    runs,
    runner: {
      async run(args, stdin) {
        runs.push({ args, stdin });
        if (args[0] === '-R') return onRestore?.(stdin ?? '') ?? { exitCode: 0, stdout: '', stderr: '' };
        const key = args.slice(2).join(' ');
        const text = listings()[key];
        if (text === undefined) return { exitCode: 2, stdout: '', stderr: `${key}: unknown option\n` };
        return { exitCode: 0, stdout: text, stderr: '' };
      },
    },
  };
}

const CAPTURED_LISTINGS = (): Record<string, string> => ({
  '': ipvsFixtureText('ipvsadm-Ln-exact.txt'),
  '--tun-info': ipvsFixtureText('ipvsadm-Ln-exact-tun-info.txt'),
  '--thresholds': ipvsFixtureText('ipvsadm-Ln-exact-thresholds.txt'),
  '--stats': ipvsFixtureText('ipvsadm-Ln-exact-stats.txt'),
});

test('driver: all edits of one apply go through one ipvsadm -R, forwarding method, thresholds and tunnel kept', async (t) => {
  const { runner, runs } = fakeIpvsadm(CAPTURED_LISTINGS);
  const engine = await createIpvsEngine({ driver: 'ipvsadm', ipvsadm: { runner } });
  t.is(engine.driver, 'ipvsadm');
  const probe = runs.length;
  await engine.apply([
    { op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.2:8080', weight: 9 },
    { op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.3:80', weight: 3 }, // unchanged: left out
    { op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.4:80', weight: 8, maxConnections: 40 },
    { op: 'set-weight', service: 'tcp [::1]:80', destination: '[::2]:8080', weight: 1 },
    { op: 'add-destination', service: 'tcp 127.0.0.1:443', destination: '192.0.2.5:443', weight: 2 },
  ]);
  const calls = runs.slice(probe);
  t.deepEqual(
    calls.map((r) => r.args.join(' ')),
    ['-Ln --exact --tun-info', '-Ln --exact --thresholds', '-R'],
  );
  t.is(
    calls[2]?.stdin,
    [
      '-e -t 127.0.0.1:80 -r 127.0.0.2:8080 -m -w 9 -x 100 -y 20',
      '-e -t 127.0.0.1:80 -r 127.0.0.4:80 -i -w 8 -x 40 -y 0 --tun-type gue --tun-port 6080 --tun-nocsum',
      '-e -t [::1]:80 -r [::2]:8080 -m -w 1 -x 0 -y 0',
      '-a -t 127.0.0.1:443 -r 192.0.2.5:443 -m -w 2 -x 0 -y 0',
      '',
    ].join('\n'),
  );
  const before = runs.length;
  await engine.apply([{ op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.3:80', weight: 3 }]);
  t.false(runs.slice(before).some((r) => r.args[0] === '-R'), 'nothing to change: no ipvsadm -R');
});

test('driver: observe() through ipvsadm gives the same Engine view as the listings say', async (t) => {
  const { runner } = fakeIpvsadm(CAPTURED_LISTINGS);
  const engine = await createIpvsEngine({ driver: 'ipvsadm', ipvsadm: { runner } });
  const observed = await engine.observe();
  t.is(observed.services.length, 9);
  t.deepEqual(observed.services[0]?.destinations[0], {
    address: '127.0.0.2:8080',
    weight: 50,
    activeConnections: 0,
    inactiveConnections: 0,
    totalConnections: 0,
    maxConnections: 100,
    up: true,
  });
});

test('driver: an ipvsadm without --tun-info falls back to the plain listing', async (t) => {
  const { runner, runs } = fakeIpvsadm(() => {
    const listings = CAPTURED_LISTINGS();
    delete listings['--tun-info'];
    return listings;
  });
  const engine = await createIpvsEngine({ driver: 'ipvsadm', ipvsadm: { runner } });
  const states = await engine.observeIpvs();
  t.is(states[0]?.destinations[2]?.settings.tunnel, null);
  t.is(states[0]?.destinations[2]?.settings.forward, 'tunnel');
  const before = runs.length;
  await engine.observe();
  t.false(runs.slice(before).some((r) => r.args.includes('--tun-info')), 'asked once, remembered');
});

test('driver: ipvsadm -R goes on after a failing line and exits 0: the state read back names the edit that failed', async (t) => {
  // The kernel lost 127.0.0.3 between the read and the write: that line fails, the others apply.
  let listings = CAPTURED_LISTINGS();
  const afterRestore = (): Record<string, string> => {
    const edit = (text: string): string =>
      text.replace(/(127\.0\.0\.2:8080\s+Masq\s+(n\/a\s+)?)50/, '$19').replace(/.*127\.0\.0\.3:80 .*\n/, '');
    return Object.fromEntries(Object.entries(CAPTURED_LISTINGS()).map(([k, v]) => [k, edit(v)]));
  };
  const { runner } = fakeIpvsadm(
    () => listings,
    () => {
      listings = afterRestore();
      return { exitCode: 0, stdout: '', stderr: 'No such destination\n' };
    },
  );
  const engine = await createIpvsEngine({ driver: 'ipvsadm', ipvsadm: { runner } });
  await t.throwsAsync(
    engine.apply([
      { op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.2:8080', weight: 9 },
      { op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.3:80', weight: 7 },
    ]),
    { instanceOf: UnknownTargetError, message: /set-destination "tcp 127\.0\.0\.1:80" "127\.0\.0\.3:80".*ipvsadm said "No such destination"/ },
  );
});

test('driver: stderr with every edit in place is not an error; a non-zero exit is', async (t) => {
  const applied = (): Record<string, string> =>
    Object.fromEntries(
      Object.entries(CAPTURED_LISTINGS()).map(([k, v]) => [k, v.replace(/(127\.0\.0\.3:80\s+Route\s+(n\/a\s+)?)3/, '$17')]),
    );
  const ops = [{ op: 'set-weight' as const, service: 'tcp 127.0.0.1:80', destination: '127.0.0.3:80', weight: 7 }];
  for (const exitCode of [0, 1]) {
    let listings = CAPTURED_LISTINGS();
    const { runner } = fakeIpvsadm(
      () => listings,
      () => {
        listings = applied();
        return { exitCode, stdout: '', stderr: 'some warning\n' };
      },
    );
    const engine = await createIpvsEngine({ driver: 'ipvsadm', ipvsadm: { runner } });
    if (exitCode === 0) await t.notThrowsAsync(engine.apply(ops));
    else await t.throwsAsync(engine.apply(ops), { instanceOf: CommandFailedError, message: /exited with 1: some warning/ });
  }
  const plan = planIpvsEdits(compileIpvsSteps(ops), capturedState(), { scheduler: 'wlc', forward: 'masq' });
  t.is(firstMissingIpvsEdit(plan.edits, capturedState()), plan.edits[0] ?? null, 'not in the state before');
  t.is(firstMissingIpvsEdit([], capturedState()), null);
});

test('driver: ipvsadm words become typed errors', async (t) => {
  const cases: [string, (e: unknown) => boolean][] = [
    ['Service not defined', (e) => e instanceof UnknownTargetError],
    ['No such service', (e) => e instanceof UnknownTargetError],
    ['Destination already exists', (e) => e instanceof ConflictError],
    ['Service already exists', (e) => e instanceof ConflictError],
    ['Scheduler or persistence engine not found', (e) => e instanceof UnsupportedError],
    ['Permission denied (you must be root)', (e) => e instanceof EnginePermissionError],
    ['Numerical result out of range', (e) => e instanceof CommandFailedError],
  ];
  for (const [stderr, check] of cases) {
    let listings = { ...CAPTURED_LISTINGS(), '--tun-info': ipvsFixtureText('ipvsadm-Ln-exact-tun-info.txt') };
    const { runner } = fakeIpvsadm(
      () => listings,
      () => {
        listings = { ...listings };
        return { exitCode: 0, stdout: '', stderr: `${stderr}\n` };
      },
    );
    const engine = await createIpvsEngine({ driver: 'ipvsadm', ipvsadm: { runner } });
    const error = await engine
      .apply([{ op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.2:8080', weight: 9 }])
      .then(() => null, (e: unknown) => e);
    t.true(check(error), `${stderr}: ${String(error)}`);
  }
});

const HOST_FIXTURES = fileURLToPath(new URL('../../fixtures/ipvs/6.18.44-fc-v782/', import.meta.url));

test('driver: a kernel without IPVS (ipvsadm\'s own words, captured on such a host) is the one clear error', async (t) => {
  const stderr = readFileSync(path.join(HOST_FIXTURES, 'ipvsadm-Ln.stderr.txt'), 'utf8');
  const exitCode = Number(readFileSync(path.join(HOST_FIXTURES, 'ipvsadm-Ln.status.txt'), 'utf8'));
  const runner: IpvsadmRunner = { run: async () => ({ exitCode, stdout: '', stderr }) };
  const error = await t.throwsAsync(createIpvsEngine({ driver: 'ipvsadm', ipvsadm: { runner } }), {
    instanceOf: EngineUnavailableError,
  });
  t.true(error?.message.startsWith(IPVS_UNAVAILABLE_MESSAGE));
  t.regex(error?.message ?? '', /Can't initialize ipvs: Protocol not available/);
});

test('driver: adding what exists already looks "in place" afterwards; ipvsadm\'s words still make it a conflict', async (t) => {
  const { runner } = fakeIpvsadm(CAPTURED_LISTINGS, () => ({ exitCode: 255, stdout: '', stderr: 'Service already exists\n' }));
  const engine = await createIpvsEngine({ driver: 'ipvsadm', ipvsadm: { runner } });
  // The engine's own check would refuse this before ipvsadm runs; go to the driver's write as a race would.
  const backend = createIpvsadmBackend({ runner });
  const service = parseIpvsServiceKey('tcp 127.0.0.1:80');
  await t.throwsAsync(
    backend.write([
      { kind: 'add-service', index: 0, service, settings: { scheduler: 'wrr', flags: 0, timeout: 0, netmask: 0xffffffff, persistenceEngine: null } },
    ]),
    { instanceOf: ConflictError, message: /add-service "tcp 127\.0\.0\.1:80".*Service already exists/ },
  );
  await engine.close();
});

test('listing: tunnel flags nocsum, csum and remcsum (-c, +c, r+c)', (t) => {
  const text = [
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn',
    'TCP  127.0.0.1:80 wlc',
    '  -> 127.0.0.2:80                 Tunnel  gue:6080:-c   1      0          0',
    '  -> 127.0.0.3:80                 Tunnel  gue:6081:r+c  1      0          0',
    '  -> 127.0.0.4:80                 Tunnel  gre:+c        1      0          0',
    '  -> 127.0.0.5:80                 Tunnel  ipip          1      0          0',
    '',
  ].join('\n');
  const [state] = mergeIpvsadmListings(parseIpvsadmListing(text), null, null);
  t.deepEqual(
    state?.destinations.map((d) => d.settings.tunnel),
    [
      { type: 'gue', port: 6080, flags: 0 },
      { type: 'gue', port: 6081, flags: 2 },
      { type: 'gre', port: 0, flags: 1 },
      { type: 'ipip', port: 0, flags: 0 },
    ],
  );
  t.throws(() => mergeIpvsadmListings(parseIpvsadmListing(text.replace('gre:+c', 'vxlan:+c')), null, null), {
    instanceOf: MalformedReplyError,
    message: /unknown tunnel info "vxlan:\+c"/,
  });
});
