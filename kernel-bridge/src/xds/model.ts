// The xds engine's state: services and their destinations as the poller set
// them, and the encoded xDS resources derived from them. Pure apart from
// protobuf encoding; the server (server.ts) only reads what publish() returns.
import { formatHostPort, parseHostPort } from '../address.js';
import { UnsupportedError } from '../errors.js';
import { weightOnly, type EngineOp, type Observation } from '../model.js';
import { assertNoDestination, assertNoService, destinationOf, serviceOf } from '../op-checks.js';
import {
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  RESOURCE_TYPES,
  ROUTE_TYPE,
  type ResourceType,
  type XdsTypes,
} from './protos.js';
import {
  DEFAULT_XDS_SCHEDULER,
  XDS_SCHEDULERS,
  clusterResource,
  listenerResource,
  loadAssignment,
  routeConfiguration,
  type XdsDestination,
} from './resources.js';

/** xDS resource names are the service names: `web` is reached as `xds:///web`. */
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface XdsService {
  readonly scheduler: string;
  /** Canonical HOST:PORT → destination, in the order added. */
  readonly destinations: Map<string, XdsDestination>;
}

/**
 * One resource as a client receives it: the bytes of field 2 (`resources`,
 * an Any) of a DiscoveryResponse, encoded once and concatenated into every
 * response that carries it (repeated fields of concatenated encodings merge).
 */
export interface CachedResource {
  readonly name: string;
  /** Publication that last changed it. */
  readonly version: number;
  readonly entry: Uint8Array;
}

export interface TypeChange {
  /** Resources new or different since the previous publication. */
  readonly updated: readonly CachedResource[];
  readonly removed: readonly string[];
}

export interface Publication {
  readonly version: number;
  /** Only the types with a change. */
  readonly changes: ReadonlyMap<ResourceType, TypeChange>;
}

export class XdsModel {
  readonly services = new Map<string, XdsService>();
  private readonly resources = new Map<ResourceType, Map<string, CachedResource>>(RESOURCE_TYPES.map((t) => [t, new Map()]));
  private readonly typeVersions = new Map<ResourceType, number>(RESOURCE_TYPES.map((t) => [t, 0]));
  /** Services whose destinations or weights changed since the last publication. */
  private readonly dirty = new Set<string>();
  private version = 0;

  constructor(private readonly types: XdsTypes) {}

  /** Check the whole batch's addresses and schedulers before anything is applied. */
  check(ops: readonly EngineOp[]): void {
    for (const op of ops) {
      if (op.op === 'add-service') {
        const { address, scheduler } = op.service;
        if (!SERVICE_NAME.test(address)) {
          throw new UnsupportedError(
            `add-service "${address}": an xDS service is named, not addressed: 1..63 characters of A-Z a-z 0-9 . _ - (it becomes the cluster, listener and route name, xds:///${address})`,
          );
        }
        if (scheduler !== undefined && !XDS_SCHEDULERS.has(scheduler)) {
          throw new UnsupportedError(`add-service "${address}": scheduler "${scheduler}" is not one of ${[...XDS_SCHEDULERS.keys()].join(', ')}`);
        }
      }
      if (op.op === 'add-destination') parseHostPort(op.destination);
    }
  }

  apply(op: EngineOp): void {
    switch (op.op) {
      case 'add-service':
        assertNoService(this.services, op.service.address);
        this.services.set(op.service.address, { scheduler: op.service.scheduler ?? DEFAULT_XDS_SCHEDULER, destinations: new Map() });
        this.dirty.add(op.service.address);
        return;
      case 'remove-service':
        serviceOf(this.services, op.service);
        this.services.delete(op.service);
        this.dirty.add(op.service);
        return;
      case 'add-destination': {
        const { destinations } = serviceOf(this.services, op.service);
        const address = parseHostPort(op.destination);
        const key = formatHostPort(address);
        assertNoDestination(destinations, op.service, key);
        destinations.set(key, { ...address, weight: op.weight });
        this.dirty.add(op.service);
        return;
      }
      case 'set-weight': {
        const { destinations } = serviceOf(this.services, op.service);
        const key = canonical(op.destination);
        const found = destinationOf(destinations, op.service, key);
        if (found.weight !== op.weight) {
          destinations.set(key, { ...found, weight: op.weight });
          this.dirty.add(op.service);
        }
        return;
      }
      case 'remove-destination': {
        const { destinations } = serviceOf(this.services, op.service);
        const key = canonical(op.destination);
        destinationOf(destinations, op.service, key);
        destinations.delete(key);
        this.dirty.add(op.service);
        return;
      }
    }
  }

  /**
   * Encode the services changed since the last call and report, per type,
   * which resources differ from what was served before (byte for byte), so a
   * cycle's changes reach clients as one response per type.
   */
  publish(): Publication | null {
    if (this.dirty.size === 0) return null;
    const version = this.version + 1;
    const changes = new Map<ResourceType, { updated: CachedResource[]; removed: string[] }>();
    for (const name of this.dirty) {
      const service = this.services.get(name);
      for (const type of RESOURCE_TYPES) {
        const message = service === undefined ? null : this.resourceOf(type, name, service);
        this.replace(type, name, message, version, changes);
      }
    }
    this.dirty.clear();
    if (changes.size === 0) return null;
    this.version = version;
    for (const type of changes.keys()) this.typeVersions.set(type, version);
    return { version, changes };
  }

  /** Resources of a type as served now. */
  served(type: ResourceType): ReadonlyMap<string, CachedResource> {
    return this.resources.get(type) as Map<string, CachedResource>;
  }

  /** `version_info` of a type: the publication that last changed it. */
  typeVersion(type: ResourceType): number {
    return this.typeVersions.get(type) ?? 0;
  }

  observe(): Observation {
    return {
      services: [...this.services].map(([address, service]) => ({
        address,
        scheduler: service.scheduler,
        destinations: [...service.destinations].map(([key, d]) => weightOnly(key, d.weight)),
      })),
    };
  }

  private resourceOf(type: ResourceType, name: string, service: XdsService): Uint8Array {
    const t = this.types;
    switch (type) {
      case LISTENER_TYPE:
        return encode(t.listener, listenerResource(t, name));
      case ROUTE_TYPE:
        return encode(t.routeConfiguration, routeConfiguration(name));
      case CLUSTER_TYPE:
        return encode(t.cluster, clusterResource(name, service.scheduler));
      case ENDPOINT_TYPE:
        return encode(t.loadAssignment, loadAssignment(name, [...service.destinations.values()]));
    }
  }

  private replace(
    type: ResourceType,
    name: string,
    message: Uint8Array | null,
    version: number,
    changes: Map<ResourceType, { updated: CachedResource[]; removed: string[] }>,
  ): void {
    const byName = this.resources.get(type) as Map<string, CachedResource>;
    const before = byName.get(name);
    const change = (): { updated: CachedResource[]; removed: string[] } => {
      let c = changes.get(type);
      if (c === undefined) changes.set(type, (c = { updated: [], removed: [] }));
      return c;
    };
    if (message === null) {
      if (before === undefined) return;
      byName.delete(name);
      change().removed.push(name);
      return;
    }
    const entry = this.types.discoveryResponse.encode({ resources: [{ type_url: type, value: message }] }).finish();
    if (before !== undefined && Buffer.compare(before.entry, entry) === 0) return;
    const resource = { name, version, entry };
    byName.set(name, resource);
    change().updated.push(resource);
  }
}

function encode(type: XdsTypes['cluster'], object: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(object)).finish();
}

function canonical(destination: string): string {
  try {
    return formatHostPort(parseHostPort(destination));
  } catch {
    return destination; // unknown either way: destinationOf names it
  }
}
