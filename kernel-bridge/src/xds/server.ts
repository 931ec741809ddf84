// The ADS server (envoy.service.discovery.v3.AggregatedDiscoveryService,
// state of the world): the only file of the engine that touches gRPC. Per
// stream and type it keeps what the client subscribed to, what it was sent,
// and what it ACKed, following the xDS protocol:
// - a response carries a nonce; the client's next request for the type
//   names it and ACKs (no error_detail) or NACKs (error_detail) it; a request
//   naming an older nonce is stale and ignored;
// - a NACK is counted and reported, the version is not resent: the client
//   keeps its last good config until the next change;
// - at most one response per type is in flight per stream: changes arriving
//   meanwhile are merged and sent when the client answers, so a slow client
//   gets the latest state, never a queue;
// - Listener and Cluster responses carry every subscribed resource (their
//   absence means deletion); RouteConfiguration and ClusterLoadAssignment
//   responses carry only the ones that changed.
import * as grpc from '@grpc/grpc-js';
import type { CachedResource, Publication, XdsModel } from './model.js';
import { CLUSTER_TYPE, LISTENER_TYPE, RESOURCE_TYPES, type ResourceType, type XdsTypes } from './protos.js';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const ADS_STREAM_PATH = `/${ADS_SERVICE}/StreamAggregatedResources`;
/** Types where an empty first request subscribes to everything (xDS "wildcard"). */
const WILDCARD_TYPES: ReadonlySet<ResourceType> = new Set([LISTENER_TYPE, CLUSTER_TYPE]);

/** What a client sent, as decoded (protobufjs camelCase). */
interface DiscoveryRequest {
  readonly versionInfo?: string;
  readonly node?: { readonly id?: string; readonly cluster?: string } | null;
  readonly resourceNames?: readonly string[];
  readonly typeUrl?: string;
  readonly responseNonce?: string;
  readonly errorDetail?: { readonly code?: number; readonly message?: string } | null;
}

export interface XdsTypeStatus {
  readonly typeUrl: ResourceType;
  /** `version_info` of the last response sent; null before the first. */
  readonly sentVersion: string | null;
  /** Last version the client ACKed; null before its first ACK. */
  readonly ackedVersion: string | null;
  /** Resources subscribed to; null = all (wildcard). */
  readonly subscribed: readonly string[] | null;
  readonly nacks: number;
  /** The client's error_detail of its last NACK. */
  readonly lastNack: string | null;
}

export interface XdsClientStatus {
  /** Stream number, unique within this server's life. */
  readonly stream: number;
  /** `node.id` of the client's bootstrap; empty if it sent none. */
  readonly node: string;
  readonly peer: string;
  readonly connectedAtMs: number;
  readonly types: readonly XdsTypeStatus[];
}

export type XdsEvent =
  | { readonly kind: 'connect' | 'disconnect'; readonly stream: number; readonly node: string; readonly peer: string }
  | {
      readonly kind: 'nack';
      readonly stream: number;
      readonly node: string;
      readonly peer: string;
      readonly typeUrl: string;
      readonly version: string;
      readonly message: string;
    };

export interface XdsServerCounters {
  readonly responses: number;
  readonly nacks: number;
  /** Streams opened since start. */
  readonly streams: number;
}

interface TypeState {
  requested: boolean;
  subscribed: Set<string> | null;
  /** Name → publication version last sent on this stream. */
  readonly sent: Map<string, number>;
  nonce: string | null;
  inFlight: boolean;
  pending: boolean;
  sentVersion: string | null;
  ackedVersion: string | null;
  nacks: number;
  lastNack: string | null;
}

interface Stream {
  readonly id: number;
  node: string;
  readonly peer: string;
  readonly connectedAtMs: number;
  readonly call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>;
  readonly types: Map<ResourceType, TypeState>;
  nonces: number;
}

export class AdsServer {
  private readonly streams = new Set<Stream>();
  private ready = false;
  private nextStream = 1;
  private counters = { responses: 0, nacks: 0, streams: 0 };

  constructor(
    private readonly model: XdsModel,
    private readonly types: XdsTypes,
    private readonly onEvent: (event: XdsEvent) => void,
    private readonly admit: (peer: string) => string | null,
  ) {}

  /** The service definition and handler to add to a grpc.Server. */
  service(): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
    const request = this.types.discoveryRequest;
    const definition: grpc.ServiceDefinition = {
      StreamAggregatedResources: {
        path: ADS_STREAM_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: (m: DiscoveryRequest) => Buffer.from(request.encode(request.fromObject(m)).finish()),
        requestDeserialize: (b: Buffer) => request.toObject(request.decode(b), { defaults: false }) as DiscoveryRequest,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    };
    return {
      definition,
      implementation: { StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) => this.open(call) },
    };
  }

  /**
   * Until the engine has a state to serve (loaded or first applied), requests
   * are held: answering "no such cluster" to a client after a restart would
   * make it drop endpoints it could still use.
   */
  markReady(): void {
    if (this.ready) return;
    this.ready = true;
    for (const stream of this.streams) for (const type of stream.types.keys()) this.flush(stream, type, true);
  }

  /** Send each stream what a publication changed for it. */
  publish(publication: Publication): void {
    for (const stream of this.streams) {
      for (const type of publication.changes.keys()) {
        if (stream.types.get(type)?.requested === true) this.flush(stream, type, false);
      }
    }
  }

  clients(): XdsClientStatus[] {
    return [...this.streams].map((s) => ({
      stream: s.id,
      node: s.node,
      peer: s.peer,
      connectedAtMs: s.connectedAtMs,
      types: RESOURCE_TYPES.filter((t) => s.types.has(t)).map((t) => {
        const st = s.types.get(t) as TypeState;
        return {
          typeUrl: t,
          sentVersion: st.sentVersion,
          ackedVersion: st.ackedVersion,
          subscribed: st.subscribed === null ? null : [...st.subscribed],
          nacks: st.nacks,
          lastNack: st.lastNack,
        };
      }),
    }));
  }

  counts(): XdsServerCounters {
    return { ...this.counters };
  }

  /** End every stream (the clients reconnect, to this server or its successor). */
  endAll(): void {
    for (const stream of this.streams) stream.call.end();
    this.streams.clear();
  }

  private open(call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>): void {
    const refusal = this.admit(call.getPeer());
    if (refusal !== null) {
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: refusal });
      return;
    }
    const stream: Stream = {
      id: this.nextStream++,
      node: '',
      peer: call.getPeer(),
      connectedAtMs: Date.now(),
      call,
      types: new Map(),
      nonces: 0,
    };
    this.streams.add(stream);
    this.counters.streams++;
    let announced = false;
    call.on('data', (request: DiscoveryRequest) => {
      if (!announced) {
        stream.node = request.node?.id ?? '';
        announced = true;
        this.onEvent({ kind: 'connect', stream: stream.id, node: stream.node, peer: stream.peer });
      }
      this.request(stream, request);
    });
    const close = (): void => {
      if (!this.streams.delete(stream)) return;
      this.onEvent({ kind: 'disconnect', stream: stream.id, node: stream.node, peer: stream.peer });
    };
    call.on('end', () => {
      close();
      call.end();
    });
    call.on('cancelled', close);
    call.on('error', close);
  }

  private request(stream: Stream, request: DiscoveryRequest): void {
    const type = request.typeUrl as ResourceType;
    if (!RESOURCE_TYPES.includes(type)) return; // a type this server does not serve (e.g. SDS): nothing to say
    let state = stream.types.get(type);
    if (state === undefined) {
      state = {
        requested: false,
        subscribed: new Set(),
        sent: new Map(),
        nonce: null,
        inFlight: false,
        pending: false,
        sentVersion: null,
        ackedVersion: null,
        nacks: 0,
        lastNack: null,
      };
      stream.types.set(type, state);
    }
    const nonce = request.responseNonce ?? '';
    if (nonce !== '' && nonce !== state.nonce) return; // stale: a newer response is on its way to the client
    if (nonce !== '') {
      state.inFlight = false;
      const detail = request.errorDetail;
      if (detail !== undefined && detail !== null) {
        state.nacks++;
        this.counters.nacks++;
        state.lastNack = detail.message ?? `code ${detail.code ?? 0}`;
        this.onEvent({
          kind: 'nack',
          stream: stream.id,
          node: stream.node,
          peer: stream.peer,
          typeUrl: type,
          version: state.sentVersion ?? '',
          message: state.lastNack,
        });
      } else {
        state.ackedVersion = request.versionInfo ?? '';
      }
    }
    const first = !state.requested;
    state.requested = true;
    const names = request.resourceNames ?? [];
    const wildcard = names.includes('*') || (WILDCARD_TYPES.has(type) && names.length === 0 && (first || state.subscribed === null));
    const subscribed = wildcard ? null : new Set(names.filter((n) => n !== '*'));
    const changed = !sameSubscription(state.subscribed, subscribed);
    state.subscribed = subscribed;
    if (subscribed !== null) for (const name of state.sent.keys()) if (!subscribed.has(name)) state.sent.delete(name);
    if (first || changed || state.pending) this.flush(stream, type, first || changed);
  }

  /**
   * Send the type's news on this stream, if any and nothing is in flight.
   * `subscriptionChanged` makes Listener/Cluster answer even with no change
   * (the client must learn what exists).
   */
  private flush(stream: Stream, type: ResourceType, subscriptionChanged: boolean): void {
    const state = stream.types.get(type) as TypeState;
    if (!this.ready || state.inFlight) {
      state.pending = true;
      return;
    }
    state.pending = false;
    const served = this.model.served(type);
    const wanted: CachedResource[] = [];
    if (state.subscribed === null) wanted.push(...served.values());
    else for (const name of state.subscribed) {
      const r = served.get(name);
      if (r !== undefined) wanted.push(r);
    }
    const changed = wanted.filter((r) => state.sent.get(r.name) !== r.version);
    let send: CachedResource[];
    if (WILDCARD_TYPES.has(type)) {
      const removed = [...state.sent.keys()].some((name) => !served.has(name));
      if (changed.length === 0 && !removed && !subscriptionChanged) return;
      send = wanted;
      state.sent.clear();
    } else {
      if (changed.length === 0) return;
      send = changed;
    }
    for (const r of send) state.sent.set(r.name, r.version);
    const nonce = String(++stream.nonces);
    const versionInfo = String(this.model.typeVersion(type));
    const header = this.types.discoveryResponse.encode({ versionInfo, typeUrl: type, nonce }).finish();
    state.nonce = nonce;
    state.sentVersion = versionInfo;
    state.inFlight = true;
    this.counters.responses++;
    stream.call.write(Buffer.concat([header, ...send.map((r) => r.entry)]));
  }
}

function sameSubscription(a: Set<string> | null, b: Set<string> | null): boolean {
  if (a === null || b === null) return a === b;
  return a.size === b.size && [...a].every((n) => b.has(n));
}
