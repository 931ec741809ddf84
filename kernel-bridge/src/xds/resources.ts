// Pure: one loadfeed service → its four xDS resources, all named after the
// service, so `xds:///web` resolves Listener "web" → RouteConfiguration "web"
// → Cluster "web" → ClusterLoadAssignment "web". Objects here are protobufjs
// `fromObject` input (camelCase fields, enum names as strings).
import type { HostPort } from '../address.js';
import { packAny, type XdsTypes } from './protos.js';

/**
 * Cluster `lb_policy` per scheduler name. Only ring_hash is honoured by both
 * Envoy and proxyless gRPC with endpoint weights: gRPC's round_robin ignores
 * `load_balancing_weight`, and gRPC rejects least_request (a NACK). With no
 * hash policy in the route, both hash every request at random, so a ring
 * hash is weighted random picking.
 */
export const XDS_SCHEDULERS: ReadonlyMap<string, string> = new Map([
  ['ring_hash', 'RING_HASH'],
  ['round_robin', 'ROUND_ROBIN'],
  ['least_request', 'LEAST_REQUEST'],
]);
export const DEFAULT_XDS_SCHEDULER = 'ring_hash';
/** Ring entries: 4096 is grpc-js's default cap; at that size an endpoint's share is within about 1 % of its weight's. */
export const RING_SIZE = 4096;

export interface XdsDestination extends HostPort {
  /** The engine's weight; 0 = quiesced or drained (see loadAssignment). */
  readonly weight: number;
}

/** Both ADS: every resource comes over the one stream the client opened. */
const ADS_SOURCE = { ads: {}, resourceApiVersion: 'V3' };

export function clusterResource(name: string, scheduler: string): Record<string, unknown> {
  const lbPolicy = XDS_SCHEDULERS.get(scheduler);
  if (lbPolicy === undefined) throw new Error(`no xDS lb_policy for scheduler "${scheduler}"`);
  return {
    name,
    type: 'EDS',
    edsClusterConfig: { edsConfig: ADS_SOURCE, serviceName: name },
    lbPolicy,
    ...(lbPolicy === 'RING_HASH'
      ? { ringHashLbConfig: { hashFunction: 'XX_HASH', minimumRingSize: { value: RING_SIZE }, maximumRingSize: { value: RING_SIZE } } }
      : {}),
    // Envoy otherwise balances over every endpoint, drained ones included,
    // once fewer than half are healthy ("panic"). A drain is a decision, not
    // a failure: a drained server must get no new requests however many are
    // drained, as with every other engine at weight 0.
    commonLbConfig: { healthyPanicThreshold: { value: 0 } },
  };
}

/**
 * Every destination is an endpoint with its weight as `load_balancing_weight`.
 * Weight 0 (quiesced, drained) cannot be sent as such: xDS weights are >= 1
 * (Envoy rejects 0). It is sent as health status DRAINING with weight 1,
 * which Envoy and gRPC both exclude from new picks while existing
 * connections and calls finish, the engine contract's meaning of 0. It is not
 * removed: the client keeps the endpoint, the operator sees it draining in
 * the client's config dump, and a server coming back is a status flip.
 * One locality with weight 1: gRPC ignores a locality without a weight.
 */
export function loadAssignment(name: string, destinations: readonly XdsDestination[]): Record<string, unknown> {
  return {
    clusterName: name,
    endpoints: [
      {
        locality: {},
        loadBalancingWeight: { value: 1 },
        lbEndpoints: destinations.map((d) => ({
          endpoint: { address: { socketAddress: { address: d.host, portValue: d.port } } },
          healthStatus: d.weight === 0 ? 'DRAINING' : 'HEALTHY',
          loadBalancingWeight: { value: Math.max(1, d.weight) },
        })),
      },
    ],
  };
}

/** The route configuration a gRPC channel to `xds:///name` (or an Envoy using RDS) follows: every request to the cluster. */
export function routeConfiguration(name: string): Record<string, unknown> {
  return {
    name,
    virtualHosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster: name } }] }],
  };
}

/**
 * The listener a proxyless gRPC client looks up for `xds:///name`: an API
 * listener whose HTTP connection manager takes its routes from
 * RouteConfiguration `name` over ADS. Envoy does not accept API listeners
 * over LDS; Envoy uses the clusters (CDS, EDS) under its own listeners.
 */
export function listenerResource(types: XdsTypes, name: string): Record<string, unknown> {
  const router = packAny(types.router, {});
  const manager = packAny(types.httpConnectionManager, {
    statPrefix: name,
    rds: { configSource: ADS_SOURCE, routeConfigName: name },
    httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: router }],
  });
  return { name, apiListener: { apiListener: manager } };
}
