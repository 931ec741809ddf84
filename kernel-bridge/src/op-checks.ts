// Checks every engine runs on a batch of ops, so that all engines reject the
// same batches with the same errors (the contract in engine.ts).
import { ConflictError, UnknownTargetError, WeightRangeError } from './errors.js';
import type { EngineOp, WeightRange } from './model.js';

/** Reject the batch before anything is applied if any weight is not an integer in `range`. */
export function checkWeights(ops: readonly EngineOp[], range: WeightRange): void {
  for (const op of ops) {
    if (op.op !== 'add-destination' && op.op !== 'set-weight') continue;
    if (!Number.isInteger(op.weight) || op.weight < range.min || op.weight > range.max) {
      throw new WeightRangeError(
        `${op.op} "${op.service}" "${op.destination}": weight ${op.weight} must be an integer in ${range.min}..${range.max}`,
      );
    }
  }
}

export function serviceOf<S>(services: ReadonlyMap<string, S>, service: string): S {
  const found = services.get(service);
  if (found === undefined) throw new UnknownTargetError(`no service "${service}"`);
  return found;
}

export function destinationOf<D>(destinations: ReadonlyMap<string, D>, service: string, destination: string): D {
  const found = destinations.get(destination);
  if (found === undefined) throw new UnknownTargetError(`service "${service}" has no destination "${destination}"`);
  return found;
}

export function assertNoService(services: ReadonlyMap<string, unknown>, service: string): void {
  if (services.has(service)) throw new ConflictError(`service "${service}" exists already`);
}

export function assertNoDestination(
  destinations: ReadonlyMap<string, unknown>,
  service: string,
  destination: string,
): void {
  if (destinations.has(destination)) {
    throw new ConflictError(`service "${service}" has destination "${destination}" already`);
  }
}
