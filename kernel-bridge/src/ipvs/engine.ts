// The IPVS engine: the Linux kernel's L4 load balancer, driven over generic
// netlink (the family "IPVS") or, where that cannot be used, through ipvsadm.
// Either way, apply() reads the services it touches afresh, checks the whole
// batch against them (edits.ts), and sends the edits; observe() reports the
// kernel's services, destinations, weights and connection counters.
//
// Availability: the kernel loads ip_vs by itself the first time the "IPVS"
// netlink family is looked up (and ipvsadm runs modprobe), so a loadable
// module is enough; IPVS_UNAVAILABLE_MESSAGE is for kernels where it cannot
// be loaded (CONFIG_IP_VS unset, modules missing, module loading disabled).
//
// Weights: the kernel (and ipvsadm -w) accept any int >= 0, up to 2^31 - 1;
// loadfeed takes 0..65535, the range the fast path and the memory engine use,
// so a policy moves between engines unchanged and needs no more resolution
// than that. A larger weight set by another tool is reported as it is.
//
// Addresses: services are `tcp|udp|sctp IP:PORT` or `fwmark N [ipv6]`,
// destinations `IP:PORT`, both reported in canonical form (model.ts), sorted
// (IPv4 before IPv6, then protocol, address, port) whatever order the kernel
// keeps them in (it lists the newest destination first).
// Destinations are added with forwarding method `masq` by default (the only
// one that maps ports, like the other engines); `route`/`tunnel` when the
// option says so. A weight change keeps the destination's forwarding method,
// thresholds and tunnel settings as the kernel has them.
import { EngineClosedError, EnginePermissionError, EngineUnavailableError, OptionError } from '../errors.js';
import type { EngineDescriptor } from '../descriptor.js';
import type { Engine } from '../engine.js';
import type { EngineOp, Observation, ObservedService, WeightRange } from '../model.js';
import { checkWeights } from '../op-checks.js';
import type { IpvsBackend, IpvsDriver } from './backend.js';
import { compileSteps, planEdits, servicesOf, type EditDefaults } from './edits.js';
import { createIpvsadmBackend, type IpvsadmOptions } from './ipvsadm.js';
import { formatDestinationKey, formatServiceKey, type IpvsForwardMethod, type IpvsServiceState } from './model.js';
import { createNetlinkBackend, DEFAULT_NETLINK_WINDOW } from './netlink-driver.js';
import { IPVS_UNAVAILABLE_MESSAGE, openIpvsSocket, type IpvsSocket } from './socket.js';

export const IPVS_ENGINE_KIND = 'ipvs';
/** Weights loadfeed writes; the kernel would take 0..2^31 - 1 (see above). */
export const IPVS_WEIGHT_RANGE: WeightRange = { min: 0, max: 65535 };
/** Scheduler of services added without one, as ipvsadm's default. */
export const DEFAULT_IPVS_SCHEDULER = 'wlc';
/** Forwarding method of destinations added by loadfeed. */
export const DEFAULT_IPVS_FORWARD: IpvsForwardMethod = 'masq';

export type IpvsDriverChoice = 'auto' | IpvsDriver;

export interface IpvsEngineOptions {
  /**
   * `auto` (default): netlink when the IPVS family resolves, else ipvsadm
   * when it works. `netlink` / `ipvsadm`: only that one, failing clearly.
   */
  readonly driver?: IpvsDriverChoice;
  /** Scheduler for add-service ops that name none. */
  readonly scheduler?: string;
  /** Forwarding method for add-destination: masq (default), route (direct routing) or tunnel. */
  readonly forward?: 'masq' | 'route' | 'tunnel';
  /**
   * netlink driver: an open socket to use instead of a new one (tests pass a
   * fake peer's). The engine closes it when it uses it; if opening fails, or
   * auto picks ipvsadm, it stays the caller's.
   */
  readonly socket?: IpvsSocket;
  /** netlink driver: requests in flight at once (default DEFAULT_NETLINK_WINDOW). */
  readonly netlinkWindow?: number;
  /** ipvsadm driver: binary and runner. */
  readonly ipvsadm?: IpvsadmOptions;
}

export interface IpvsEngine extends Engine {
  readonly kind: typeof IPVS_ENGINE_KIND;
  /** The driver chosen. */
  readonly driver: IpvsDriver;
  /** Everything the driver reports, beyond the Engine view: forwarding methods, thresholds, flags, stats. */
  observeIpvs(): Promise<readonly IpvsServiceState[]>;
}

/** Open the IPVS engine with the driver `options.driver` asks for (see IpvsEngineOptions). */
export async function createIpvsEngine(options: IpvsEngineOptions = {}): Promise<IpvsEngine> {
  const choice = options.driver ?? 'auto';
  const defaults = compileDefaults(options);
  const window = options.netlinkWindow ?? DEFAULT_NETLINK_WINDOW;
  if (!Number.isInteger(window) || window < 1) throw new OptionError(`netlinkWindow ${window} must be an integer >= 1`);
  if (choice !== 'auto' && choice !== 'netlink' && choice !== 'ipvsadm') {
    throw new OptionError(`driver "${String(choice)}" must be auto, netlink or ipvsadm`);
  }

  const netlink = async (): Promise<IpvsBackend> => {
    const socket = options.socket ?? (await openIpvsSocket());
    const backend = createNetlinkBackend(socket, { window });
    try {
      await backend.probe();
    } catch (error) {
      // A socket we opened is ours to close; a given one stays open for a second look (auto).
      if (options.socket === undefined) await backend.close();
      throw error;
    }
    return backend;
  };
  const ipvsadm = async (): Promise<IpvsBackend> => {
    const backend = createIpvsadmBackend(options.ipvsadm);
    await backend.probe();
    return backend;
  };

  if (choice === 'netlink') return createEngineOver(await netlink(), defaults);
  if (choice === 'ipvsadm') return createEngineOver(await ipvsadm(), defaults);

  let netlinkError: unknown;
  try {
    return createEngineOver(await netlink(), defaults);
  } catch (error) {
    if (error instanceof EnginePermissionError) throw error;
    netlinkError = error;
  }
  let fallback: IpvsBackend;
  try {
    fallback = await ipvsadm();
  } catch (ipvsadmError) {
    if (ipvsadmError instanceof EnginePermissionError) throw ipvsadmError;
    throw new EngineUnavailableError(
      `${IPVS_UNAVAILABLE_MESSAGE} (netlink: ${messageOf(netlinkError)}; ipvsadm: ${messageOf(ipvsadmError)})`,
      { cause: new AggregateError([netlinkError, ipvsadmError]) },
    );
  }
  // ipvsadm loads ip_vs itself (it runs `modprobe ip_vs`), after which the
  // netlink family exists: prefer netlink if the module was only missing.
  if (netlinkError instanceof EngineUnavailableError && netlinkError.message.startsWith(IPVS_UNAVAILABLE_MESSAGE)) {
    try {
      const backend = await netlink();
      await fallback.close();
      return createEngineOver(backend, defaults);
    } catch {
      // keep ipvsadm
    }
  }
  return createEngineOver(fallback, defaults);
}

/**
 * The Engine over a driver backend: batches are checked against a fresh read
 * before anything is sent, and run one at a time.
 */
export function createEngineOver(backend: IpvsBackend, defaults: EditDefaults): IpvsEngine {
  let queue: Promise<void> = Promise.resolve();
  let closing: Promise<void> | null = null;

  async function applyNow(ops: readonly EngineOp[]): Promise<void> {
    if (closing !== null) throw new EngineClosedError(IPVS_ENGINE_KIND);
    checkWeights(ops, IPVS_WEIGHT_RANGE);
    const steps = compileSteps(ops);
    if (steps.length === 0) return;
    const state = await backend.read(servicesOf(steps), { counters: false });
    const plan = planEdits(steps, state, defaults);
    await backend.write(plan.edits);
    if (plan.error !== null) throw plan.error;
  }

  return {
    kind: IPVS_ENGINE_KIND,
    driver: backend.driver,
    weightRange: IPVS_WEIGHT_RANGE,
    async observe(): Promise<Observation> {
      if (closing !== null) throw new EngineClosedError(IPVS_ENGINE_KIND);
      return { services: (await backend.read()).map(toObservedService) };
    },
    async observeIpvs() {
      if (closing !== null) throw new EngineClosedError(IPVS_ENGINE_KIND);
      return backend.read();
    },
    apply(ops) {
      const run = queue.then(() => applyNow(ops));
      queue = run.catch(() => undefined);
      return run;
    },
    close() {
      closing ??= queue.then(() => backend.close());
      return closing;
    },
  };
}

/** The engine-neutral view of one IPVS service. */
export function toObservedService(state: IpvsServiceState): ObservedService {
  return {
    address: formatServiceKey(state.service.key),
    scheduler: state.service.settings.scheduler,
    destinations: state.destinations.map((d) => ({
      address: formatDestinationKey(d.key),
      weight: d.settings.weight,
      activeConnections: d.counters.activeConnections,
      inactiveConnections: d.counters.inactiveConnections,
      totalConnections: d.counters.stats === null ? null : Number(d.counters.stats.connections),
      // The upper threshold: 0 = no limit, as the model says.
      maxConnections: d.settings.upperThreshold,
      // IPVS has no health state of its own: a destination is used while its weight is above 0.
      up: true,
    })),
  };
}

function compileDefaults(options: IpvsEngineOptions): EditDefaults {
  const scheduler = options.scheduler ?? DEFAULT_IPVS_SCHEDULER;
  if (!/^[a-z][a-z0-9_]{0,14}$/.test(scheduler)) {
    throw new OptionError(`scheduler "${scheduler}" is not an IPVS scheduler name (rr, wrr, wlc, lc, sh, mh…)`);
  }
  const forward = options.forward ?? DEFAULT_IPVS_FORWARD;
  if (forward !== 'masq' && forward !== 'route' && forward !== 'tunnel') {
    throw new OptionError(`forward "${String(forward)}" must be masq, route or tunnel`);
  }
  return { scheduler, forward };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Fast-path schedulers no IPVS scheduler matches, with what IPVS has nearest. */
const FASTPATH_ONLY: ReadonlyMap<string, string> = new Map([
  ['swrr', 'wrr (which restarts its cycle on every weight update)'],
  ['swrr-lc', 'sed or wlc'],
  ['swrr-sed', 'sed or wlc'],
  ['swrr-lead', 'sed or wlc'],
  ['peak-ewma', 'wlc (IPVS does not see connection times)'],
]);

/** IPVS: its kernel schedulers by name; maxConnections is its upper threshold; services configured elsewhere are adopted, not owned. */
export const IPVS_ENGINE: EngineDescriptor<IpvsEngineOptions> = {
  kind: IPVS_ENGINE_KIND,
  weightRange: IPVS_WEIGHT_RANGE,
  checkScheduler: (name) => {
    const nearest = FASTPATH_ONLY.get(name);
    if (nearest !== undefined) return `a fast path scheduler IPVS does not have; the nearest IPVS ones: ${nearest}`;
    return /^[a-z][a-z0-9_]{0,14}$/.test(name) ? null : 'not an IPVS scheduler name (rr, wrr, lc, wlc, sed, nq, sh, mh…)';
  },
  // wrr restarts its cycle on every weight update: coarse steps (and the deadband) matter.
  coarseSchedulers: ['wrr'],
  connectionLimits: true,
  ownsServicesByDefault: false,
  canCreateServices: true,
  create: (options) => createIpvsEngine(options),
};
