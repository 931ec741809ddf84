// What the nftables engine holds, and how ops change it: pure. A service is
// `tcp VIP:PORT` (or udp, IPv4 or IPv6); its destinations are `IP:PORT` of the
// same family, each with a weight. The kernel holds this state itself (see
// script.ts for the layout, ruleset.ts for reading it back), so the engine
// keeps no copy: every apply() reads it, applies the ops here, and writes it.
import { formatHostPort, formatL4Address, parseHostPort, parseL4Address, type Protocol } from '../address.js';
import { ConflictError, UnknownTargetError, UnsupportedError, type BridgeError } from '../errors.js';
import { canonicalIp, parseIp } from '../ipvs/inet.js';
import type { EngineOp } from '../model.js';

export type NftFamily = 'ip' | 'ip6';

/** The only scheduler: `numgen random`, each new connection drawn by weight. */
export const NFTABLES_SCHEDULER = 'random';

export interface NftServiceKey {
  readonly protocol: Protocol;
  readonly family: NftFamily;
  /** Canonical IP text (RFC 5952 for IPv6). */
  readonly host: string;
  readonly port: number;
}

export interface NftDestination {
  /** Canonical IP text, same family as the service. */
  readonly host: string;
  readonly port: number;
  readonly weight: number;
}

export interface NftService {
  readonly key: NftServiceKey;
  /** Sorted by address (serviceAddress/destinationAddress order). */
  readonly destinations: readonly NftDestination[];
}

export function familyOfHost(host: string): NftFamily {
  return parseIp(host).length === 4 ? 'ip' : 'ip6';
}

/** Parse and canonicalise `tcp 192.0.2.10:80`; port 0 is refused. */
export function parseServiceAddress(text: string): NftServiceKey {
  const a = parseL4Address(text);
  const host = canonicalIp(a.host);
  return { protocol: a.protocol, family: familyOfHost(host), host, port: a.port };
}

export function serviceAddress(key: NftServiceKey): string {
  return formatL4Address({ protocol: key.protocol, host: key.host, port: key.port });
}

export function parseDestinationAddress(text: string): { host: string; port: number } {
  const a = parseHostPort(text);
  return { host: canonicalIp(a.host), port: a.port };
}

export function destinationAddress(d: { readonly host: string; readonly port: number }): string {
  return formatHostPort(d);
}

/** Services by address, destinations of each by address: the order observe() reports and the script is written in. */
export function sortServices(services: readonly NftService[]): NftService[] {
  return [...services]
    .map((s) => ({ key: s.key, destinations: [...s.destinations].sort((a, b) => compare(destinationAddress(a), destinationAddress(b))) }))
    .sort((a, b) => compare(serviceAddress(a.key), serviceAddress(b.key)));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An op with its addresses parsed and put in canonical form. */
export type NftStep =
  | { readonly op: 'add-service'; readonly key: NftServiceKey }
  | { readonly op: 'remove-service'; readonly key: NftServiceKey }
  | {
      readonly op: 'add-destination' | 'set-weight';
      readonly key: NftServiceKey;
      readonly host: string;
      readonly port: number;
      readonly weight: number;
    }
  | { readonly op: 'remove-destination'; readonly key: NftServiceKey; readonly host: string; readonly port: number };

/**
 * Parse every address of a batch, so a typo, a scheduler other than
 * `random` or a destination of the other IP family rejects the batch before
 * anything is applied. `maxConnections` is ignored: nftables has no limit here.
 */
export function compileSteps(ops: readonly EngineOp[]): NftStep[] {
  return ops.map((op): NftStep => {
    switch (op.op) {
      case 'add-service': {
        const scheduler = op.service.scheduler;
        if (scheduler !== undefined && scheduler !== NFTABLES_SCHEDULER) {
          throw new UnsupportedError(
            `add-service "${op.service.address}": the nftables engine's only scheduler is "${NFTABLES_SCHEDULER}" (numgen random), not "${scheduler}"`,
          );
        }
        return { op: op.op, key: parseServiceAddress(op.service.address) };
      }
      case 'remove-service':
        return { op: op.op, key: parseServiceAddress(op.service) };
      case 'add-destination':
      case 'set-weight':
      case 'remove-destination': {
        const key = parseServiceAddress(op.service);
        const destination = parseDestinationAddress(op.destination);
        if (familyOfHost(destination.host) !== key.family) {
          throw new UnsupportedError(
            `${op.op} "${op.service}" "${op.destination}": DNAT keeps the address family; an ${key.family === 'ip' ? 'IPv4' : 'IPv6'} ` +
              `service needs ${key.family === 'ip' ? 'IPv4' : 'IPv6'} destinations`,
          );
        }
        return op.op === 'remove-destination'
          ? { op: op.op, key, ...destination }
          : { op: op.op, key, ...destination, weight: op.weight };
      }
    }
  });
}

export interface NftPlan {
  /** The state after every step before the failing one, sorted (sortServices). */
  readonly services: readonly NftService[];
  /** How many steps applied. */
  readonly applied: number;
  /** Why step `applied` cannot apply; null when all did. */
  readonly error: BridgeError | null;
}

/** Apply `steps` to `state` in order, up to the first one that cannot apply. */
export function applySteps(state: readonly NftService[], steps: readonly NftStep[]): NftPlan {
  const services = new Map(
    state.map((s) => [serviceAddress(s.key), { key: s.key, destinations: new Map(s.destinations.map((d) => [destinationAddress(d), d])) }]),
  );
  const done = (applied: number, error: BridgeError | null): NftPlan => ({
    services: sortServices([...services.values()].map((s) => ({ key: s.key, destinations: [...s.destinations.values()] }))),
    applied,
    error,
  });
  for (const [index, step] of steps.entries()) {
    const name = serviceAddress(step.key);
    const service = services.get(name);
    if (step.op === 'add-service') {
      if (service !== undefined) return done(index, new ConflictError(`service "${name}" exists already`));
      services.set(name, { key: step.key, destinations: new Map() });
      continue;
    }
    if (service === undefined) return done(index, new UnknownTargetError(`no service "${name}"`));
    if (step.op === 'remove-service') {
      services.delete(name);
      continue;
    }
    const destination = destinationAddress(step);
    const exists = service.destinations.has(destination);
    if (step.op === 'add-destination' && exists) {
      return done(index, new ConflictError(`service "${name}" has destination "${destination}" already`));
    }
    if (step.op !== 'add-destination' && !exists) {
      return done(index, new UnknownTargetError(`service "${name}" has no destination "${destination}"`));
    }
    if (step.op === 'remove-destination') service.destinations.delete(destination);
    else service.destinations.set(destination, { host: step.host, port: step.port, weight: step.weight });
  }
  return done(steps.length, null);
}
