// How cycles are paced and scoped: a sample re-evaluates only the services
// it concerns and plans against the engine state the poller keeps; every
// `reconcile.every` a resync evaluates everything against a fresh read,
// spread over cycles of RESYNC_SLICE_SERVERS servers each.
// Under load cycles space out (cycleGapMs), except to quiesce a server; a
// loop held in I/O past a cycle's start starts it from the next node event.
import test from 'ava';
import { pino } from 'pino';
import * as grpc from '@grpc/grpc-js';
import { createTelemetryClient } from '@loadfeed/proto';
import { createMemoryEngine, MEMORY_ENGINE } from '@loadfeed/kernel-bridge';
import { compilePolicy, CyclePacer, CycleScheduler, cycleGapMs, MAX_INCREMENTAL_GAP_MS, defaultEngines, defaultStrategies, EngineRegistry, LOOP_BUSY_TARGET, MAX_CYCLE_SHARE, MIN_CYCLE_GAP_MS, MIN_CYCLE_SHARE, Poller, RESYNC_SLICE_SERVERS, TIMER_LATE_MS, type NodeRecord, type StrategyRegistry } from '@loadfeed/poller';
import { waitFor } from '../helpers/wait.js';
import { FakeAgent } from '../status/fake-agent.js';
import { memoryWebPolicy } from '../helpers/policy-harness.js';

/** The strategy `name` in `strategies` calls `before` each time it weighs, then weighs as usual. */
function beforeWeighing(strategies: StrategyRegistry, name: string, before: () => void): void {
  const s = strategies.get(name);
  strategies.register({ ...s, weigh: (config, servers, state, now) => (before(), s.weigh(config, servers, state, now)) });
}

test('a sample re-evaluates only its services, without reading the engine; a full cycle reads it', async (t) => {
  let reads = 0;
  const engines = new EngineRegistry().register(
    {
      ...MEMORY_ENGINE,
      create: () => {
        const engine = createMemoryEngine();
        return { ...engine, kind: engine.kind, weightRange: engine.weightRange, observe: () => (reads++, engine.observe()) };
      },
    },
    () => ({}),
  );
  // Which services were evaluated, in order: a uses the default (capacity), b connections.
  const scored: string[] = [];
  const strategies = defaultStrategies();
  beforeWeighing(strategies, 'capacity', () => scored.push('a'));
  beforeWeighing(strategies, 'connections', () => scored.push('b'));
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

test('a resync is spread over cycles of RESYNC_SLICE_SERVERS servers, against one fresh read of the engine', async (t) => {
  let reads = 0;
  /** Per apply of the poller, the services whose weights it set, and the reads until then. */
  const applies: { services: string[]; reads: number }[] = [];
  let raw: ReturnType<typeof createMemoryEngine> | null = null;
  const engines = new EngineRegistry().register(
    {
      ...MEMORY_ENGINE,
      create: () => {
        const engine = (raw = createMemoryEngine());
        return {
          ...engine,
          kind: engine.kind,
          weightRange: engine.weightRange,
          observe: () => (reads++, engine.observe()),
          apply: (ops) => (applies.push({ services: [...new Set(ops.filter((o) => o.op === 'set-weight').map((o) => o.service))], reads }), engine.apply(ops)),
        };
      },
    },
    () => ({}),
  );
  // Three services of a slice each (servers without agents: no sample moves a weight).
  const service = (i: number): string =>
    `  - name: s${i}\n    engine: memory\n    address: tcp 10.0.0.1:${80 + i}\n    servers: [${Array.from({ length: RESYNC_SLICE_SERVERS }, (_, k) => `{ node: n${i}-${k}, address: "10.0.${i}.${k % 250}:${1000 + k}" }`).join(', ')}]\n`;
  const policy = compilePolicy(`apiVersion: loadfeed/v1\nreconcile: { every: 1s }\nservices:\n${[1, 2, 3].map(service).join('')}`, 'slices.yaml', engines.limits());
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies: defaultStrategies(), logger: pino({ level: 'silent' }) });
  await poller.start();
  t.teardown(() => poller.stop());
  const engine = raw as ReturnType<typeof createMemoryEngine> | null;
  if (!engine) throw new Error('the poller made no engine');
  // A weight changed by hand in each service: each resync slice corrects its own.
  const seen = await engine.observe();
  applies.length = 0;
  const readsBefore = reads;
  await engine.apply(seen.services.map((s) => ({ op: 'set-weight' as const, service: s.address, destination: s.destinations[0]?.address ?? '', weight: (s.destinations[0]?.weight ?? 0) + 1 })));
  await waitFor('every drift corrected', () => poller.snapshot().driftEvents >= 3, 10_000);
  const corrections = applies.filter((a) => a.services.length > 0);
  t.is(corrections.length, 3, `one apply per slice: ${JSON.stringify(corrections)}`);
  t.true(corrections.every((a) => a.services.length === 1), `each slice is one service: ${JSON.stringify(corrections)}`);
  t.deepEqual(new Set(corrections.flatMap((a) => a.services)).size, 3);
  // One read per resync: three slices span at most two resyncs (the drift may land mid-resync).
  t.true((corrections.at(-1)?.reads ?? 0) - readsBefore <= 2, `engine reads for three slices: ${(corrections.at(-1)?.reads ?? 0) - readsBefore}`);
});

test('a weight change reports the weight it replaced, also when an incremental pass replaced it in place', async (t) => {
  const { engines, policy } = memoryWebPolicy(
    '    strategy: { name: headroom }\n    slowStart: null\n    smoothing: { halfLife: 0s }\n    deadband: 0\n    servers: [{ node: a, address: "10.0.0.2:80" }, { node: b, address: "10.0.0.3:80" }]\n',
    'reconcile: { every: 1h }\n',
  );
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies: defaultStrategies(), logger: pino({ level: 'silent' }) });
  const port = await poller.start();
  t.teardown(() => poller.stop());
  const changes: { server: string; from: number | null; to: number }[] = [];
  poller.observe({ weightChanged: (e) => changes.push({ server: e.server, from: e.from, to: e.to }) });
  const [a, b] = ['a', 'b'].map((node) => {
    const agent = new FakeAgent(port, node);
    t.teardown(() => agent.close());
    return agent;
  }) as [FakeAgent, FakeAgent];
  a.sample({ cpuUtilization: 0 });
  b.sample({ cpuUtilization: 0.5 });
  const weightOf = (server: string): number | undefined => poller.snapshot().services[0]?.decisions.find((d) => d.address === server)?.weight;
  await waitFor('both weighted', () => weightOf('10.0.0.2:80') === 100 && weightOf('10.0.0.3:80') === 50);
  // b alone has news and a keeps the best score: an incremental pass weighs b alone, in place.
  b.sample({ cpuUtilization: 0.75 });
  await waitFor('b at 25', () => weightOf('10.0.0.3:80') === 25);
  b.sample({ cpuUtilization: 0.5 });
  await waitFor('b back at 50', () => weightOf('10.0.0.3:80') === 50);
  await poller.settled();
  const ofB = changes.filter((c) => c.server === '10.0.0.3:80');
  t.deepEqual(ofB.slice(-2), [
    { server: '10.0.0.3:80', from: 50, to: 25 },
    { server: '10.0.0.3:80', from: 25, to: 50 },
  ]);
  // Each change starts where the last one of the same server ended.
  for (const server of ['10.0.0.2:80', '10.0.0.3:80']) {
    const own = changes.filter((c) => c.server === server);
    own.slice(1).forEach((c, i) => t.is(c.from, own[i]?.to ?? null, `${server}: ${JSON.stringify(own)}`));
  }
});

test('cycles take at most half of an idle loop and give way as the rest of it gets busy', (t) => {
  t.is(cycleGapMs(1, 0), MIN_CYCLE_GAP_MS, 'cheap cycles still batch samples');
  t.is(cycleGapMs(20, 0), 20 / MAX_CYCLE_SHARE);
  // Streams keep the loop busy for the fraction `others`: past the half the
  // cycles may take, the gap widens so that the total stays at the target.
  const loads = [0.2, 0.5, 0.6, 0.7];
  const gaps = loads.map((others) => cycleGapMs(20, others));
  t.deepEqual(gaps, [...gaps].sort((a, b) => a - b), `gaps grow with the load: ${gaps.join(', ')}`);
  t.true((gaps[0] ?? 0) < (gaps[3] ?? 0));
  for (const [i, others] of loads.entries()) {
    if (others + MAX_CYCLE_SHARE <= LOOP_BUSY_TARGET) continue;
    const gap = gaps[i] ?? 0;
    t.true(Math.abs(others + 20 / gap - LOOP_BUSY_TARGET) < 1e-9, `loop busy ${others} + cycles 20 ms per ${gap} ms`);
  }
  // Saturated by streams alone, cycles slow down but never stop.
  t.is(cycleGapMs(20, 1), 20 / MIN_CYCLE_SHARE);
});

/**
 * Cycles of `cycleMs`, each as soon as the pacer allows, from `from` for
 * `forMs`, with the loop busy for the fraction `othersBusy` besides them.
 * Returns when the last one started.
 */
function run(pacer: CyclePacer, from: number, forMs: number, cycleMs: number, othersBusy: number): number {
  let previous = -Infinity;
  for (let start = Math.max(from, pacer.nextStart(false)); start < from + forMs; start = pacer.nextStart(false)) {
    pacer.begin(start, Math.min(1, othersBusy + cycleMs / (start - previous)));
    pacer.end(start + cycleMs);
    previous = start;
  }
  return previous;
}

test('the pacer follows a lasting load, not one burst', (t) => {
  const pacer = new CyclePacer();
  // Cheap cycles on an idle loop: as often as MIN_CYCLE_GAP_MS allows.
  let last = run(pacer, 0, 10_000, 2, 0);
  t.is(pacer.nextStart(false) - last, MIN_CYCLE_GAP_MS);
  // One period with the loop saturated (a burst of reads, a GC pause): taken
  // alone it would call for the smallest share, a gap of 2 / MIN_CYCLE_SHARE ms.
  const burst = pacer.nextStart(false);
  pacer.begin(burst, 1);
  pacer.end(burst + 2);
  t.true(pacer.nextStart(false) - burst < 1.5 * MIN_CYCLE_GAP_MS, `after one burst: ${pacer.nextStart(false) - burst} ms`);
  // Streams keeping 70 % of the loop busy for seconds: cycles settle at what is left of the target.
  last = run(pacer, burst + 2, 10_000, 20, 0.7);
  const settled = pacer.nextStart(false) - last;
  t.true(Math.abs(settled - cycleGapMs(20, 0.7)) < 0.05 * settled, `loaded: ${settled} ms, expected about ${cycleGapMs(20, 0.7)}`);
  // A server to quiesce does not wait for that.
  t.is(pacer.nextStart(true), last + MIN_CYCLE_GAP_MS);
});

test('a full cycle does not stretch the gap before the next incremental one', (t) => {
  const pacer = new CyclePacer();
  const last = run(pacer, 0, 10_000, 2, 0.7);
  const gap = pacer.nextStart(false) - last;
  // A full cycle taking 100 ms: the next one is paced by the 2 ms ones, not by it.
  const resync = pacer.nextStart(false);
  pacer.begin(resync, 0.8);
  pacer.end(resync + 100, 'full');
  t.true(pacer.nextStart(false) - resync <= gap, `after the resync: ${pacer.nextStart(false) - resync} ms, before: ${gap} ms`);
  // The same 100 ms in a cycle that evaluated services anew calls for a long gap.
  pacer.begin(resync + 200, 0.8);
  pacer.end(resync + 300, 'whole');
  t.true(pacer.nextStart(false) - (resync + 200) >= 100 / MAX_CYCLE_SHARE);
  // An incremental one (its work follows the news, which a longer gap does not reduce) waits at most MAX_INCREMENTAL_GAP_MS.
  pacer.begin(resync + 1000, 0.8);
  pacer.end(resync + 1020, 'incremental');
  t.is(pacer.nextStart(false), resync + 1000 + MAX_INCREMENTAL_GAP_MS);
});

test('a server whose agent falls silent is quiesced without waiting out the gap a slow cycle called for', async (t) => {
  const engines = defaultEngines();
  // Scoring takes a second of the loop: the next cycle may start no sooner than cycleGapMs(1000, 0) later.
  const SLOW_MS = 1000;
  const strategies = defaultStrategies();
  beforeWeighing(strategies, 'headroom', () => {
    const end = performance.now() + SLOW_MS;
    while (performance.now() < end);
  });
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1
reconcile: { every: 1h }
liveness: { staleAfter: 1500ms }
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
  // Both report until both are weighted; then a falls silent and turns stale
  // 1.5 s later, while the next slow cycle for b's samples runs (1.5 s is
  // longer than a cycle blocks the loop: b's samples, read late, never are).
  const [a] = ['a', 'b'].map((node) => {
    const agent = new FakeAgent(port, node);
    t.teardown(() => agent.close());
    agent.keepSampling(() => ({ cpuUtilization: 0.5 }), 100);
    return agent;
  });
  const weighted = (node: string): boolean =>
    poller.snapshot().services[0]?.decisions.some((d) => d.node === node && d.state === 'live' && d.weight > 0) ?? false;
  await waitFor('a and b weighted', () => weighted('a') && weighted('b'), 20_000);
  a?.pause();
  await waitFor('a quiesced', () => quiescedIn !== null && cycles.length > quiescedIn, 20_000);
  const q = quiescedIn ?? 0;
  const elapsed = (cycles[q] ?? NaN) - (cycles[q - 1] ?? NaN);
  const gap = cycleGapMs(SLOW_MS, 0);
  t.true(elapsed < gap, `quiesced ${Math.round(elapsed)} ms after the slow cycle began; its gap was ${gap} ms`);
});

test('a node event read while the loop is held past the next cycle\'s start starts that cycle at once, not after the I/O', async (t) => {
  const runs: number[] = [];
  let ran: () => void = () => undefined;
  const scheduler = new CycleScheduler({
    run: async () => {
      runs.push(performance.now());
      ran();
      return { evaluatedAt: performance.now(), failed: false, again: [], incremental: true, resyncing: false };
    },
    resyncEveryMs: () => 3_600_000,
    applied: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  t.teardown(() => scheduler.stop());
  const node = { id: 'a' } as NodeRecord;
  const first = new Promise<void>((resolve) => (ran = resolve));
  scheduler.nodeEvent(false, ['a'], node);
  await first;
  await scheduler.settled();
  // The next cycle waits on a timer: at most MAX_INCREMENTAL_GAP_MS after the first began.
  scheduler.nodeEvent(false, ['a'], node);
  t.is(runs.length, 1);
  // The loop is held (as by one long poll phase reading sockets): no timer can fire.
  const held = (runs[0] as number) + MAX_INCREMENTAL_GAP_MS + TIMER_LATE_MS + 1;
  while (performance.now() < held);
  scheduler.nodeEvent(false, ['b'], node);
  // Only microtasks from here: a cycle started by a timer or setImmediate could not run.
  for (let i = 0; i < 50 && runs.length < 2; i++) await Promise.resolve();
  t.is(runs.length, 2);
});

test('a policy cycle that throws makes the poller degraded and counts it; the engine keeps the last weights', async (t) => {
  const strategies = defaultStrategies();
  let failing = false;
  // The policy below uses the default strategy.
  beforeWeighing(strategies, 'capacity', () => {
    if (failing) throw new RangeError('Maximum call stack size exceeded');
  });
  const { engines, policy } = memoryWebPolicy(`    slowStart: null
    smoothing: { halfLife: 0s }
    deadband: 0
    servers: [{ node: a, address: "10.0.0.2:80" }, { node: b, address: "10.0.0.3:80" }]
`);
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies, logger: pino({ level: 'silent' }) });
  const port = await poller.start();
  t.teardown(() => poller.stop());
  const weights = async (): Promise<number[]> =>
    (await poller.engine('memory').observe()).services[0]?.destinations.map((d) => d.weight) ?? [];
  const a = new FakeAgent(port, 'a');
  t.teardown(() => a.close());
  a.keepSampling(() => ({ cpuUtilization: 0.5 }), 100);
  let last: number[] = [];
  const poll = setInterval(() => void weights().then((w) => (last = w)), 20);
  t.teardown(() => clearInterval(poll));
  await waitFor('a weighted', () => (last[0] ?? 0) > 0 && last[1] === 0);
  const good = [...last];

  failing = true;
  const b = new FakeAgent(port, 'b'); // a server connecting while cycles fail stays at its last weight
  t.teardown(() => b.close());
  b.keepSampling(() => ({ cpuUtilization: 0.1 }), 100);
  await waitFor('degraded', () => poller.snapshot().health === 'degraded' && poller.snapshot().cycleFailures >= 2);
  const snap = poller.snapshot();
  t.is(snap.cycleError, 'Maximum call stack size exceeded');
  t.deepEqual(await weights(), good);

  failing = false;
  await waitFor('healthy again', () => poller.snapshot().health === 'ok' && (last[1] ?? 0) > 0);
  t.is(poller.snapshot().cycleError, null);
});
