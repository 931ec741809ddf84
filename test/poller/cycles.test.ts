// How cycles are paced and scoped: a sample re-evaluates only the services
// it concerns and plans against the engine state the poller keeps; every
// `reconcile.every` a full cycle evaluates everything against a fresh read.
// Under load cycles space out (cycleGapMs), except to quiesce a server.
import test from 'ava';
import { pino } from 'pino';
import * as grpc from '@grpc/grpc-js';
import { createTelemetryClient } from '@loadfeed/proto';
import { createMemoryEngine } from '@loadfeed/kernel-bridge';
import { compilePolicy, cycleGapMs, defaultStrategies, EngineRegistry, LOOP_BUSY_TARGET, MAX_CYCLE_SHARE, MIN_CYCLE_GAP_MS, MIN_CYCLE_SHARE, Poller } from '@loadfeed/poller';
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

test('cycles take at most half of an idle loop and give way as the rest of it gets busy', (t) => {
  t.is(cycleGapMs(1, 0), MIN_CYCLE_GAP_MS, 'cheap cycles still batch samples');
  t.is(cycleGapMs(20, 0), 20 / MAX_CYCLE_SHARE);
  // Streams keep the loop busy for the fraction `others`: the gap widens so the total stays at the target.
  const gaps = [0.2, 0.4, 0.5, 0.6].map((others) => cycleGapMs(20, others));
  t.deepEqual(gaps, [...gaps].sort((a, b) => a - b), `gaps grow with the load: ${gaps.join(', ')}`);
  t.true(gaps[0] !== gaps[3]);
  for (const [i, others] of [0.4, 0.5, 0.6].entries()) {
    const gap = gaps[i + 1] ?? 0;
    t.true(Math.abs(others + 20 / gap - LOOP_BUSY_TARGET) < 1e-9, `loop busy ${others} + cycles 20 ms per ${gap} ms`);
  }
  // Saturated by streams alone, cycles slow down but never stop.
  t.is(cycleGapMs(20, 1), 20 / MIN_CYCLE_SHARE);
});

test('a server whose agent falls silent is quiesced without waiting out the gap a slow cycle called for', async (t) => {
  const engines = new EngineRegistry().register('memory', {
    create: () => createMemoryEngine(),
    maxWeight: 65_535,
    ownsServicesByDefault: true,
    canCreateServices: true,
    connectionLimits: false,
  });
  // Scoring takes 800 ms of the loop: the next cycle may start no sooner than cycleGapMs(800, 0) later.
  const SLOW_MS = 800;
  const strategies = defaultStrategies();
  const headroom = strategies.get('headroom');
  strategies.register({
    ...headroom,
    weigh: (config, servers, state, now) => {
      const end = performance.now() + SLOW_MS;
      while (performance.now() < end);
      return headroom.weigh(config, servers, state, now);
    },
  });
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1
reconcile: { every: 1h }
liveness: { staleAfter: 200ms }
services:
  - name: s
    engine: memory
    address: tcp 10.0.0.1:80
    slowStart: null
    servers: [{ node: a, address: "10.0.0.2:80" }, { node: b, address: "10.0.0.3:80" }]
`,
    'cycles.yaml',
    engines.limits(),
  );
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies, logger: pino({ level: 'silent' }) });
  const port = await poller.start();
  t.teardown(() => poller.stop());
  /** evaluatedAt of each cycle, and the index of the cycle that quiesced a. */
  const cycles: number[] = [];
  let quiescedIn: number | null = null;
  poller.observe({
    weightsApplied: (_ms, evaluatedAt) => cycles.push(evaluatedAt),
    weightChanged: (e) => {
      if (e.node === 'a' && e.to === 0 && e.state === 'stale') quiescedIn ??= cycles.length;
    },
  });
  const client = createTelemetryClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const agent = (node: string): ReturnType<typeof client.report> => {
    const call = client.report();
    call.on('data', () => undefined);
    call.on('error', () => undefined);
    t.teardown(() => call.end());
    call.write({ hello: { nodeId: node, cores: 1, memoryBytes: 1 } });
    return call;
  };
  const sample = (seq: number) => ({ sample: { seq, timestampMs: Date.now(), cpuUtilization: 0.5, windowMs: 1000 } });
  // Both report until both are weighted; then a falls silent and turns stale
  // 200 ms later, while a slow cycle for b's samples runs. b keeps the service up.
  const reporting = new Map(['a', 'b'].map((node) => [node, { call: agent(node), seq: 0 }]));
  const timer = setInterval(() => {
    for (const r of reporting.values()) r.call.write(sample(++r.seq));
  }, 100);
  t.teardown(() => clearInterval(timer));
  const weighted = (node: string): boolean =>
    poller.snapshot().services[0]?.decisions.some((d) => d.node === node && d.state === 'live' && d.weight > 0) ?? false;
  await waitFor('a and b weighted', () => weighted('a') && weighted('b'), 20_000);
  reporting.delete('a');
  await waitFor('a quiesced', () => quiescedIn !== null && cycles.length > quiescedIn, 20_000);
  const q = quiescedIn ?? 0;
  const elapsed = (cycles[q] ?? NaN) - (cycles[q - 1] ?? NaN);
  const gap = cycleGapMs(SLOW_MS, 0);
  t.true(elapsed < gap - SLOW_MS / 2, `quiesced ${Math.round(elapsed)} ms after the slow cycle began; its gap was ${gap} ms`);
});
