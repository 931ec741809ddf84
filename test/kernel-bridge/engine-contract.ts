// The Engine contract (kernel-bridge/src/engine.ts) as one suite that every
// engine's `<engine>-contract.test.ts` runs with a fixture: how to start a
// fresh engine holding given services, and addresses that engine can use.
//
// Order is not part of the contract: IPVS lists services in hash order and
// nftables by address, so the suite compares services and destinations sorted
// by address.
//
// Most engines create services through apply() (`add-service`); `startWithOps`
// builds their `start`. Engines whose services are configured elsewhere
// (HAProxy: backends live in haproxy.cfg) set `managesServices: false` and
// start an engine that already has them; the suite then checks that
// add-service and remove-service reject as unsupported and change nothing.
import test, { type ExecutionContext } from 'ava';
import {
  ConflictError,
  UnknownTargetError,
  UnsupportedError,
  WeightRangeError,
  type Engine,
  type EngineOp,
  type Observation,
  type ObservedDestination,
} from '@loadfeed/kernel-bridge';
import type { RealEngineGate } from '../helpers/real-engine.js';

export interface EngineFixture {
  readonly name: string;
  /** Real engines: runs, skips or fails the suite by prerequisites (test/helpers/real-engine.ts). */
  readonly gate?: RealEngineGate;
  /** True when apply() creates and removes services; false when they come from the engine's own configuration. */
  readonly managesServices: boolean;
  /**
   * A fresh engine that has exactly `services` (in that order), none with
   * destinations. The suite closes the engine at teardown; anything else the
   * fixture starts (processes, files, namespaces) it tears down itself.
   */
  start(t: ExecutionContext, services: readonly string[]): Promise<Engine>;
  /** In the engine's canonical spelling, as `observe()` reports them. */
  readonly addresses: {
    readonly services: readonly [string, string];
    readonly unknownService: string;
    readonly destinations: readonly [string, string];
    readonly unknownDestination: string;
  };
}

/** `start` for engines that create services themselves: a new engine, then one add-service per address. */
export function startWithOps(create: () => Engine | Promise<Engine>): EngineFixture['start'] {
  return async (_t, services) => {
    const engine = await create();
    try {
      await engine.apply(services.map((address) => ({ op: 'add-service', service: { address } })));
    } catch (error) {
      await engine.close();
      throw error;
    }
    return engine;
  };
}

export function contractSuite(fixture: EngineFixture): void {
  const { services, unknownService, destinations, unknownDestination } = fixture.addresses;
  const [s1, s2] = services;
  const [d1, d2] = destinations;
  const run = fixture.gate?.test ?? ((title: string, body: (t: ExecutionContext) => Promise<void>) => test(title, body));
  const title = (what: string): string => `${fixture.name}: ${what}`;

  /** A fresh engine with `services`, closed at teardown. */
  async function start(t: ExecutionContext, addresses: readonly string[]): Promise<Engine> {
    const engine = await fixture.start(t, addresses);
    t.teardown(() => engine.close());
    return engine;
  }

  /** A fresh engine with s1 → d1 (weight 1), d2 (weight 2). */
  async function seeded(t: ExecutionContext): Promise<Engine> {
    const engine = await start(t, [s1]);
    await engine.apply([
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
    t.deepEqual(await (await start(t, [])).observe(), { services: [] });
    const engine = await start(t, [s1, s2]);
    await engine.apply([
      { op: 'add-destination', service: s1, destination: d1, weight: 1 },
      { op: 'add-destination', service: s1, destination: d2, weight: 2 },
    ]);
    const observed = sorted(await engine.observe());
    t.deepEqual(
      observed.services.map((s) => s.address),
      [s1, s2].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    const first = observed.services.find((s) => s.address === s1);
    const second = observed.services.find((s) => s.address === s2);
    t.deepEqual(first?.destinations.map(identity), sortedByAddress([
      { address: d1, weight: 1, up: true },
      { address: d2, weight: 2, up: true },
    ]));
    t.deepEqual(second?.destinations, []);
    for (const s of observed.services) t.true(s.scheduler.length > 0, 'a scheduler name is reported');
    for (const d of first?.destinations ?? []) {
      for (const counter of [d.activeConnections, d.inactiveConnections, d.totalConnections, d.maxConnections ?? null]) {
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
    const once = await weightsAndState(engine);
    await engine.apply(batch);
    t.deepEqual(await weightsAndState(engine), once);
    await engine.apply([]);
    t.deepEqual(await weightsAndState(engine), once);
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
      ...(fixture.managesServices ? [{ op: 'remove-service' as const, service: unknownService }] : []),
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
    const [service] = sorted(await engine.observe()).services;
    t.deepEqual(service?.destinations.map(identity), sortedByAddress([
      { address: d1, weight: 0, up: true },
      { address: d2, weight: 2, up: true },
    ]));
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
          ...(fixture.managesServices ? [{ op: 'add-service' as const, service: { address: s2 } }] : []),
          {
            op: 'add-destination',
            service: fixture.managesServices ? s2 : s1,
            destination: unknownDestination,
            weight: 1,
          },
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
    if (fixture.managesServices) {
      const service = await t.throwsAsync(engine.apply([{ op: 'add-service', service: { address: s1 } }]), {
        instanceOf: ConflictError,
        message: (m) => m.includes(s1),
      });
      t.is(service?.code, 'BRIDGE_CONFLICT');
    }
    const destination = await t.throwsAsync(
      engine.apply([setWeight(d2, 5), { op: 'add-destination', service: s1, destination: d1, weight: 3 }]),
      { instanceOf: ConflictError, message: (m) => m.includes(d1) },
    );
    t.is(destination?.code, 'BRIDGE_CONFLICT');
    t.deepEqual(await weights(engine), { [s1]: { [d1]: 1, [d2]: 5 } });
  });

  run(title('remove-destination takes effect'), async (t) => {
    const engine = await start(t, [s1, s2]);
    await engine.apply([
      { op: 'add-destination', service: s1, destination: d1, weight: 1 },
      { op: 'add-destination', service: s1, destination: d2, weight: 2 },
      { op: 'add-destination', service: s2, destination: d2, weight: 1 },
      { op: 'remove-destination', service: s1, destination: d1 },
    ]);
    t.deepEqual(await weights(engine), { [s1]: { [d2]: 2 }, [s2]: { [d2]: 1 } });
  });

  if (fixture.managesServices) {
    run(title('remove-service takes effect and frees the address'), async (t) => {
      const engine = await seeded(t);
      await engine.apply([
        { op: 'add-service', service: { address: s2 } },
        { op: 'add-destination', service: s2, destination: d2, weight: 1 },
      ]);
      await engine.apply([{ op: 'remove-service', service: s1 }]);
      t.deepEqual(await weights(engine), { [s2]: { [d2]: 1 } });
      await engine.apply([{ op: 'add-service', service: { address: s1 } }]);
      t.deepEqual(await weights(engine), { [s2]: { [d2]: 1 }, [s1]: {} });
    });
  } else {
    run(title('add-service and remove-service reject as unsupported and change nothing'), async (t) => {
      const engine = await seeded(t);
      const before = await weightsAndState(engine);
      const ops: EngineOp[] = [
        { op: 'add-service', service: { address: s2 } },
        { op: 'remove-service', service: s1 },
      ];
      for (const op of ops) {
        const error = await t.throwsAsync(engine.apply([op]), { instanceOf: UnsupportedError });
        t.is(error?.code, 'BRIDGE_UNSUPPORTED', op.op);
      }
      t.deepEqual(await weightsAndState(engine), before);
    });
  }
}

/** Everything observe() reports except live counters, which real engines may move between two reads. */
async function weightsAndState(engine: Engine): Promise<unknown> {
  const observed = sorted(await engine.observe());
  return observed.services.map((s) => ({
    address: s.address,
    scheduler: s.scheduler,
    destinations: s.destinations.map((d) => ({ ...identity(d), maxConnections: d.maxConnections })),
  }));
}

function sortedByAddress<T extends { readonly address: string }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

/** Services and their destinations sorted by address. */
function sorted(observation: Observation): Observation {
  return {
    services: sortedByAddress(observation.services).map((s) => ({ ...s, destinations: sortedByAddress(s.destinations) })),
  };
}

function identity(d: ObservedDestination): Pick<ObservedDestination, 'address' | 'weight' | 'up'> {
  return { address: d.address, weight: d.weight, up: d.up };
}
