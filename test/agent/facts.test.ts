import test from 'ava';
import os from 'node:os';
import { collectFacts, hostAddresses } from '@loadfeed/agent';

test('collectFacts: hostname, CPU model and cores from systeminformation, non-internal addresses', async (t) => {
  const facts = await collectFacts(() => Promise.resolve({ manufacturer: 'AMD', brand: 'EPYC', cores: 64 }));
  t.is(facts.hostname, os.hostname());
  t.is(facts.cpuModel, 'AMD EPYC');
  t.is(facts.cores, 64);
  t.deepEqual(facts.addresses, hostAddresses(os.networkInterfaces()));
});

test('collectFacts falls back to os.cpus() when systeminformation fails', async (t) => {
  const facts = await collectFacts(() => Promise.reject(new Error('lscpu: not found')));
  t.is(facts.cores, os.cpus().length);
  t.is(facts.cpuModel, os.cpus()[0]?.model.trim() ?? '');
});

test('collectFacts with the real systeminformation on this host', async (t) => {
  const facts = await collectFacts();
  t.true(facts.cores >= 1);
  t.is(typeof facts.cpuModel, 'string');
});

test('hostAddresses drops loopback and IPv6 link-local, keeps the rest once', (t) => {
  const info = (address: string, family: 'IPv4' | 'IPv6', internal = false): os.NetworkInterfaceInfo =>
    (family === 'IPv4'
      ? { address, family, internal, netmask: '255.0.0.0', mac: '00:00:00:00:00:00', cidr: null }
      : { address, family, internal, netmask: 'ffff::', mac: '00:00:00:00:00:00', cidr: null, scopeid: 0 }) as os.NetworkInterfaceInfo;
  t.deepEqual(
    hostAddresses({
      lo: [info('127.0.0.1', 'IPv4', true), info('::1', 'IPv6', true)],
      eth0: [info('10.0.0.5', 'IPv4'), info('fe80::1', 'IPv6'), info('2001:db8::5', 'IPv6')],
      eth1: [info('10.0.0.5', 'IPv4')],
    }),
    ['10.0.0.5', '2001:db8::5'],
  );
});
