// The xds engine: an xDS v3 management server (ADS, state of the world) that
// serves each service's weights to Envoy and proxyless gRPC clients as the
// `load_balancing_weight` of its endpoints. The poller writes weights into it
// like into any engine; every apply() becomes at most one response per
// resource type per client, carrying only what changed.
import * as grpc from '@grpc/grpc-js';
import { formatHostPort, parseHostPort, type HostPort } from '../address.js';
import type { EngineDescriptor } from '../descriptor.js';
import type { Engine } from '../engine.js';
import { EngineClosedError, ListenerError } from '../errors.js';
import type { EngineOp, Observation, WeightRange } from '../model.js';
import { checkWeights } from '../op-checks.js';
import { XdsModel } from './model.js';
import { XDS_SCHEDULERS } from './resources.js';
import { xdsTypes } from './protos.js';
import { AdsServer, type XdsClientStatus, type XdsEvent, type XdsServerCounters } from './server.js';
import { readState, serializeState, writeState } from './state-file.js';

export const XDS_ENGINE_KIND = 'xds';
/** As IPVS and the fast path, so policies move between engines unchanged; 0 is sent as DRAINING (resources.ts). */
export const XDS_WEIGHT_RANGE: WeightRange = { min: 0, max: 65535 };

export type XdsEngineEvent = XdsEvent | { readonly kind: 'state-error'; readonly message: string };

export interface XdsEngineOptions {
  /** HOST:PORT to serve xDS on (port 0: any free port, see boundAddress). */
  readonly listen: string;
  /** TLS (and client certificates) as the caller decided; insecure only where the caller allows plaintext. */
  readonly credentials: grpc.ServerCredentials;
  /**
   * Whether a client at `peer` (grpc-js's "IP:PORT") may subscribe: null, or
   * why not (it is refused with UNAUTHENTICATED and that message). The
   * caller's rules, e.g. plaintext from loopback only. Everyone by default.
   */
  readonly admit?: (peer: string) => string | null;
  /** Where the served state survives restarts (state-file.ts); null keeps it in memory only. */
  readonly stateFile: string | null;
  /** Connections, disconnections, NACKs and state-file failures, for the caller's log and counters. */
  readonly onEvent?: (event: XdsEngineEvent) => void;
}

export interface XdsEngine extends Engine {
  readonly kind: typeof XDS_ENGINE_KIND;
  /**
   * Resolves with this engine once its state file is loaded and it listens;
   * rejects with the ListenerError. observe() and apply() wait for it too.
   */
  listening(): Promise<XdsEngine>;
  /** Where it listens (the port the OS chose for port 0); only once listening. */
  boundAddress(): HostPort;
  clients(): XdsClientStatus[];
  counts(): XdsServerCounters & { readonly version: number };
}

/**
 * Made at once (the poller shows its clients from the start); loading the
 * state file and binding the port go on in the background, see listening().
 */
export function createXdsEngine(options: XdsEngineOptions): XdsEngine {
  const listen = parseHostPort(options.listen, { allowPortZero: true });
  const onEvent = options.onEvent ?? ((): void => {});
  const types = xdsTypes();
  const model = new XdsModel(types);
  const ads = new AdsServer(model, types, onEvent, options.admit ?? ((): null => null));
  const server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 });
  const { definition, implementation } = ads.service();
  server.addService(definition, implementation);
  let version = 0;
  let port: number | null = null;

  async function loadState(file: string): Promise<void> {
    try {
      const saved = await readState(file);
      if (saved === null) return;
      // Rebuilt on a scratch model first: a state this engine would refuse loads nothing.
      const scratch = new XdsModel(types);
      scratch.check(saved);
      checkWeights(saved, XDS_WEIGHT_RANGE);
      for (const op of saved) scratch.apply(op);
      for (const op of saved) model.apply(op);
      version = model.publish()?.version ?? 0;
      ads.markReady();
    } catch (err) {
      onEvent({ kind: 'state-error', message: `${(err as Error).message}; starting empty` });
    }
  }

  const started = (async (): Promise<void> => {
    if (options.stateFile !== null) await loadState(options.stateFile);
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(formatHostPort(listen), options.credentials, (err, bound) => {
        if (err === null) resolve(bound);
        else reject(new ListenerError(`xds: cannot listen on ${formatHostPort(listen)}: ${err.message}`, { cause: err }));
      });
    });
  })();
  started.catch(() => undefined); // surfaced by listening(), observe() and apply()

  let closed = false;
  let persisting: Promise<void> = Promise.resolve();
  let persistQueued = false;
  function persist(): void {
    const file = options.stateFile;
    if (file === null || persistQueued) return;
    persistQueued = true;
    persisting = persisting.then(async () => {
      persistQueued = false;
      await writeState(file, serializeState(model.services)).catch((err: Error) => {
        onEvent({ kind: 'state-error', message: `xds state file ${file}: ${err.message}` });
      });
    });
  }

  const engine: XdsEngine = {
    kind: XDS_ENGINE_KIND,
    weightRange: XDS_WEIGHT_RANGE,
    listening: async () => {
      await started;
      return engine;
    },
    async observe(): Promise<Observation> {
      await started;
      return model.observe();
    },
    async apply(ops: readonly EngineOp[]): Promise<void> {
      await started;
      if (closed) throw new EngineClosedError(XDS_ENGINE_KIND);
      checkWeights(ops, XDS_WEIGHT_RANGE);
      model.check(ops);
      try {
        for (const op of ops) model.apply(op);
      } finally {
        // What was applied is served, even when a later op failed (the contract).
        const publication = model.publish();
        if (publication !== null) {
          version = publication.version;
          ads.publish(publication);
          persist();
        }
        ads.markReady();
      }
    },
    boundAddress: () => {
      if (port === null) throw new ListenerError('xds: not listening yet (await listening())', { cause: null });
      return { host: listen.host, port };
    },
    clients: () => ads.clients(),
    counts: () => ({ ...ads.counts(), version }),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await started.catch(() => undefined);
      // Clients keep their config and reconnect (to a restarted poller) with backoff.
      ads.endAll();
      server.forceShutdown();
      await persisting;
    },
  };
  return engine;
}

/** The xds engine as the poller registers it (kernel-bridge's EngineDescriptor). */
export const XDS_ENGINE: EngineDescriptor<XdsEngineOptions> = {
  kind: XDS_ENGINE_KIND,
  weightRange: XDS_WEIGHT_RANGE,
  checkScheduler: (name) => (XDS_SCHEDULERS.has(name) ? null : `not an xDS lb_policy (${[...XDS_SCHEDULERS.keys()].join(', ')})`),
  connectionLimits: false,
  ownsServicesByDefault: true,
  canCreateServices: true,
  create: (options) => createXdsEngine(options),
};
