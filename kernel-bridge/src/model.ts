// What every engine speaks: services and their destinations (real servers),
// named by the engine's own address of them, and the operations that change
// them. Identity (the address strings) is kept apart from observed state
// (weights, connection counters), as cloudflare/ipvs does with Service vs
// ServiceExtended.

/**
 * The engine's address of a virtual service: `tcp 192.0.2.10:80` for IPVS,
 * nftables and the fast path; the backend name for HAProxy.
 */
export type ServiceAddress = string;

/**
 * The engine's address of one destination of a service: `192.0.2.21:8080`
 * (IPv6 as `[2001:db8::1]:8080`) for IPVS, nftables and the fast path; the
 * server name for HAProxy.
 */
export type DestinationAddress = string;

export interface ObservedDestination {
  readonly address: DestinationAddress;
  /** Current weight in the engine's own range (see `Engine.weightRange`). */
  readonly weight: number;
  /** Connections being forwarded now; null when the engine cannot tell. */
  readonly activeConnections: number | null;
  /** Connections finished or idle but still tracked (IPVS InActConn); null when not applicable. */
  readonly inactiveConnections: number | null;
  /** Total connections forwarded since the destination was added; null when unknown. */
  readonly totalConnections: number | null;
  /**
   * Connection limit in force (HAProxy maxconn, IPVS upper threshold); 0 means
   * no limit; null where the engine has no connection limits.
   */
  readonly maxConnections: number | null;
  /** False while the engine considers the destination unusable (e.g. it refused a connection). */
  readonly up: boolean;
}

export interface ObservedService {
  readonly address: ServiceAddress;
  /** Scheduler in force, in the engine's own words (`wlc`, `wrr`, `roundrobin`). */
  readonly scheduler: string;
  readonly destinations: readonly ObservedDestination[];
}

export interface Observation {
  readonly services: readonly ObservedService[];
}

export interface ServiceSpec {
  readonly address: ServiceAddress;
  /** Scheduler name in the engine's own words; the engine's default when omitted. */
  readonly scheduler?: string;
}

export type EngineOp =
  | { readonly op: 'add-service'; readonly service: ServiceSpec }
  | { readonly op: 'remove-service'; readonly service: ServiceAddress }
  | {
      readonly op: 'add-destination';
      readonly service: ServiceAddress;
      readonly destination: DestinationAddress;
      readonly weight: number;
    }
  | {
      readonly op: 'set-weight';
      readonly service: ServiceAddress;
      readonly destination: DestinationAddress;
      readonly weight: number;
      /**
       * Connection limit where the engine has one: HAProxy maxconn, IPVS upper
       * threshold; omitted = unchanged. A non-negative integer, 0 = no limit.
       * Engines without limits ignore it.
       */
      readonly maxConnections?: number;
    }
  | { readonly op: 'remove-destination'; readonly service: ServiceAddress; readonly destination: DestinationAddress };

export interface WeightRange {
  readonly min: number;
  readonly max: number;
}

/**
 * A destination of an engine that knows its weight and nothing else (no
 * connection counters, no limits, never down): memory, nftables, xds.
 */
export function weightOnly(address: DestinationAddress, weight: number): ObservedDestination {
  return {
    address,
    weight,
    activeConnections: null,
    inactiveConnections: null,
    totalConnections: null,
    maxConnections: null,
    up: true,
  };
}
