import test from 'ava';
import type { Observation } from '@loadfeed/kernel-bridge';
import { plan } from '@loadfeed/poller';

const observed = (maxConnections: number | null): Observation => ({
  services: [
    {
      address: 'b',
      scheduler: 'roundrobin',
      destinations: [{ address: 's1', weight: 10, activeConnections: 3, inactiveConnections: null, totalConnections: null, maxConnections, up: true }],
    },
  ],
});

test('a connection limit is written with the weight, only when it changes', (t) => {
  const want = (weight: number, maxConnections?: number) => [
    { address: 'b', scheduler: null, owned: false, destinations: [{ address: 's1', weight, ...(maxConnections === undefined ? {} : { maxConnections }) }] },
  ];
  t.deepEqual(plan(want(10, 50), observed(0)), [{ op: 'set-weight', service: 'b', destination: 's1', weight: 10, maxConnections: 50 }]);
  t.deepEqual(plan(want(10, 50), observed(50)), []);
  t.deepEqual(plan(want(12, 50), observed(50)), [{ op: 'set-weight', service: 'b', destination: 's1', weight: 12 }]);
  t.deepEqual(plan(want(10), observed(50)), [], 'no limit in the policy: the engine keeps its own');
  t.deepEqual(plan(want(10, 0), observed(50)), [{ op: 'set-weight', service: 'b', destination: 's1', weight: 10, maxConnections: 0 }]);
});
