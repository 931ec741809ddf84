import test from 'ava';
import type { Observation } from '@loadfeed/kernel-bridge';
import { afterOps, plan, type DesiredService } from '@loadfeed/poller';

const dest = (address: string, weight: number, activeConnections: number | null = 0) => ({
  address,
  weight,
  activeConnections,
  inactiveConnections: null,
  totalConnections: null,
  maxConnections: null,
  up: true,
});

const svc = (address: string, owned: boolean, destinations: [string, number][]): DesiredService => ({
  address,
  scheduler: null,
  owned,
  destinations: destinations.map(([a, w]) => ({ address: a, weight: w })),
});

test('an owned service that is missing is created with its destinations', (t) => {
  const ops = plan([svc('tcp 127.0.0.1:80', true, [['127.0.0.1:1', 5]])], { services: [] });
  t.deepEqual(ops, [
    { op: 'add-service', service: { address: 'tcp 127.0.0.1:80' } },
    { op: 'add-destination', service: 'tcp 127.0.0.1:80', destination: '127.0.0.1:1', weight: 5 },
  ]);
});

test('a service the poller does not own is never created', (t) => {
  t.deepEqual(plan([svc('tcp 10.0.0.1:80', false, [['10.0.0.2:80', 5]])], { services: [] }), []);
});

test('only changed weights are written', (t) => {
  const observed: Observation = {
    services: [{ address: 'tcp 127.0.0.1:80', scheduler: 'wlc', destinations: [dest('127.0.0.1:1', 5), dest('127.0.0.1:2', 7)] }],
  };
  const ops = plan([svc('tcp 127.0.0.1:80', false, [['127.0.0.1:1', 5], ['127.0.0.1:2', 9]])], observed);
  t.deepEqual(ops, [{ op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.1:2', weight: 9 }]);
  t.deepEqual(plan([svc('tcp 127.0.0.1:80', false, [['127.0.0.1:1', 5], ['127.0.0.1:2', 7]])], observed), []);
});

test('services the policy does not name are left alone', (t) => {
  const observed: Observation = {
    services: [{ address: 'tcp 127.0.0.1:99', scheduler: 'wlc', destinations: [dest('127.0.0.1:1', 5)] }],
  };
  t.deepEqual(plan([], observed), []);
});

test('a dropped destination is drained to 0, then removed once idle', (t) => {
  const s = 'tcp 127.0.0.1:80';
  const want = [svc(s, true, [['127.0.0.1:1', 5]])];
  const busy: Observation = { services: [{ address: s, scheduler: 'wlc', destinations: [dest('127.0.0.1:1', 5), dest('127.0.0.1:2', 3, 4)] }] };
  t.deepEqual(plan(want, busy), [{ op: 'set-weight', service: s, destination: '127.0.0.1:2', weight: 0 }]);
  const draining: Observation = { services: [{ address: s, scheduler: 'wlc', destinations: [dest('127.0.0.1:1', 5), dest('127.0.0.1:2', 0, 2)] }] };
  t.deepEqual(plan(want, draining), []);
  const idle: Observation = { services: [{ address: s, scheduler: 'wlc', destinations: [dest('127.0.0.1:1', 5), dest('127.0.0.1:2', 0, 0)] }] };
  t.deepEqual(plan(want, idle), [{ op: 'remove-destination', service: s, destination: '127.0.0.1:2' }]);
});

test('afterOps: the engine state after a batch, as planning against it again finds nothing to do', (t) => {
  const s = 'tcp 127.0.0.1:80';
  const before: Observation = { services: [{ address: s, scheduler: 'wlc', destinations: [dest('127.0.0.1:1', 5, 3), dest('127.0.0.1:2', 3, 4)] }] };
  const want = [svc(s, true, [['127.0.0.1:1', 9], ['127.0.0.1:3', 2]]), svc('tcp 127.0.0.1:81', true, [['127.0.0.1:4', 1]])];
  const ops = plan(want, before);
  const after = afterOps(before, ops);
  const web = after.services.find((x) => x.address === s);
  t.deepEqual(web?.destinations.map((d) => [d.address, d.weight]), [['127.0.0.1:1', 9], ['127.0.0.1:2', 0], ['127.0.0.1:3', 2]]);
  // Connection counts are the last read's: the drained destination is not idle yet, so it is not removed.
  t.is(web?.destinations[1]?.activeConnections, 4);
  t.deepEqual(plan(want, after), []);
  t.deepEqual(after.services.find((x) => x.address === 'tcp 127.0.0.1:81')?.destinations.map((d) => d.weight), [1]);
  t.deepEqual(before.services[0]?.destinations.map((d) => d.weight), [5, 3], 'the read it started from is not changed');
  t.deepEqual(afterOps(after, [{ op: 'remove-destination', service: s, destination: '127.0.0.1:2' }, { op: 'remove-service', service: 'tcp 127.0.0.1:81' }]).services.map((x) => [x.address, x.destinations.length]), [[s, 2]]);
});

test('afterOps: services no op touches stay the same objects; planning against either state sees its own weights', (t) => {
  const a = 'tcp 127.0.0.1:80';
  const b = 'tcp 127.0.0.1:81';
  const before: Observation = {
    services: [
      { address: a, scheduler: 'wlc', destinations: [dest('127.0.0.1:1', 5)] },
      { address: b, scheduler: 'wlc', destinations: [dest('127.0.0.1:2', 5)] },
    ],
  };
  const want = [svc(a, true, [['127.0.0.1:1', 5]]), svc(b, true, [['127.0.0.1:2', 7]])];
  const ops = plan(want, before);
  t.deepEqual(ops, [{ op: 'set-weight', service: b, destination: '127.0.0.1:2', weight: 7 }]);
  const after = afterOps(before, ops);
  t.is(after.services[0], before.services[0]);
  t.not(after.services[1], before.services[1]);
  t.deepEqual(plan(want, after), []);
  t.deepEqual(plan(want, before), ops, 'the read it started from still has weight 5');
});

test('a partial plan (an incremental cycle) writes the changed destinations and neither removes nor creates', (t) => {
  const observed: Observation = {
    services: [{ address: 'tcp 127.0.0.1:80', scheduler: 'wlc', destinations: [dest('127.0.0.1:1', 5), dest('127.0.0.1:2', 7)] }],
  };
  const partial = (s: DesiredService): DesiredService => ({ ...s, partial: true });
  // Only :2 changed: :1, left out, is not drained as if the policy had dropped it.
  t.deepEqual(plan([partial(svc('tcp 127.0.0.1:80', true, [['127.0.0.1:2', 9]]))], observed), [{ op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.1:2', weight: 9 }]);
  // The whole list, as a full cycle plans it, does drain it.
  t.deepEqual(plan([svc('tcp 127.0.0.1:80', true, [['127.0.0.1:2', 9]])], observed), [
    { op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.1:2', weight: 9 },
    { op: 'set-weight', service: 'tcp 127.0.0.1:80', destination: '127.0.0.1:1', weight: 0 },
  ]);
  // A missing service is created only from a whole list.
  t.deepEqual(plan([partial(svc('tcp 127.0.0.1:81', true, [['127.0.0.1:3', 4]]))], observed), []);
});
