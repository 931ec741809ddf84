// Checks every engine runs on a batch of ops, so that all engines reject the
// same batches with the same errors (the contract in engine.ts).
import { ConflictError, ConnectionLimitError, UnknownTargetError, WeightRangeError } from './errors.js';
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

/**
 * The largest connection limit: HAProxy's maxconn is a C int, IPVS's upper
 * threshold a u32 that ipvsadm -x parses as an int; the fast path takes the same.
 */
export const MAX_CONNECTION_LIMIT = 2_147_483_647;

/**
 * set-weight's optional `maxConnections`: an integer in 0..MAX_CONNECTION_LIMIT,
 * 0 = no limit. Checked with the addresses, so a bad one rejects the batch
 * before anything is applied.
 */
export function checkMaxConnections(op: Extract<EngineOp, { op: 'set-weight' }>): number | undefined {
  const limit = op.maxConnections;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0 || limit > MAX_CONNECTION_LIMIT)) {
    throw new ConnectionLimitError(
      `set-weight "${op.service}" "${op.destination}": maxConnections ${limit} must be an integer in 0..${MAX_CONNECTION_LIMIT} (0 = no limit)`,
    );
  }
  return limit;
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
