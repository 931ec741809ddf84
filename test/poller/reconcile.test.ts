// Drift: a weight changed outside loadfeed, an engine that lost its state.
import test from 'ava';
import { pino } from 'pino';
import * as grpc from '@grpc/grpc-js';
import { createTelemetryClient } from '@loadfeed/proto';
import { compilePolicy, defaultEngines, defaultStrategies, Poller, Reconciler, type DesiredService } from '@loadfeed/poller';
import type { Observation } from '@loadfeed/kernel-bridge';
import { waitFor } from '../helpers/wait.js';

const obs = (weights: Record<string, number>): Observation => ({
  services: [
    {
      address: 'tcp 10.0.0.1:80',
      scheduler: 'wlc',
      destinations: Object.entries(weights).map(([address, weight]) => ({
        address,
        weight,
        activeConnections: 0,
        inactiveConnections: null,
        totalConnections: null,
        maxConnections: null,
        up: true,
      })),
    },
  ],
});
const want = (weights: Record<string, number>): DesiredService[] => [
  { address: 'tcp 10.0.0.1:80', scheduler: null, owned: false, destinations: Object.entries(weights).map(([address, weight]) => ({ address, weight })) },
];
const policies = (drift: 'correct' | 'respect') => new Map([['tcp 10.0.0.1:80', { address: 'tcp 10.0.0.1:80', drift }]]);

test('a hand-changed weight is reported and corrected', (t) => {
  const r = new Reconciler();
  r.adopt(obs({ a: 10, b: 20 }));
  const { desired, events } = r.reconcile(want({ a: 10, b: 20 }), obs({ a: 10, b: 99 }), policies('correct'));
  t.deepEqual(events, [{ service: 'tcp 10.0.0.1:80', destination: 'b', expected: 20, found: 99, action: 'corrected' }]);
  t.deepEqual(desired[0]?.destinations, [{ address: 'a', weight: 10 }, { address: 'b', weight: 20 }]);
});

test('with drift: respect, the hand-set weight stays until it changes again', (t) => {
  const r = new Reconciler();
  r.adopt(obs({ a: 10, b: 20 }));
  const first = r.reconcile(want({ a: 10, b: 25 }), obs({ a: 10, b: 99 }), policies('respect'));
  t.deepEqual(first.events.map((e) => e.action), ['respected']);
  t.deepEqual(first.desired[0]?.destinations, [{ address: 'a', weight: 10 }, { address: 'b', weight: 99 }]);
  // Next cycle: still 99 by hand, still respected, reported only once.
  const second = r.reconcile(want({ a: 10, b: 25 }), obs({ a: 10, b: 99 }), policies('respect'));
  t.deepEqual(second.events, []);
  t.is(second.desired[0]?.destinations[1]?.weight, 99);
  // The operator sets it back (or to anything else): ours from now on.
  const third = r.reconcile(want({ a: 10, b: 25 }), obs({ a: 10, b: 20 }), policies('respect'));
  t.is(third.desired[0]?.destinations[1]?.weight, 25);
});

test('a service the engine lost is reported: re-created when ours, missing when configured elsewhere', (t) => {
  const r = new Reconciler();
  r.adopt(obs({ a: 10 }));
  const owned = [{ ...want({ a: 10 })[0], owned: true } as DesiredService];
  t.deepEqual(r.reconcile(owned, { services: [] }, policies('correct')).events.map((e) => e.action), ['re-created']);
  const r2 = new Reconciler();
  r2.adopt(obs({ a: 10 }));
  t.deepEqual(r2.reconcile(want({ a: 10 }), { services: [] }, policies('correct')).events.map((e) => e.action), ['missing']);
});

async function pollerWith(drift: 'correct' | 'respect') {
  const engines = defaultEngines();
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1
reconcile: { every: 200ms }
liveness: { staleAfter: 1m }
services:
  - name: web
    engine: memory
    address: tcp 10.0.0.1:80
    drift: ${drift}
    slowStart: null
    servers: [{ node: a, address: "10.0.0.2:80" }]
`,
    'p.yaml',
    engines.limits(),
  );
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies: defaultStrategies(), logger: pino({ level: 'silent' }) });
  const port = await poller.start();
  // One agent, over real gRPC: a Hello and a sample (liveness.staleAfter is long).
  const client = createTelemetryClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.report();
  call.on('data', () => undefined);
  call.on('error', () => undefined);
  call.write({ hello: { nodeId: 'a', cores: 1, memoryBytes: 1 } });
  call.write({ sample: { seq: 1, timestampMs: Date.now(), cpuUtilization: 0.5, windowMs: 1000 } });
  const engine = poller.engine('memory');
  const weight = async (): Promise<number | undefined> => (await engine.observe()).services[0]?.destinations[0]?.weight;
  let last: number | undefined;
  const tick = setInterval(() => void weight().then((w) => (last = w)), 10);
  return {
    poller,
    engine,
    current: () => last,
    stop: async () => {
      clearInterval(tick);
      call.end();
      client.close();
      await poller.stop();
    },
  };
}

test('the running poller corrects a weight set by hand within reconcile.every', async (t) => {
  const p = await pollerWith('correct');
  t.teardown(p.stop);
  await waitFor('weight 100', () => p.current() === 100);
  await p.engine.apply([{ op: 'set-weight', service: 'tcp 10.0.0.1:80', destination: '10.0.0.2:80', weight: 7 }]);
  await waitFor('the drift noticed', () => p.poller.snapshot().driftEvents === 1, 3000);
  await p.poller.settled();
  t.is((await p.engine.observe()).services[0]?.destinations[0]?.weight, 100);
});

test('the running poller respects a weight set by hand with drift: respect', async (t) => {
  const p = await pollerWith('respect');
  t.teardown(p.stop);
  await waitFor('weight 100', () => p.current() === 100);
  await p.engine.apply([{ op: 'set-weight', service: 'tcp 10.0.0.1:80', destination: '10.0.0.2:80', weight: 7 }]);
  await waitFor('the drift noticed', () => p.poller.snapshot().driftEvents === 1, 3000);
  await p.poller.settled();
  t.is((await p.engine.observe()).services[0]?.destinations[0]?.weight, 7);
});
