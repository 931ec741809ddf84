// The IPVS engine against the real kernel, through both drivers, each result
// checked against ipvsadm's own listing (read by ipvs-guest.ts, not by the
// driver's parser). Runs inside the QEMU guest (ipvs-vm.test.ts boots it),
// serially: IPVS is one table per kernel. Addresses stay on 127.0.0.0/8 and
// ::1; the guest has no network card.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import {
  CommandFailedError,
  ConflictError,
  EngineUnavailableError,
  IPVS_UNAVAILABLE_MESSAGE,
  NetlinkErrnoError,
  UnknownTargetError,
  UnsupportedError,
  createIpvsadmBackend,
  createIpvsadmRunner,
  createIpvsEngine,
  createNetlinkBackend,
  openIpvsSocket,
  parseIpvsDestinationKey,
  parseIpvsServiceKey,
  type EngineOp,
  type IpvsBackend,
  type IpvsadmRunner,
  type IpvsDestinationSettings,
  type IpvsEdit,
  type IpvsEngine,
} from '@loadfeed/kernel-bridge';
import { flushIpvs, guestOnly, ipvsadm, listedThresholds, listedWeights } from './ipvs-guest.js';

const DRIVERS = ['netlink', 'ipvsadm'] as const;
type Driver = (typeof DRIVERS)[number];
const serial = test.serial;

/** ipvsadm's service line → the engine's service address. */
function engineName(line: string): string {
  const fwm = /^FWM (\d+)( IPv6)?/.exec(line);
  if (fwm) return `fwmark ${fwm[1]}${fwm[2] === undefined ? '' : ' ipv6'}`;
  const m = /^(TCP|UDP|SCTP) (\S+)/.exec(line);
  return m?.[1] === undefined ? line : `${m[1].toLowerCase()} ${canonical(m[2] ?? '')}`;
}

/**
 * An address as ipvsadm prints it, in RFC 5952 spelling (ipvsadm's inet_ntop
 * writes ::1:2 as ::0.1.0.2); the URL parser does it, independently of the bridge.
 */
function canonical(hostPort: string): string {
  const m = /^\[(.*)\]:(\d+)$/.exec(hostPort);
  return m === null ? hostPort : `${new URL(`http://[${m[1] ?? ''}]/`).hostname}:${m[2] ?? ''}`;
}

/** What ipvsadm -Ln lists, as {service: {destination: weight}} in the engine's names. */
function listed(): Record<string, Record<string, number>> {
  return Object.fromEntries(
    Object.entries(listedWeights()).map(([line, dests]) => [
      engineName(line),
      Object.fromEntries(Object.entries(dests).map(([d, x]) => [canonical(d), x.weight])),
    ]),
  );
}

async function observed(engine: IpvsEngine): Promise<Record<string, Record<string, number>>> {
  return Object.fromEntries(
    (await engine.observe()).services.map((s) => [s.address, Object.fromEntries(s.destinations.map((d) => [d.address, d.weight]))]),
  );
}

/** ipvsadm -R with these lines: one process sets up a test's starting state. */
function restore(lines: readonly string[]): void {
  const result = spawnSync('ipvsadm', ['-R'], { input: `${lines.join('\n')}\n`, encoding: 'utf8' });
  if (result.status !== 0 || result.stderr !== '') throw new Error(`ipvsadm -R: ${result.stderr}`);
}

function countingRunner(): { runner: IpvsadmRunner; calls: string[] } {
  const real = createIpvsadmRunner();
  const calls: string[] = [];
  return {
    calls,
    runner: {
      run: (args, stdin) => {
        calls.push(args.join(' '));
        return real.run(args, stdin);
      },
    },
  };
}

async function engineFor(t: { teardown(f: () => Promise<void>): void }, driver: Driver, runner?: IpvsadmRunner): Promise<IpvsEngine> {
  const engine = await createIpvsEngine({ driver, ...(runner === undefined ? {} : { ipvsadm: { runner } }) });
  t.teardown(() => engine.close());
  return engine;
}

guestOnly('ipvs: real kernel, both drivers, checked against ipvsadm -Ln', () => {
  for (const driver of DRIVERS) {
    serial(`${driver}: observe() agrees with ipvsadm -Ln on services of every kind made by ipvsadm`, async (t) => {
      await flushIpvs();
      restore([
        '-A -t 127.0.2.1:80 -s wrr',
        '-a -t 127.0.2.1:80 -r 127.0.2.2:8080 -m -w 5',
        '-a -t 127.0.2.1:80 -r 127.0.2.3:80 -g -w 6',
        '-a -t 127.0.2.1:80 -r 127.0.2.4:80 -i -w 7 --tun-type gue --tun-port 6080 --tun-nocsum',
        '-A -u [::1]:53 -s rr',
        '-a -u [::1]:53 -r [::2]:5353 -m -w 8',
        '-A --sctp-service 127.0.2.1:3868 -s lc',
        '-a --sctp-service 127.0.2.1:3868 -r 127.0.2.2:3868 -m -w 9',
        '-A -f 7 -s wlc',
        '-a -f 7 -r 127.0.2.9 -g -w 10',
        '-A -f 8 -6 -s wlc -p 60',
      ]);
      const engine = await engineFor(t, driver);
      t.deepEqual(await observed(engine), listed());
      t.is(Object.keys(listed()).length, 5);
      const forwards = Object.fromEntries(
        (await engine.observeIpvs()).flatMap((s) => s.destinations.map((d) => [`${d.key.address}:${d.key.port}`, d.settings.forward])),
      );
      t.deepEqual(forwards, {
        '127.0.2.2:8080': 'masq',
        '127.0.2.3:80': 'route',
        '127.0.2.4:80': 'tunnel',
        '::2:5353': 'masq',
        '127.0.2.2:3868': 'masq',
        '127.0.2.9:0': 'route',
      });
    });

    serial(`${driver}: 200 weight changes in one apply() land, checked with ipvsadm -Ln`, async (t) => {
      await flushIpvs();
      const dests = Array.from({ length: 200 }, (_, i) => `10.1.${Math.floor(i / 100)}.${(i % 100) + 1}:8080`);
      restore(['-A -t 127.0.3.1:80 -s wrr', ...dests.map((d) => `-a -t 127.0.3.1:80 -r ${d} -m -w 1`)]);
      const { runner, calls } = countingRunner();
      const engine = await engineFor(t, driver, runner);
      const ops: EngineOp[] = dests.map((d, i) => ({ op: 'set-weight', service: 'tcp 127.0.3.1:80', destination: d, weight: 1000 + i }));
      const before = calls.length;
      await engine.apply(ops);
      const expected = Object.fromEntries(dests.map((d, i) => [d, 1000 + i]));
      t.deepEqual(listed(), { 'tcp 127.0.3.1:80': expected });
      t.deepEqual(await observed(engine), { 'tcp 127.0.3.1:80': expected });
      if (driver === 'ipvsadm') {
        t.deepEqual(calls.slice(before).filter((c) => !c.startsWith('-Ln')), ['-R'], 'one ipvsadm -R for the whole batch');
      }
    });

    serial(`${driver}: a weight change keeps the forwarding method, thresholds and tunnel settings`, async (t) => {
      await flushIpvs();
      restore([
        '-A -t 127.0.4.1:80 -s wlc',
        '-a -t 127.0.4.1:80 -r 127.0.4.2:80 -g -w 1 -x 50 -y 10',
        '-a -t 127.0.4.1:80 -r 127.0.4.3:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum',
        '-a -t 127.0.4.1:80 -r 127.0.4.4:80 -i -w 1 --tun-type gre --tun-csum -x 9',
        '-a -t 127.0.4.1:80 -r 127.0.4.5:8080 -m -w 1 -x 100 -y 20',
      ]);
      const before = listedWeights(true);
      const thresholds = listedThresholds();
      const engine = await engineFor(t, driver);
      await engine.apply(
        ['127.0.4.2:80', '127.0.4.3:80', '127.0.4.4:80', '127.0.4.5:8080'].map((d, i) => ({
          op: 'set-weight' as const,
          service: 'tcp 127.0.4.1:80',
          destination: d,
          weight: 20 + i,
        })),
      );
      const after = listedWeights(true);
      const [line] = Object.keys(before);
      if (line === undefined) throw new Error('no service listed');
      t.deepEqual(
        Object.fromEntries(Object.entries(after[line] ?? {}).map(([d, x]) => [d, [x.forward, x.tunnel]])),
        Object.fromEntries(Object.entries(before[line] ?? {}).map(([d, x]) => [d, [x.forward, x.tunnel]])),
      );
      t.deepEqual(
        Object.values(after[line] ?? {}).map((x) => x.weight),
        [20, 21, 22, 23],
      );
      t.deepEqual(listedThresholds(), thresholds);
      t.deepEqual(thresholds, { '127.0.4.2:80': [50, 10], '127.0.4.3:80': [0, 0], '127.0.4.4:80': [9, 0], '127.0.4.5:8080': [100, 20] });
    });

    serial(`${driver}: maxConnections is the upper threshold; a lower threshold above it is reset`, async (t) => {
      await flushIpvs();
      restore(['-A -t 127.0.5.1:80 -s wlc', '-a -t 127.0.5.1:80 -r 127.0.5.2:80 -g -w 1 -x 50 -y 40']);
      const engine = await engineFor(t, driver);
      const set = (maxConnections: number): EngineOp => ({
        op: 'set-weight',
        service: 'tcp 127.0.5.1:80',
        destination: '127.0.5.2:80',
        weight: 3,
        maxConnections,
      });
      await engine.apply([set(30)]);
      t.deepEqual(listedThresholds(), { '127.0.5.2:80': [30, 0] });
      t.is((await engine.observe()).services[0]?.destinations[0]?.maxConnections, 30);
      await engine.apply([set(0)]);
      t.deepEqual(listedThresholds(), { '127.0.5.2:80': [0, 0] });
      t.is((await engine.observe()).services[0]?.destinations[0]?.maxConnections, 0);
    });

    serial(`${driver}: add and remove services and destinations of every kind`, async (t) => {
      await flushIpvs();
      const engine = await engineFor(t, driver);
      await engine.apply([
        { op: 'add-service', service: { address: 'tcp 127.0.6.1:80', scheduler: 'sh' } },
        { op: 'add-destination', service: 'tcp 127.0.6.1:80', destination: '127.0.6.2:8080', weight: 1 },
        { op: 'add-destination', service: 'tcp 127.0.6.1:80', destination: '127.0.6.3:8080', weight: 0 },
        { op: 'add-service', service: { address: 'udp [::1]:5353' } },
        { op: 'add-destination', service: 'udp [::1]:5353', destination: '[::1:2]:53', weight: 4 },
        { op: 'add-service', service: { address: 'sctp 127.0.6.1:3868', scheduler: 'rr' } },
        { op: 'add-service', service: { address: 'fwmark 11 ipv6' } },
        { op: 'add-destination', service: 'fwmark 11 ipv6', destination: '[::1:3]:0', weight: 5 },
      ]);
      const all = {
        'tcp 127.0.6.1:80': { '127.0.6.2:8080': 1, '127.0.6.3:8080': 0 },
        'udp [::1]:5353': { '[::1:2]:53': 4 },
        'sctp 127.0.6.1:3868': {},
        'fwmark 11 ipv6': { '[::1:3]:0': 5 },
      };
      t.deepEqual(listed(), all);
      t.deepEqual(await observed(engine), all);
      t.true(Object.keys(listedWeights()).includes('TCP 127.0.6.1:80 sh'), 'the scheduler module was loaded on demand');
      await engine.apply([
        { op: 'remove-destination', service: 'tcp 127.0.6.1:80', destination: '127.0.6.3:8080' },
        { op: 'remove-service', service: 'udp [::1]:5353' },
        { op: 'remove-service', service: 'sctp 127.0.6.1:3868' },
      ]);
      const left = { 'tcp 127.0.6.1:80': { '127.0.6.2:8080': 1 }, 'fwmark 11 ipv6': { '[::1:3]:0': 5 } };
      t.deepEqual(listed(), left);
      t.deepEqual(await observed(engine), left);
      await t.throwsAsync(engine.apply([{ op: 'add-service', service: { address: 'tcp 127.0.6.9:80', scheduler: 'nosuch' } }]), {
        instanceOf: UnsupportedError,
      });
      t.deepEqual(listed(), left);
    });

    serial(`${driver}: what the kernel refuses comes back as typed errors`, async (t) => {
      await flushIpvs();
      restore(['-A -t 127.0.7.1:80 -s wlc', '-a -t 127.0.7.1:80 -r 127.0.7.2:80 -g -w 1']);
      // Straight to the driver, past the engine's own checks, so the kernel is the one saying no.
      const backend: IpvsBackend =
        driver === 'netlink' ? createNetlinkBackend(await openIpvsSocket()) : createIpvsadmBackend();
      t.teardown(() => backend.close());
      const service = parseIpvsServiceKey('tcp 127.0.7.1:80');
      const settings: IpvsDestinationSettings = { forward: 'route', weight: 2, upperThreshold: 0, lowerThreshold: 0, tunnel: null };
      const dest = (text: string): ReturnType<typeof parseIpvsDestinationKey> => parseIpvsDestinationKey(text);
      const cases: [string, IpvsEdit, (e: unknown) => boolean][] = [
        [
          'missing destination',
          { kind: 'set-destination', index: 0, service, destination: dest('127.0.7.99:80'), settings },
          (e) => e instanceof UnknownTargetError,
        ],
        [
          'missing service',
          { kind: 'set-destination', index: 0, service: parseIpvsServiceKey('tcp 127.0.7.1:81'), destination: dest('127.0.7.2:81'), settings },
          (e) => e instanceof UnknownTargetError,
        ],
        [
          'destination exists',
          { kind: 'add-destination', index: 0, service, destination: dest('127.0.7.2:80'), settings },
          (e) => e instanceof ConflictError,
        ],
        [
          'service exists',
          { kind: 'add-service', index: 0, service, settings: { scheduler: 'wlc', flags: 0, timeout: 0, netmask: 0xffffffff, persistenceEngine: null } },
          (e) => e instanceof ConflictError,
        ],
        [
          'lower threshold above the upper',
          {
            kind: 'set-destination',
            index: 0,
            service,
            destination: dest('127.0.7.2:80'),
            settings: { ...settings, upperThreshold: 1, lowerThreshold: 5 },
          },
          (e) =>
            driver === 'netlink'
              ? e instanceof NetlinkErrnoError && e.errnoName === 'ERANGE'
              : e instanceof CommandFailedError && /Numerical result out of range/.test(e.message),
        ],
      ];
      for (const [what, edit, check] of cases) {
        const error = await backend.write([edit]).then(
          () => null,
          (e: unknown) => e,
        );
        t.true(check(error), `${what}: ${String(error)}`);
      }
      t.deepEqual(listed(), { 'tcp 127.0.7.1:80': { '127.0.7.2:80': 1 } }, 'nothing changed');
    });
  }

  serial('both drivers: connections through IPVS show in the counters', async (t) => {
    await flushIpvs();
    const server = createServer((socket) => socket.on('data', () => {}));
    await new Promise<void>((resolve) => server.listen(0, '127.0.8.2', resolve));
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    restore(['-A -t 127.0.8.1:80 -s rr', `-a -t 127.0.8.1:80 -r 127.0.8.2:${port} -m -w 1`]);
    const client: Socket = connect(80, '127.0.8.1');
    t.teardown(() => {
      client.destroy();
    });
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    for (const driver of DRIVERS) {
      const engine = await engineFor(t, driver);
      const [destination] = (await engine.observe()).services[0]?.destinations ?? [];
      t.is(destination?.activeConnections, 1, driver);
    }
    client.destroy();
    // The kernel's estimator folds the per-CPU counters in every 2 s: wait for it, 10 s at most.
    const engine = await engineFor(t, 'netlink');
    let total: number | null | undefined = 0;
    for (const deadline = performance.now() + 10_000; total === 0 && performance.now() < deadline; ) {
      total = (await engine.observe()).services[0]?.destinations[0]?.totalConnections;
      if (total === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    t.is(total, 1, 'one connection scheduled in total');
    const viaIpvsadm = await engineFor(t, 'ipvsadm');
    t.is((await viaIpvsadm.observe()).services[0]?.destinations[0]?.totalConnections, 1);
  });

  serial('both drivers: without CAP_NET_ADMIN the error says so', async (t) => {
    await flushIpvs();
    const script = `
      import { createIpvsEngine } from '@loadfeed/kernel-bridge';
      const out = {};
      for (const driver of ['netlink', 'ipvsadm', 'auto']) {
        try { await createIpvsEngine({ driver }); out[driver] = 'opened'; }
        catch (error) { out[driver] = [error.name, error.code, error.message]; }
      }
      console.log(JSON.stringify(out));`;
    const result = spawnSync(
      'setpriv',
      ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script],
      { encoding: 'utf8' },
    );
    t.is(result.status, 0, result.stderr);
    const out = JSON.parse(result.stdout) as Record<string, [string, string, string]>;
    for (const driver of ['netlink', 'ipvsadm', 'auto']) {
      t.is(out[driver]?.[0], 'EnginePermissionError', `${driver}: ${JSON.stringify(out[driver])}`);
      t.is(out[driver]?.[1], 'BRIDGE_PERMISSION_DENIED');
      t.regex(out[driver]?.[2] ?? '', /CAP_NET_ADMIN/);
    }
  });

  // Last: it unloads IPVS. The kernel loads ip_vs by itself when the IPVS
  // family is looked up, so the module is made impossible to load instead.
  serial('both drivers: IPVS that cannot be loaded is one clear error', async (t) => {
    await flushIpvs();
    const modprobe = '/proc/sys/kernel/modprobe';
    const helper = readFileSync(modprobe, 'utf8').trim();
    t.teardown(() => {
      writeFileSync(modprobe, helper);
      spawnSync('busybox', ['modprobe', 'ip_vs']);
    });
    writeFileSync(modprobe, '/bin/false');
    const loaded = readFileSync('/proc/modules', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((m) => m.startsWith('ip_vs_'));
    const rmmod = spawnSync('busybox', ['rmmod', ...loaded, 'ip_vs'], { encoding: 'utf8' });
    t.is(rmmod.status, 0, rmmod.stderr);
    await t.throwsAsync(createIpvsEngine({ driver: 'netlink' }), { instanceOf: EngineUnavailableError, message: IPVS_UNAVAILABLE_MESSAGE });
    const viaIpvsadm = await t.throwsAsync(createIpvsEngine({ driver: 'ipvsadm' }), { instanceOf: EngineUnavailableError });
    t.true(viaIpvsadm?.message.startsWith(IPVS_UNAVAILABLE_MESSAGE), viaIpvsadm?.message);
    const auto = await t.throwsAsync(createIpvsEngine(), { instanceOf: EngineUnavailableError });
    t.regex(auto?.message ?? '', /^IPVS is not available in this kernel: .*\(netlink: .*; ipvsadm: .*\)$/);
    // And back: the next look loads it again.
    writeFileSync(modprobe, helper);
    const engine = await createIpvsEngine({ driver: 'netlink' });
    t.deepEqual(await engine.observe(), { services: [] });
    await engine.close();
    t.truthy(ipvsadm('-Ln'));
  });
});
