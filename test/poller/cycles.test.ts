// How cycles are paced and scoped: a sample re-evaluates only the services
// it concerns and plans against the engine state the poller keeps; every
// `reconcile.every` a full cycle evaluates everything against a fresh read.
import test from 'ava';
import { pino } from 'pino';
import * as grpc from '@grpc/grpc-js';
import { createTelemetryClient } from '@loadfeed/proto';
import { createMemoryEngine } from '@loadfeed/kernel-bridge';
import { compilePolicy, defaultStrategies, EngineRegistry, Poller } from '@loadfeed/poller';
import { waitFor } from '../helpers/wait.js';

test('a sample re-evaluates only its services, without reading the engine; a full cycle reads it', async (t) => {
  let reads = 0;
  const engines = new EngineRegistry().register('memory', {
    create: () => {
      const engine = createMemoryEngine();
      return { ...engine, kind: engine.kind, weightRange: engine.weightRange, observe: () => (reads++, engine.observe()) };
    },
    maxWeight: 65_535,
    ownsServicesByDefault: true,
    canCreateServices: true,
    connectionLimits: false,
  });
  // Which services were evaluated, in order: a uses headroom, b connections.
  const scored: string[] = [];
  const strategies = defaultStrategies();
  for (const [name, service] of [['headroom', 'a'], ['connections', 'b']] as const) {
    const s = strategies.get(name);
    strategies.register({ ...s, weigh: (config, servers, state, now) => (scored.push(service), s.weigh(config, servers, state, now)) });
  }
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1
reconcile: { every: 1h }
liveness: { staleAfter: 1h }
services:
  - name: a
    engine: memory
    address: tcp 10.0.0.1:80
    slowStart: null
    servers: [{ node: a, address: "10.0.0.2:80" }]
  - name: b
    engine: memory
    address: tcp 10.0.0.1:81
    strategy: { name: connections }
    slowStart: null
    servers: [{ node: b, address: "10.0.0.3:80" }]
`,
    'cycles.yaml',
    engines.limits(),
  );
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies, logger: pino({ level: 'silent' }) });
  const port = await poller.start();
  t.teardown(() => poller.stop());
  t.is(reads, 1, 'the first cycle reads the engine');
  const client = createTelemetryClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const call = client.report();
  call.on('data', () => undefined);
  call.on('error', () => undefined);
  t.teardown(() => call.end());
  scored.length = 0;
  call.write({ hello: { nodeId: 'a', cores: 1, memoryBytes: 1 } });
  call.write({ sample: { seq: 1, timestampMs: Date.now(), cpuUtilization: 0.5, windowMs: 1000 } });
  await waitFor('a weighted', () => poller.snapshot().services.find((s) => s.name === 'a')?.decisions[0]?.state === 'live');
  await poller.settled();
  t.true(scored.length > 0);
  t.true(scored.every((s) => s === 'a'), `only service a was scored: ${scored.join(' | ')}`);
  t.is(reads, 1, 'no read between full cycles');
  const weights = (await poller.engine('memory').observe()).services.map((s) => s.destinations[0]?.weight);
  t.true((weights[0] ?? 0) > 0, 'the weight reached the engine');

  // A policy reload is a full cycle: every service, a fresh read.
  reads = 0;
  scored.length = 0;
  poller.setPolicy(policy);
  await poller.settled();
  t.is(reads, 1);
  t.deepEqual(scored, ['a', 'b']);
});
