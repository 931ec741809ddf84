// The Engine contract (kernel-bridge/src/engine.ts), run against every engine.
// To add an engine, append an EngineFixture to FIXTURES: a factory and
// addresses it can create. Engines that need privileges or binaries set `skip`
// from an environment flag so the suite still lists them.
import test, { type ExecutionContext } from 'ava';
import {
  ConflictError,
  UnknownTargetError,
  WeightRangeError,
  createFastpathEngine,
  createMemoryEngine,
  type Engine,
  type EngineOp,
  type ObservedDestination,
} from '@loadfeed/kernel-bridge';

interface EngineFixture {
  readonly name: string;
  /** Why the suite cannot run here (missing privileges, binary…); undefined to run it. */
  readonly skip?: string;
  create(): Engine | Promise<Engine>;
  /** In the engine's canonical spelling, as `observe()` reports them. */
  readonly addresses: {
    readonly services: readonly [string, string];
    readonly unknownService: string;
    readonly destinations: readonly [string, string];
    readonly unknownDestination: string;
  };
}

const FIXTURES: readonly EngineFixture[] = [
  {
    name: 'memory',
    create: () => createMemoryEngine(),
    addresses: {
      services: ['tcp 192.0.2.10:80', 'tcp 192.0.2.10:443'],
      unknownService: 'tcp 192.0.2.99:80',
      destinations: ['192.0.2.21:8080', '[2001:db8::22]:8080'],
      unknownDestination: '192.0.2.99:8080',
    },
  },
  {
    // Port 0 listeners on loopback; destinations are never connected to here.
    name: 'fastpath',
    create: () => createFastpathEngine(),
    addresses: {
      services: ['tcp 127.0.0.1:0', 'tcp 127.0.0.2:0'],
      unknownService: 'tcp 127.0.0.3:0',
      destinations: ['127.0.0.1:1', '[::1]:2'],
      unknownDestination: '127.0.0.1:3',
    },
  },
];

for (const fixture of FIXTURES) contractSuite(fixture);

function contractSuite(fixture: EngineFixture): void {
  const { services, unknownService, destinations, unknownDestination } = fixture.addresses;
  const [s1, s2] = services;
  const [d1, d2] = destinations;
  const run = fixture.skip === undefined ? test : test.skip;
  const title = (what: string): string => `${fixture.name}: ${what}${fixture.skip === undefined ? '' : ` (${fixture.skip})`}`;

  /** A fresh engine with s1 → d1 (weight 1), d2 (weight 2); closed at teardown. */
  async function seeded(t: ExecutionContext): Promise<Engine> {
    const engine = await fixture.create();
    t.teardown(() => engine.close());
    await engine.apply([
      { op: 'add-service', service: { address: s1 } },
      { op: 'add-destination', service: s1, destination: d1, weight: 1 },
      { op: 'add-destination', service: s1, destination: d2, weight: 2 },
    ]);
    return engine;
  }

  /** Weights by service and destination: what the contract is about, whatever counters an engine has. */
  async function weights(engine: Engine): Promise<Record<string, Record<string, number>>> {
    const observed = await engine.observe();
    return Object.fromEntries(
      observed.services.map((s) => [s.address, Object.fromEntries(s.destinations.map((d) => [d.address, d.weight]))]),
    );
  }

  const setWeight = (destination: string, weight: number, service = s1): EngineOp => ({
    op: 'set-weight',
    service,
    destination,
    weight,
  });

  run(title('observe() reports every service and destination added'), async (t) => {
    const engine = await fixture.create();
    t.teardown(() => engine.close());
    t.deepEqual(await engine.observe(), { services: [] });
    await engine.apply([
      { op: 'add-service', service: { address: s1 } },
      { op: 'add-destination', service: s1, destination: d1, weight: 1 },
      { op: 'add-destination', service: s1, destination: d2, weight: 2 },
      { op: 'add-service', service: { address: s2 } },
    ]);
    const observed = await engine.observe();
    t.deepEqual(
      observed.services.map((s) => s.address),
      [s1, s2],
    );
    const [first, second] = observed.services;
    t.deepEqual(first?.destinations.map(identity), [
      { address: d1, weight: 1, up: true },
      { address: d2, weight: 2, up: true },
    ]);
    t.deepEqual(second?.destinations, []);
    for (const s of observed.services) t.true(s.scheduler.length > 0, 'a scheduler name is reported');
    for (const d of first?.destinations ?? []) {
      for (const counter of [d.activeConnections, d.inactiveConnections, d.totalConnections]) {
        t.true(counter === null || (Number.isInteger(counter) && counter >= 0), `counter ${String(counter)}`);
      }
    }
  });

  run(title('apply() applies the batch in order'), async (t) => {
    const engine = await seeded(t);
    await engine.apply([setWeight(d1, 5), setWeight(d2, 6), setWeight(d1, 7)]);
    t.deepEqual(await weights(engine), { [s1]: { [d1]: 7, [d2]: 6 } });
  });

  run(title('re-applying a batch changes nothing'), async (t) => {
    const engine = await seeded(t);
    const batch = [setWeight(d1, 3), setWeight(d2, 0)];
    await engine.apply(batch);
    const once = await engine.observe();
    await engine.apply(batch);
    t.deepEqual(await engine.observe(), once);
    await engine.apply([]);
    t.deepEqual(await engine.observe(), once);
  });

  run(title('an unknown destination rejects naming it; earlier ops stay applied'), async (t) => {
    const engine = await seeded(t);
    const error = await t.throwsAsync(
      engine.apply([setWeight(d1, 7), setWeight(unknownDestination, 1), setWeight(d2, 9)]),
      { instanceOf: UnknownTargetError, message: (m) => m.includes(unknownDestination) },
    );
    t.is(error?.code, 'BRIDGE_UNKNOWN_TARGET');
    t.deepEqual(await weights(engine), { [s1]: { [d1]: 7, [d2]: 2 } });
    await t.throwsAsync(engine.apply([{ op: 'remove-destination', service: s1, destination: unknownDestination }]), {
      instanceOf: UnknownTargetError,
    });
  });

  run(title('an unknown service rejects naming it, whatever the op'), async (t) => {
    const engine = await seeded(t);
    const ops: EngineOp[] = [
      setWeight(d1, 1, unknownService),
      { op: 'add-destination', service: unknownService, destination: d1, weight: 1 },
      { op: 'remove-destination', service: unknownService, destination: d1 },
      { op: 'remove-service', service: unknownService },
    ];
    for (const op of ops) {
      const error = await t.throwsAsync(engine.apply([op]), {
        instanceOf: UnknownTargetError,
        message: (m) => m.includes(unknownService),
      });
      t.is(error?.code, 'BRIDGE_UNKNOWN_TARGET', op.op);
    }
    t.deepEqual(await weights(engine), { [s1]: { [d1]: 1, [d2]: 2 } });
  });

  run(title('weight 0 keeps the destination, listed and up, until it is removed'), async (t) => {
    const engine = await seeded(t);
    await engine.apply([setWeight(d1, 0)]);
    const [service] = (await engine.observe()).services;
    t.deepEqual(service?.destinations.map(identity), [
      { address: d1, weight: 0, up: true },
      { address: d2, weight: 2, up: true },
    ]);
    await engine.apply([setWeight(d1, 4)]);
    t.deepEqual(await weights(engine), { [s1]: { [d1]: 4, [d2]: 2 } });
    await engine.apply([
      { op: 'remove-destination', service: s1, destination: d1 },
      { op: 'add-destination', service: s1, destination: d1, weight: 0 },
    ]);
    t.deepEqual(await weights(engine), { [s1]: { [d2]: 2, [d1]: 0 } });
  });

  run(title('out-of-range and non-integer weights reject before anything is applied'), async (t) => {
    const engine = await seeded(t);
    const { min, max } = engine.weightRange;
    t.true(Number.isInteger(min) && Number.isInteger(max) && min <= 0 && max >= 2, `range ${min}..${max}`);
    for (const bad of [min - 1, max + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const error = await t.throwsAsync(
        engine.apply([
          setWeight(d1, max),
          { op: 'add-service', service: { address: s2 } },
          { op: 'add-destination', service: s2, destination: d1, weight: 1 },
          setWeight(d2, bad),
        ]),
        { instanceOf: WeightRangeError, message: (m) => m.includes(String(bad)) },
      );
      t.is(error?.code, 'BRIDGE_WEIGHT_RANGE');
      await t.throwsAsync(engine.apply([{ op: 'add-destination', service: s1, destination: unknownDestination, weight: bad }]), {
        instanceOf: WeightRangeError,
      });
    }
    t.deepEqual(await weights(engine), { [s1]: { [d1]: 1, [d2]: 2 } });
    await engine.apply([setWeight(d1, min), setWeight(d2, max)]);
    t.deepEqual(await weights(engine), { [s1]: { [d1]: min, [d2]: max } });
  });

  run(title('adding what exists conflicts; earlier ops stay applied'), async (t) => {
    const engine = await seeded(t);
    const service = await t.throwsAsync(engine.apply([{ op: 'add-service', service: { address: s1 } }]), {
      instanceOf: ConflictError,
      message: (m) => m.includes(s1),
    });
    t.is(service?.code, 'BRIDGE_CONFLICT');
    const destination = await t.throwsAsync(
      engine.apply([setWeight(d2, 5), { op: 'add-destination', service: s1, destination: d1, weight: 3 }]),
      { instanceOf: ConflictError, message: (m) => m.includes(d1) },
    );
    t.is(destination?.code, 'BRIDGE_CONFLICT');
    t.deepEqual(await weights(engine), { [s1]: { [d1]: 1, [d2]: 5 } });
  });

  run(title('remove-destination and remove-service take effect'), async (t) => {
    const engine = await seeded(t);
    await engine.apply([
      { op: 'add-service', service: { address: s2 } },
      { op: 'add-destination', service: s2, destination: d2, weight: 1 },
      { op: 'remove-destination', service: s1, destination: d1 },
    ]);
    t.deepEqual(await weights(engine), { [s1]: { [d2]: 2 }, [s2]: { [d2]: 1 } });
    await engine.apply([{ op: 'remove-service', service: s1 }]);
    t.deepEqual(await weights(engine), { [s2]: { [d2]: 1 } });
    // The address is free again.
    await engine.apply([{ op: 'add-service', service: { address: s1 } }]);
    t.deepEqual(await weights(engine), { [s2]: { [d2]: 1 }, [s1]: {} });
  });
}

function identity(d: ObservedDestination): Pick<ObservedDestination, 'address' | 'weight' | 'up'> {
  return { address: d.address, weight: d.weight, up: d.up };
}
