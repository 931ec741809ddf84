// The Engine contract (engine-contract.ts) against the engines that need
// nothing from the host: memory and the fast path. Real engines run the same
// suite from their own `<engine>-contract.test.ts`, gated by prerequisites.
import { createFastpathEngine, createMemoryEngine } from '@loadfeed/kernel-bridge';
import { contractSuite, startWithOps } from './engine-contract.js';

contractSuite({
  name: 'memory',
  managesServices: true,
  start: startWithOps(() => createMemoryEngine()),
  addresses: {
    services: ['tcp 192.0.2.10:80', 'tcp 192.0.2.10:443'],
    unknownService: 'tcp 192.0.2.99:80',
    destinations: ['192.0.2.21:8080', '[2001:db8::22]:8080'],
    unknownDestination: '192.0.2.99:8080',
  },
});

contractSuite({
  // Port 0 listeners on loopback; destinations are never connected to here.
  name: 'fastpath',
  managesServices: true,
  start: startWithOps(() => createFastpathEngine()),
  addresses: {
    services: ['tcp 127.0.0.1:0', 'tcp 127.0.0.2:0'],
    unknownService: 'tcp 127.0.0.3:0',
    destinations: ['127.0.0.1:1', '[::1]:2'],
    unknownDestination: '127.0.0.1:3',
  },
});
