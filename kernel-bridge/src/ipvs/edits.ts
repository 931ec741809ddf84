// From engine ops to IPVS edits, checked against a fresh read of the kernel:
// pure, shared by both drivers (netlink and ipvsadm), so both accept and
// refuse the same batches with the same errors.
//
// IPVS_CMD_SET_DEST (and `ipvsadm -e`) replace every setting of a destination:
// what the request leaves out is reset (the forwarding method to its default,
// the thresholds to 0, a GUE tunnel to IPIP). So a weight change carries the
// settings just read, with only the weight (and the upper threshold, when the
// op gives one) changed.
import { ConflictError, UnknownTargetError, UnsupportedError, type BridgeError } from '../errors.js';
import type { EngineOp } from '../model.js';
import { checkMaxConnections } from '../op-checks.js';
import {
  formatDestinationKey,
  formatServiceKey,
  parseDestinationKey,
  parseServiceKey,
  type IpvsDestinationKey,
  type IpvsDestinationSettings,
  type IpvsForwardMethod,
  type IpvsServiceKey,
  type IpvsServiceSettings,
  type IpvsServiceState,
} from './model.js';

/** One change to send to the kernel; `index` is the op's position in the batch. */
export type IpvsEdit =
  | {
      readonly kind: 'add-service';
      readonly index: number;
      readonly service: IpvsServiceKey;
      readonly settings: IpvsServiceSettings;
    }
  | { readonly kind: 'remove-service'; readonly index: number; readonly service: IpvsServiceKey }
  | {
      readonly kind: 'add-destination' | 'set-destination';
      readonly index: number;
      readonly service: IpvsServiceKey;
      readonly destination: IpvsDestinationKey;
      readonly settings: IpvsDestinationSettings;
    }
  | {
      readonly kind: 'remove-destination';
      readonly index: number;
      readonly service: IpvsServiceKey;
      readonly destination: IpvsDestinationKey;
    };

/** An op with its addresses parsed and put in canonical form. */
export type IpvsStep =
  | { readonly op: 'add-service'; readonly service: IpvsServiceKey; readonly scheduler: string | undefined }
  | { readonly op: 'remove-service'; readonly service: IpvsServiceKey }
  | {
      readonly op: 'add-destination' | 'set-weight';
      readonly service: IpvsServiceKey;
      readonly destination: IpvsDestinationKey;
      readonly weight: number;
      /** Upper connection threshold to set (0 = no limit); undefined keeps what the kernel has. */
      readonly maxConnections: number | undefined;
    }
  | { readonly op: 'remove-destination'; readonly service: IpvsServiceKey; readonly destination: IpvsDestinationKey };

export interface EditDefaults {
  readonly scheduler: string;
  readonly forward: IpvsForwardMethod;
}

export interface EditPlan {
  /** Edits to send, in op order. */
  readonly edits: readonly IpvsEdit[];
  /** Why op number `edits.length`'s successor cannot apply; null when every op can. */
  readonly error: BridgeError | null;
}

const SCHEDULER_NAME = /^[a-z][a-z0-9_]{0,14}$/;

/** Parse every address of a batch first, so a typo rejects the batch before anything is applied. */
export function compileSteps(ops: readonly EngineOp[]): IpvsStep[] {
  return ops.map((op): IpvsStep => {
    switch (op.op) {
      case 'add-service': {
        const scheduler = op.service.scheduler;
        if (scheduler !== undefined && !SCHEDULER_NAME.test(scheduler)) {
          throw new UnsupportedError(
            `add-service "${op.service.address}": scheduler "${scheduler}" is not an IPVS scheduler name (rr, wrr, wlc, lc, sh, mh…)`,
          );
        }
        return { op: op.op, service: parseServiceKey(op.service.address), scheduler };
      }
      case 'remove-service':
        return { op: op.op, service: parseServiceKey(op.service) };
      case 'add-destination':
      case 'set-weight':
        return {
          op: op.op,
          service: parseServiceKey(op.service),
          destination: parseDestinationKey(op.destination),
          weight: op.weight,
          maxConnections: op.op === 'set-weight' ? checkMaxConnections(op) : undefined,
        };
      case 'remove-destination':
        return { op: op.op, service: parseServiceKey(op.service), destination: parseDestinationKey(op.destination) };
    }
  });
}

/** Names of the services a batch touches, to read only those. */
export function servicesOf(steps: readonly IpvsStep[]): Set<string> {
  return new Set(steps.map((s) => formatServiceKey(s.service)));
}

/**
 * The edits that carry out `steps` on `state` (what the kernel has now), up to
 * the first step that cannot apply; that step's error is returned with them.
 * A weight change that changes nothing is left out.
 */
export function planEdits(steps: readonly IpvsStep[], state: readonly IpvsServiceState[], defaults: EditDefaults): EditPlan {
  const services = new Map<string, { key: IpvsServiceKey; destinations: Map<string, IpvsDestinationSettings> }>();
  for (const { service, destinations } of state) {
    services.set(formatServiceKey(service.key), {
      key: service.key,
      destinations: new Map(destinations.map((d) => [formatDestinationKey(d.key), d.settings])),
    });
  }
  const edits: IpvsEdit[] = [];
  for (const [index, step] of steps.entries()) {
    const serviceName = formatServiceKey(step.service);
    const service = services.get(serviceName);
    if (step.op === 'add-service') {
      if (service !== undefined) return { edits, error: new ConflictError(`service "${serviceName}" exists already`) };
      const settings: IpvsServiceSettings = {
        scheduler: step.scheduler ?? defaults.scheduler,
        flags: 0,
        timeout: 0,
        // What ipvsadm sends: an all-ones IPv4 mask, a /128 IPv6 prefix.
        netmask: step.service.family === 'inet' ? 0xffffffff : 128,
        persistenceEngine: null,
      };
      services.set(serviceName, { key: step.service, destinations: new Map() });
      edits.push({ kind: 'add-service', index, service: step.service, settings });
      continue;
    }
    if (service === undefined) return { edits, error: new UnknownTargetError(`no service "${serviceName}"`) };
    if (step.op === 'remove-service') {
      services.delete(serviceName);
      edits.push({ kind: 'remove-service', index, service: step.service });
      continue;
    }
    const destinationName = formatDestinationKey(step.destination);
    const current = service.destinations.get(destinationName);
    switch (step.op) {
      case 'add-destination': {
        if (current !== undefined) {
          return {
            edits,
            error: new ConflictError(`service "${serviceName}" has destination "${destinationName}" already`),
          };
        }
        const problem = forwardProblem(defaults.forward, step.service, step.destination);
        if (problem !== null) {
          return { edits, error: new UnsupportedError(`add-destination "${serviceName}" "${destinationName}": ${problem}`) };
        }
        const settings: IpvsDestinationSettings = {
          forward: defaults.forward,
          weight: step.weight,
          upperThreshold: step.maxConnections ?? 0,
          lowerThreshold: 0,
          tunnel: null,
        };
        service.destinations.set(destinationName, settings);
        edits.push({ kind: 'add-destination', index, service: step.service, destination: step.destination, settings });
        continue;
      }
      case 'set-weight': {
        if (current === undefined) {
          return {
            edits,
            error: new UnknownTargetError(`service "${serviceName}" has no destination "${destinationName}"`),
          };
        }
        const settings = withWeight(current, step.weight, step.maxConnections);
        if (sameSettings(settings, current)) continue;
        service.destinations.set(destinationName, settings);
        edits.push({ kind: 'set-destination', index, service: step.service, destination: step.destination, settings });
        continue;
      }
      case 'remove-destination':
        if (current === undefined) {
          return {
            edits,
            error: new UnknownTargetError(`service "${serviceName}" has no destination "${destinationName}"`),
          };
        }
        service.destinations.delete(destinationName);
        edits.push({ kind: 'remove-destination', index, service: step.service, destination: step.destination });
        continue;
    }
  }
  return { edits, error: null };
}

/**
 * `current` with a new weight and, when given, a new upper threshold (0: no
 * limit). IPVS refuses a lower threshold above the upper one (ERANGE), so a
 * lower threshold that no longer fits is reset to 0 (IPVS then resumes
 * scheduling an overloaded destination below 3/4 of the upper threshold).
 */
function withWeight(
  current: IpvsDestinationSettings,
  weight: number,
  maxConnections: number | undefined,
): IpvsDestinationSettings {
  const upperThreshold = maxConnections ?? current.upperThreshold;
  const lowerThreshold = current.lowerThreshold > upperThreshold ? 0 : current.lowerThreshold;
  return { ...current, weight, upperThreshold, lowerThreshold };
}

function sameSettings(a: IpvsDestinationSettings, b: IpvsDestinationSettings): boolean {
  return (
    a.forward === b.forward &&
    a.weight === b.weight &&
    a.upperThreshold === b.upperThreshold &&
    a.lowerThreshold === b.lowerThreshold
  );
}

/**
 * Direct routing and tunnelling cannot map ports: the kernel would silently
 * replace the destination's port with the service's. Refuse instead, so what
 * observe() reports is what was added.
 */
function forwardProblem(forward: IpvsForwardMethod, service: IpvsServiceKey, destination: IpvsDestinationKey): string | null {
  if (forward === 'masq' || service.kind === 'fwmark') return null;
  if (destination.port === service.port) return null;
  return `forwarding method "${forward}" cannot map port ${service.port} to ${destination.port}; use the same port or forward "masq"`;
}

