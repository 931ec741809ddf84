// The Engine contract against Debian's haproxy: each test starts its own
// haproxy whose haproxy.cfg declares the services as empty backends
// (`balance roundrobin`, so servers can be added at runtime); destinations are
// dynamic servers named after their address. Needs the haproxy binary, not root.
import { createHaproxyEngine } from '@loadfeed/kernel-bridge';
import { contractSuite } from './engine-contract.js';
import { haproxyGate, startHaproxy } from './haproxy-fixture.js';

contractSuite({
  name: 'haproxy',
  gate: haproxyGate,
  managesServices: false,
  async start(t, services) {
    const haproxy = await startHaproxy(t, { backends: services.map((name) => ({ name })) });
    return createHaproxyEngine({ socket: haproxy.adminSocket });
  },
  addresses: {
    services: ['b1', 'b2'],
    unknownService: 'nope',
    destinations: ['127.0.0.1:1', '127.0.0.2:2'],
    unknownDestination: '127.0.0.1:3',
  },
});
