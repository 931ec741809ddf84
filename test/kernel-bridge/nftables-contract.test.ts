// The Engine contract against the nftables engine: each test gets a network
// namespace of its own, where the engine runs nft. Needs root, iproute2,
// nftables and a kernel with nf_tables and network namespaces.
import { createNftablesEngine } from '@loadfeed/kernel-bridge';
import { createLab } from '../helpers/netns.js';
import { contractSuite, startWithOps } from './engine-contract.js';
import { NFT, nftablesGate } from './nftables-fixture.js';

contractSuite({
  name: 'nftables',
  gate: nftablesGate,
  managesServices: true,
  async start(t, services) {
    const lab = createLab(t);
    const ns = await lab.namespace('contract');
    return startWithOps(() => createNftablesEngine({ command: [...lab.prefixFor(ns), NFT] }))(t, services);
  },
  addresses: {
    services: ['tcp 192.0.2.10:80', 'udp 192.0.2.10:443'],
    unknownService: 'tcp 192.0.2.99:80',
    destinations: ['192.0.2.21:8080', '192.0.2.22:8080'],
    unknownDestination: '192.0.2.99:8080',
  },
});
