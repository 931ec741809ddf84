// The Engine contract (engine-contract.ts) against real IPVS, through both
// drivers. IPVS is one table per kernel, so each test starts from a flushed
// table and the tests run serially (ava --serial in the guest).
import { createIpvsEngine } from '@loadfeed/kernel-bridge';
import { contractSuite, startWithOps } from './engine-contract.js';
import { flushIpvs, guestOnly } from './ipvs-guest.js';

guestOnly('ipvs: engine contract, netlink and ipvsadm drivers', () => {
  for (const driver of ['netlink', 'ipvsadm'] as const) {
    const start = startWithOps(() => createIpvsEngine({ driver }));
    contractSuite({
      name: `ipvs (${driver})`,
      managesServices: true,
      start: async (t, services) => {
        await flushIpvs();
        return start(t, services);
      },
      addresses: {
        // observe() sorts like ipvsadm: these are listed in the order the suite expects.
        services: ['tcp 127.0.1.1:80', 'tcp 127.0.1.1:443'],
        unknownService: 'tcp 127.0.1.99:80',
        destinations: ['127.0.1.21:8080', '127.0.1.22:8080'],
        unknownDestination: '127.0.1.99:8080',
      },
    });
  }
});
