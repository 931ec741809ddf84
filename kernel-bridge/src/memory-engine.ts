// The in-memory engine: the reference implementation of the Engine contract.
// It backs `--dry-run` (ops are checked and recorded, nothing is forwarded) and
// unit tests of the poller. Addresses are opaque strings, so it can stand in for
// any engine, including HAProxy's backend/server names.
import type { EngineDescriptor } from './descriptor.js';
import type { Engine } from './engine.js';
import { OptionError } from './errors.js';
import { weightOnly, type EngineOp, type Observation, type WeightRange } from './model.js';
import { assertNoDestination, assertNoService, checkWeights, destinationOf, serviceOf } from './op-checks.js';

export const MEMORY_ENGINE_KIND = 'memory';
/** Same range as IPVS weights in practice and the fast path. */
export const DEFAULT_MEMORY_WEIGHT_RANGE: WeightRange = { min: 0, max: 65535 };
/** Reported for services added without a scheduler, as IPVS does. */
export const DEFAULT_MEMORY_SCHEDULER = 'wlc';

export interface MemoryEngineOptions {
  /** Weights to accept, e.g. the range of the engine a dry run stands in for. */
  readonly weightRange?: WeightRange;
}

interface MemoryService {
  readonly scheduler: string;
  /** Destination address → weight, in the order added. */
  readonly weights: Map<string, number>;
}

export function createMemoryEngine(options: MemoryEngineOptions = {}): Engine {
  const weightRange = compileWeightRange(options.weightRange ?? DEFAULT_MEMORY_WEIGHT_RANGE);
  const services = new Map<string, MemoryService>();

  function applyOne(op: EngineOp): void {
    switch (op.op) {
      case 'add-service':
        assertNoService(services, op.service.address);
        services.set(op.service.address, {
          scheduler: op.service.scheduler ?? DEFAULT_MEMORY_SCHEDULER,
          weights: new Map(),
        });
        return;
      case 'remove-service':
        serviceOf(services, op.service);
        services.delete(op.service);
        return;
      case 'add-destination': {
        const { weights } = serviceOf(services, op.service);
        assertNoDestination(weights, op.service, op.destination);
        weights.set(op.destination, op.weight);
        return;
      }
      case 'set-weight': {
        const { weights } = serviceOf(services, op.service);
        destinationOf(weights, op.service, op.destination);
        weights.set(op.destination, op.weight);
        return;
      }
      case 'remove-destination': {
        const { weights } = serviceOf(services, op.service);
        destinationOf(weights, op.service, op.destination);
        weights.delete(op.destination);
        return;
      }
    }
  }

  return {
    kind: MEMORY_ENGINE_KIND,
    weightRange,
    async observe(): Promise<Observation> {
      return {
        services: [...services].map(([address, service]) => ({
          address,
          scheduler: service.scheduler,
          destinations: [...service.weights].map(([destination, weight]) => weightOnly(destination, weight)),
        })),
      };
    },
    async apply(ops) {
      checkWeights(ops, weightRange);
      for (const op of ops) applyOne(op);
    },
    async close() {},
  };
}

function compileWeightRange(range: WeightRange): WeightRange {
  if (!Number.isInteger(range.min) || !Number.isInteger(range.max) || range.min < 0 || range.min > range.max) {
    throw new OptionError(`weightRange ${range.min}..${range.max} must be integers with 0 <= min <= max`);
  }
  return { min: range.min, max: range.max };
}

/** The in-memory engine (tests, dry runs): any scheduler, no connection limits. */
export const MEMORY_ENGINE: EngineDescriptor<MemoryEngineOptions> = {
  kind: MEMORY_ENGINE_KIND,
  weightRange: DEFAULT_MEMORY_WEIGHT_RANGE,
  connectionLimits: false,
  ownsServicesByDefault: true,
  canCreateServices: true,
  create: (options) => createMemoryEngine(options),
};
