// The fast path: loadfeed's built-in userspace L4 TCP forwarder and embedded
// default engine, so the whole feedback loop runs without root or IPVS. Each
// service is a listening socket; each accepted connection is forwarded to a
// destination chosen by the service's scheduler (forwarder.ts, scheduler.ts).
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  formatHostPort,
  formatL4Address,
  parseHostPort,
  parseL4Address,
  type HostPort,
  type L4Address,
} from '../address.js';
import type { EngineDescriptor } from '../descriptor.js';
import type { Engine } from '../engine.js';
import {
  EngineClosedError,
  ListenerError,
  OptionError,
  UnknownTargetError,
  UnsupportedError,
  type BridgeError,
} from '../errors.js';
import type { EngineOp, Observation, ServiceAddress, WeightRange } from '../model.js';
import { assertNoDestination, assertNoService, checkMaxConnections, checkWeights, destinationOf, serviceOf } from '../op-checks.js';
import { destroyConnection, forward, type Connection, type Destination, type Pool } from './forwarder.js';
import { DEFAULT_FASTPATH_SCHEDULER, FASTPATH_SCHEDULERS, type Scheduler } from './scheduler.js';

export const FASTPATH_ENGINE_KIND = 'fastpath';
/** IPVS's practical range, so policies move between the two unchanged. */
export const FASTPATH_WEIGHT_RANGE: WeightRange = { min: 0, max: 65535 };
export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
export const DEFAULT_DOWN_PERIOD_MS = 1_000;

export interface FastpathOptions {
  /** Give up connecting to a destination after this long and try the next one. */
  readonly connectTimeoutMs?: number;
  /** Skip a destination for this long after it refused or timed out. */
  readonly downPeriodMs?: number;
  /**
   * Errors outside apply(), e.g. accept() failing with EMFILE; the listener
   * keeps running. Ignored by default.
   */
  readonly onError?: (error: BridgeError) => void;
}

/** Counts for tests and benchmarks: what the engine holds right now. */
export interface FastpathDiagnostics {
  /** Listening sockets (one per service). */
  readonly listeners: number;
  /** Forwarded connections not yet finished, including those of removed services. */
  readonly connections: number;
  /** Client and upstream sockets not yet closed. */
  readonly sockets: number;
  /** Bytes queued in userspace by those sockets, read and write sides. */
  readonly bufferedBytes: number;
}

export interface FastpathEngine extends Engine {
  readonly kind: typeof FASTPATH_ENGINE_KIND;
  /** The address a service really listens on (the port chosen by the OS for port 0). */
  boundAddress(service: ServiceAddress): HostPort;
  diagnostics(): FastpathDiagnostics;
}

interface FastpathService {
  readonly server: Server;
  readonly scheduler: string;
  readonly pool: Pool;
  readonly destinations: Map<string, Destination>;
}

/** An op with its addresses parsed and put in canonical form (the keys of the maps). */
type Step =
  | {
      readonly op: 'add-service';
      readonly service: string;
      readonly address: L4Address;
      readonly scheduler: string;
      readonly pick: Scheduler;
    }
  | { readonly op: 'remove-service'; readonly service: string }
  | {
      readonly op: 'add-destination';
      readonly service: string;
      readonly destination: string;
      readonly address: HostPort;
      readonly weight: number;
    }
  | {
      readonly op: 'set-weight';
      readonly service: string;
      readonly destination: string;
      readonly weight: number;
      readonly maxConnections: number | undefined;
    }
  | { readonly op: 'remove-destination'; readonly service: string; readonly destination: string };

/**
 * Service addresses are `tcp HOST:PORT` (port 0 binds any free port, see
 * boundAddress), destinations `HOST:PORT`; both are reported in canonical form
 * (`formatL4Address`, `formatHostPort`).
 */
export function createFastpathEngine(options: FastpathOptions = {}): FastpathEngine {
  const context = {
    connectTimeoutMs: positiveMs('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    downPeriodMs: positiveMs('downPeriodMs', options.downPeriodMs ?? DEFAULT_DOWN_PERIOD_MS),
    connections: new Set<Connection>(),
  };
  const onError = options.onError ?? ((): void => {});
  const services = new Map<string, FastpathService>();
  // apply() calls run one at a time: a batch awaits listeners, and another batch
  // must not interleave with it.
  let queue: Promise<void> = Promise.resolve();
  let closing: Promise<void> | null = null;

  async function addService(step: Extract<Step, { op: 'add-service' }>): Promise<void> {
    assertNoService(services, step.service);
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
    const pool: Pool = { destinations: [], pick: step.pick, context };
    server.on('connection', (client: Socket) => forward(client, pool));
    server.listen({ host: step.address.host, port: step.address.port });
    try {
      await once(server, 'listening');
    } catch (error) {
      throw new ListenerError(`cannot listen on ${step.service}: ${(error as Error).message}`, { cause: error });
    }
    server.on('error', (error) => onError(new ListenerError(`${step.service}: ${error.message}`, { cause: error })));
    services.set(step.service, { server, scheduler: step.scheduler, pool, destinations: new Map() });
  }

  function applyStep(step: Exclude<Step, { op: 'add-service' }>): void {
    const service = serviceOf(services, step.service);
    switch (step.op) {
      case 'remove-service':
        // Stop accepting; forwarded connections finish on their own.
        service.server.close();
        services.delete(step.service);
        return;
      case 'add-destination':
        assertNoDestination(service.destinations, step.service, step.destination);
        service.destinations.set(step.destination, {
          host: step.address.host,
          port: step.address.port,
          weight: step.weight,
          active: 0,
          maxConnections: 0,
          downUntil: 0,
          current: 0,
          latency: 0,
          latencyAt: 0,
          total: 0,
        });
        service.pool.destinations = [...service.destinations.values()];
        return;
      case 'set-weight': {
        // Read at the next pick; connections already forwarded are not touched
        // (a lower limit closes none: the destination takes no new ones until below it).
        const destination = destinationOf(service.destinations, step.service, step.destination);
        destination.weight = step.weight;
        if (step.maxConnections !== undefined) destination.maxConnections = step.maxConnections;
        return;
      }
      case 'remove-destination':
        destinationOf(service.destinations, step.service, step.destination);
        service.destinations.delete(step.destination);
        service.pool.destinations = [...service.destinations.values()];
        return;
    }
  }

  async function applyNow(ops: readonly EngineOp[]): Promise<void> {
    if (closing !== null) throw new EngineClosedError(FASTPATH_ENGINE_KIND);
    checkWeights(ops, FASTPATH_WEIGHT_RANGE);
    const steps = ops.map(compileOp);
    for (const step of steps) {
      if (step.op === 'add-service') await addService(step);
      else applyStep(step);
    }
  }

  /**
   * Resolves once every forwarded socket has closed and every listener has
   * stopped; libuv frees the listening handles on its next close phase.
   */
  async function shutdown(): Promise<void> {
    await queue;
    const closed: Promise<unknown>[] = [];
    for (const { server } of services.values()) {
      closed.push(new Promise((resolve) => server.close(resolve)));
    }
    services.clear();
    for (const conn of context.connections) {
      for (const socket of [conn.client, conn.upstream]) {
        if (socket !== null && !socket.closed) closed.push(new Promise((resolve) => socket.once('close', resolve)));
      }
      destroyConnection(conn);
    }
    await Promise.all(closed);
  }

  return {
    kind: FASTPATH_ENGINE_KIND,
    weightRange: FASTPATH_WEIGHT_RANGE,
    async observe(): Promise<Observation> {
      const now = performance.now();
      return {
        services: [...services].map(([address, service]) => ({
          address,
          scheduler: service.scheduler,
          destinations: [...service.destinations].map(([destination, d]) => ({
            address: destination,
            weight: d.weight,
            activeConnections: d.active,
            inactiveConnections: null,
            totalConnections: d.total,
            maxConnections: d.maxConnections,
            up: d.downUntil <= now,
          })),
        })),
      };
    },
    apply(ops) {
      const run = queue.then(() => applyNow(ops));
      queue = run.catch(() => undefined);
      return run;
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
    boundAddress(service) {
      const key = compileServiceAddress(service).service;
      const bound = serviceOf(services, key).server.address();
      if (bound === null || typeof bound === 'string') throw new UnknownTargetError(`service "${key}" is not listening`);
      return { host: bound.address, port: bound.port };
    },
    diagnostics() {
      let sockets = 0;
      let bufferedBytes = 0;
      for (const conn of context.connections) {
        for (const socket of [conn.client, conn.upstream]) {
          if (socket === null || socket.closed) continue;
          sockets++;
          bufferedBytes += socket.writableLength + socket.readableLength;
        }
      }
      let listeners = 0;
      for (const { server } of services.values()) if (server.listening) listeners++;
      return { listeners, connections: context.connections.size, sockets, bufferedBytes };
    },
  };
}

function compileServiceAddress(text: string): { service: string; address: L4Address } {
  const address = parseL4Address(text, { allowPortZero: true });
  if (address.protocol !== 'tcp') {
    throw new UnsupportedError(`"${text}": the fast path forwards TCP only; use the ipvs engine for UDP`);
  }
  return { service: formatL4Address(address), address };
}

function compileOp(op: EngineOp): Step {
  switch (op.op) {
    case 'add-service': {
      const { service, address } = compileServiceAddress(op.service.address);
      const scheduler = op.service.scheduler ?? DEFAULT_FASTPATH_SCHEDULER;
      const pick = FASTPATH_SCHEDULERS.get(scheduler);
      if (pick === undefined) {
        throw new UnsupportedError(
          `${service}: scheduler "${scheduler}" is not one of the fast path's: ${[...FASTPATH_SCHEDULERS.keys()].join(', ')}`,
        );
      }
      return { op: op.op, service, address, scheduler, pick };
    }
    case 'remove-service':
      return { op: op.op, service: compileServiceAddress(op.service).service };
    case 'add-destination': {
      const address = parseHostPort(op.destination);
      const { service } = compileServiceAddress(op.service);
      return { op: op.op, service, destination: formatHostPort(address), address, weight: op.weight };
    }
    case 'set-weight':
    case 'remove-destination': {
      const { service } = compileServiceAddress(op.service);
      const destination = formatHostPort(parseHostPort(op.destination));
      return op.op === 'set-weight'
        ? { op: op.op, service, destination, weight: op.weight, maxConnections: checkMaxConnections(op) }
        : { op: op.op, service, destination };
    }
  }
}

function positiveMs(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new OptionError(`${name}: ${value} must be a positive number of milliseconds`);
  }
  return value;
}

/** The fast path: any of its own schedulers; a full destination (maxConnections) is skipped, as IPVS's upper threshold. */
export const FASTPATH_ENGINE: EngineDescriptor<FastpathOptions> = {
  kind: FASTPATH_ENGINE_KIND,
  weightRange: FASTPATH_WEIGHT_RANGE,
  checkScheduler: (name) => (FASTPATH_SCHEDULERS.has(name) ? null : `not a fast path scheduler (${[...FASTPATH_SCHEDULERS.keys()].join(', ')})`),
  connectionLimits: true,
  ownsServicesByDefault: true,
  canCreateServices: true,
  create: (options) => createFastpathEngine(options),
};
