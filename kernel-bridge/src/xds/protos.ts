// The xDS v3 message types, from the descriptors generated at build time
// (scripts/generate-xds.mjs: the envoy API as @grpc/grpc-js-xds ships it).
// Reflection, not static code: the closure of Cluster and Listener is
// hundreds of envoy messages, of which the engine fills a handful of fields.
import protobuf from 'protobufjs';
import { descriptors } from '../../gen/xds-descriptors.js';

export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** Resource types the engine serves, by the type URL clients subscribe with. */
export const LISTENER_TYPE = `${TYPE_URL_PREFIX}envoy.config.listener.v3.Listener`;
export const ROUTE_TYPE = `${TYPE_URL_PREFIX}envoy.config.route.v3.RouteConfiguration`;
export const CLUSTER_TYPE = `${TYPE_URL_PREFIX}envoy.config.cluster.v3.Cluster`;
export const ENDPOINT_TYPE = `${TYPE_URL_PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`;
export type ResourceType = typeof LISTENER_TYPE | typeof ROUTE_TYPE | typeof CLUSTER_TYPE | typeof ENDPOINT_TYPE;
export const RESOURCE_TYPES: readonly ResourceType[] = [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE];

export interface XdsTypes {
  readonly root: protobuf.Root;
  readonly discoveryRequest: protobuf.Type;
  readonly discoveryResponse: protobuf.Type;
  readonly listener: protobuf.Type;
  readonly routeConfiguration: protobuf.Type;
  readonly cluster: protobuf.Type;
  readonly loadAssignment: protobuf.Type;
  readonly httpConnectionManager: protobuf.Type;
  readonly router: protobuf.Type;
}

let loaded: XdsTypes | null = null;

/** Resolved once per process, on first use (about 0.3 s), so other engines never pay for it. */
export function xdsTypes(): XdsTypes {
  if (loaded !== null) return loaded;
  const root = protobuf.Root.fromJSON(descriptors);
  const type = (name: string): protobuf.Type => root.lookupType(name);
  loaded = {
    root,
    discoveryRequest: type('envoy.service.discovery.v3.DiscoveryRequest'),
    discoveryResponse: type('envoy.service.discovery.v3.DiscoveryResponse'),
    listener: type('envoy.config.listener.v3.Listener'),
    routeConfiguration: type('envoy.config.route.v3.RouteConfiguration'),
    cluster: type('envoy.config.cluster.v3.Cluster'),
    loadAssignment: type('envoy.config.endpoint.v3.ClusterLoadAssignment'),
    httpConnectionManager: type('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
    router: type('envoy.extensions.filters.http.router.v3.Router'),
  };
  return loaded;
}

/**
 * `google.protobuf.Any` holding `message` of `type`. Its field is `type_url`,
 * not camelCase: protobufjs's bundled any.proto keeps the proto names.
 */
export function packAny(type: protobuf.Type, message: Record<string, unknown>): { type_url: string; value: Uint8Array } {
  const value = type.encode(type.fromObject(message)).finish();
  return { type_url: `${TYPE_URL_PREFIX}${type.fullName.slice(1)}`, value };
}
