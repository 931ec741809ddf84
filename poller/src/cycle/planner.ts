// Pure planning: (desired, observed) → the engine operations that make the
// engine match the policy, and nothing else. Weights are written only when
// they differ; services the policy does not name are never touched.
// Called again on every cycle, so multi-step changes (drain, then remove)
// complete over successive cycles (those planning whole services).
import type { EngineOp, Observation, ObservedDestination, ObservedService } from '@loadfeed/kernel-bridge';

export interface DesiredService {
  readonly address: string;
  readonly scheduler: string | null;
  /** The poller creates and deletes this service and its destinations (fast path, memory). */
  readonly owned: boolean;
  /**
   * `destinations` holds only the servers whose decision changed since the
   * last plan (an incremental cycle): the others stand, and nothing is
   * created or removed.
   */
  readonly partial?: boolean;
  readonly destinations: readonly {
    readonly address: string;
    readonly weight: number;
    /** Connection limit to set (0 = none), where the policy drives one; null or undefined leaves it alone. */
    readonly maxConnections?: number | null;
  }[];
}

export function plan(desired: readonly DesiredService[], observed: Observation): EngineOp[] {
  const ops: EngineOp[] = [];
  const byAddress = new Map(observed.services.map((s) => [s.address, s]));
  for (const want of desired) {
    const have = byAddress.get(want.address);
    if (!have) {
      if (!want.owned || want.partial === true) continue; // not ours to create (the engine reports it missing), or not all of it known here
      ops.push({ op: 'add-service', service: want.scheduler ? { address: want.address, scheduler: want.scheduler } : { address: want.address } });
      for (const d of want.destinations) ops.push({ op: 'add-destination', service: want.address, destination: d.address, weight: d.weight });
      continue;
    }
    const current = destinationsByAddress(have);
    for (const d of want.destinations) {
      const now = current.get(d.address);
      if (now === undefined) {
        if (want.owned) ops.push({ op: 'add-destination', service: want.address, destination: d.address, weight: d.weight });
        continue;
      }
      const limit = d.maxConnections ?? null;
      const limitChanged = limit !== null && (now.maxConnections ?? 0) !== limit;
      if (now.weight !== d.weight || limitChanged) {
        ops.push({
          op: 'set-weight',
          service: want.address,
          destination: d.address,
          weight: d.weight,
          ...(limitChanged ? { maxConnections: limit } : {}),
        });
      }
    }
    if (want.owned && want.partial !== true) {
      const wanted = new Set(want.destinations.map((d) => d.address));
      // A destination the policy dropped is drained first (weight 0) and
      // removed once it has no connections left.
      for (const d of have.destinations) {
        if (wanted.has(d.address)) continue;
        if (d.weight !== 0) ops.push({ op: 'set-weight', service: want.address, destination: d.address, weight: 0 });
        else if (!d.activeConnections) ops.push({ op: 'remove-destination', service: want.address, destination: d.address });
      }
    }
  }
  return ops;
}

/**
 * What the engine holds once it has accepted `ops`, given it held
 * `observed`: lets cycles between two reads plan against the engine's
 * state without reading it again (reads of 10,000 destinations every cycle
 * dominated a busy poller). Connection counts stay as last read, so a
 * drained destination is removed only once a read shows it idle. Services
 * no op touches are the same objects as in `observed` (their indexes stay
 * valid, see destinationsByAddress).
 */
export function afterOps(observed: Observation, ops: readonly EngineOp[]): Observation {
  if (ops.length === 0) return observed;
  type Draft = Omit<ObservedService, 'destinations'> & { destinations: Map<string, ObservedDestination> };
  // Every service in order (null: added by an op), and drafts of those the ops change.
  const services = new Map<string, ObservedService | null>(observed.services.map((s) => [s.address, s]));
  const drafts = new Map<string, Draft>();
  const draftOf = (address: string): Draft | undefined => {
    let draft = drafts.get(address);
    const s = services.get(address);
    if (draft === undefined && s) {
      draft = { ...s, destinations: new Map(destinationsByAddress(s)) };
      drafts.set(address, draft);
    }
    return draft;
  };
  for (const op of ops) {
    if (op.op === 'add-service') {
      if (!services.has(op.service.address)) services.set(op.service.address, null);
      drafts.set(op.service.address, { address: op.service.address, scheduler: op.service.scheduler ?? '', destinations: new Map() });
      continue;
    }
    if (op.op === 'remove-service') {
      services.delete(op.service);
      drafts.delete(op.service);
      continue;
    }
    const service = draftOf(op.service);
    if (!service) continue;
    const d = service.destinations.get(op.destination);
    if (op.op === 'remove-destination') service.destinations.delete(op.destination);
    else if (op.op === 'add-destination' || d === undefined) {
      service.destinations.set(op.destination, { address: op.destination, weight: op.weight, activeConnections: null, inactiveConnections: null, totalConnections: null, maxConnections: null, up: true });
    } else {
      service.destinations.set(op.destination, { ...d, weight: op.weight, ...(op.maxConnections !== undefined ? { maxConnections: op.maxConnections } : {}) });
    }
  }
  const out: ObservedService[] = [];
  for (const [address, kept] of services) {
    const draft = drafts.get(address);
    if (draft === undefined) {
      if (kept) out.push(kept);
      continue;
    }
    const service = { ...draft, destinations: [...draft.destinations.values()] };
    indexes.set(service, draft.destinations);
    out.push(service);
  }
  return { services: out };
}

const indexes = new WeakMap<ObservedService, ReadonlyMap<string, ObservedDestination>>();

/**
 * An observed service's destinations by address, built once per service
 * object (observations are immutable): reconcile and plan share it, and
 * afterOps hands on the index of every service it changes.
 */
export function destinationsByAddress(service: ObservedService): ReadonlyMap<string, ObservedDestination> {
  let index = indexes.get(service);
  if (!index) {
    index = new Map(service.destinations.map((d) => [d.address, d]));
    indexes.set(service, index);
  }
  return index;
}
