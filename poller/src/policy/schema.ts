// The one source of truth for weight-tuning policy files (apiVersion
// loadfeed/v1). Everything a user may write is described here with its
// default; `compile.ts` turns a parsed file into a fully defaulted
// `CompiledPolicy`, and `docs/policy.schema.json` is generated from here.
import { z } from 'zod';
import { parseHostPort, parseL4Address } from '@loadfeed/kernel-bridge';
import { excerpt } from '../errors.js';
import { formatDuration, MAX_DURATION_MS, parseDuration } from '../util/duration.js';
import { parseExpression } from './expression.js';

export const API_VERSION = 'loadfeed/v1';

export const DEFAULT_STALE_AFTER = '2s';
export const DEFAULT_RESTART_GRACE = '10s';
export const DEFAULT_AGENT_INTERVAL = '1s';
export const DEFAULT_HALF_LIFE_MS = 2_000;
/**
 * queue's own default half-life: its inputs are already averaged by the
 * application (latency over a window) and its in-flight term is what the
 * scheduler also counts per connection, so 2 s of smoothing on top only
 * delays a slowdown's weight change past the slowdown (docs/BENCHMARKS.md, (f)).
 */
export const QUEUE_HALF_LIFE_MS = 500;
/** Falling scores (a server in trouble) are smoothed with this half-life, or halfLife if shorter; rising ones with halfLife. */
export const DEFAULT_HALF_LIFE_DOWN_MS = 250;
/** capacity: below this utilisation a server's requests/utilisation is noise. */
export const CAPACITY_MIN_UTILIZATION = 0.1;
export const CAPACITY_COST_HALF_LIFE = '1m';
/** capacity: the utilisation servers are counted at; a server above it scores less than it accepts. */
export const CAPACITY_TARGET_UTILIZATION = 0.9;
export const DEFAULT_WEIGHT_MIN = 1;
export const DEFAULT_WEIGHT_MAX = 100;
export const DEFAULT_DEADBAND = 0.05;
export const DEFAULT_SLOW_START = '10s';
export const DEFAULT_SLOW_START_FROM = 0.1;
export const DEFAULT_HOLD_FOR = '10s';
export const DEFAULT_RECONCILE_EVERY = '1s';
export const DEFAULT_MAX_OPS_PER_CYCLE = 1000;
// gRPC weighted round robin (A58) defaults, so `orca` is a faithful baseline.
export const ORCA_BLACKOUT_PERIOD = '10s';
export const ORCA_WEIGHT_EXPIRATION_PERIOD = '3m';
export const ORCA_ERROR_UTILIZATION_PENALTY = 1.0;
// pid: gains chosen so a 10 % utilisation error moves the weight ~5 % per sample.
export const PID_KP = 0.5;
export const PID_KI = 0.05;
export const PID_KD = 0;
export const PID_MAX_STEP = 0.2;
/** Agents sample at most this often (and at least this rarely): the contract's interval_ms range. */
export const MIN_AGENT_INTERVAL = '100ms';
export const MAX_AGENT_INTERVAL = '60s';
/** Resyncs more often than this would keep the poller busy reading engines. */
export const MIN_RECONCILE_EVERY = '100ms';
/**
 * staleAfter must be at least this many agents.interval: a sample may come
 * half an interval late (network, a busy agent or poller) without the server
 * flapping to stale and back into slow start.
 */
export const STALE_AFTER_INTERVALS = 1.5;
// Bounds on the size of a policy, so that every file that compiles is one the
// poller runs within its measured limits (docs/RELIABILITY.md).
/** Bytes of a policy file; larger files are refused before they are parsed. */
export const MAX_POLICY_BYTES = 4 * 1024 * 1024;
/** Server entries in all services together (a selector counts as one; it expands to at most --max-agents). */
export const MAX_POLICY_SERVERS = 10_000;
export const MAX_GUARDS = 32;
// queue: the application metric names a service reports its queue under by default.
export const QUEUE_IN_FLIGHT = 'app.in_flight';
export const QUEUE_LATENCY = 'app.latency_seconds';
export const QUEUE_CONCURRENCY = 'app.concurrency';

/**
 * A duration between `min` and `max` (default: 0 to MAX_DURATION_MS, well
 * within what a Node timer holds).
 */
function duration(bounds: { readonly min?: string; readonly max?: string } = {}) {
  const min = parseDuration(bounds.min ?? 0) ?? 0;
  const max = parseDuration(bounds.max ?? MAX_DURATION_MS) ?? MAX_DURATION_MS;
  return z
    .union([z.string(), z.number()])
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === null) {
        ctx.addIssue({ code: 'custom', message: `${excerpt(value)} is not a duration (e.g. 500ms, 2s, 1m)` });
        return z.NEVER;
      }
      if (ms < min || ms > max) {
        const bound = ms < min ? `at least ${formatDuration(min)}` : `at most ${formatDuration(max)}${max === MAX_DURATION_MS ? ', the longest duration loadfeed takes' : ''}`;
        ctx.addIssue({ code: 'custom', message: `must be ${bound}` });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ description: `a duration from ${formatDuration(min)} to ${formatDuration(max)}: 500ms, 2s, 1.5m, 1h, or a number of milliseconds` });
}

const fraction = z.number().min(0).max(1);

/** An address as written, with what `parse` made of it or why it could not. */
export interface AddressText<T> {
  readonly text: string;
  readonly parsed: T | null;
  readonly error: string | null;
}

/**
 * Address text, parsed here once: whether it had to parse depends on the
 * service's engine (HAProxy names its servers), which the service checks.
 */
function addressText<T>(parse: (text: string) => T) {
  return z
    .string()
    .min(1)
    .max(256)
    .transform((text): AddressText<T> => {
      try {
        return { text, parsed: parse(text), error: null };
      } catch (err) {
        return { text, parsed: null, error: (err as Error).message };
      }
    });
}

/** A string the given parser accepts, compiled to what it returns; its error message becomes the issue. */
function parsed<T>(parse: (text: string) => T, description: string) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return parse(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .meta({ description });
}

const expression = parsed((text) => parseExpression(text), 'an expression over metrics, e.g. "mem > 0.95" (see docs/policy.md)');

/** Engines whose services and servers are named in their own configuration rather than addressed. */
export const NAME_ADDRESSED_ENGINES: readonly string[] = ['haproxy'];
/** Engines whose services are names (the xDS cluster, `xds:///NAME`) and whose servers are IP:PORT. */
export const NAMED_SERVICE_ENGINES: readonly string[] = ['xds'];
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HAPROXY_NAME = /^[A-Za-z0-9._:-]{1,127}$/;

/**
 * A label name as Kubernetes writes them (an optional DNS prefix and `/`,
 * then 1..63 of A-Z a-z 0-9 - _ . starting and ending alphanumeric): this
 * also keeps out `__proto__`, which a plain object would drop, leaving an
 * empty selector that matches every agent.
 */
const LABEL_NAME = /^(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1..63 characters of A-Z a-z 0-9 . _ - (starting with a letter or digit)');

export const headroomSchema = z.strictObject({
  name: z.literal('headroom'),
  /** Count CPU pressure (PSI) as load when it is worse than utilisation. */
  usePressure: z.boolean().default(true),
});

export const capacitySchema = z.strictObject({
  name: z.literal('capacity'),
  /** Count CPU pressure (PSI) as load when it is worse than utilisation. */
  usePressure: z.boolean().default(true),
  /** Below this utilisation a server is too idle to estimate: it gets the service mean. */
  minUtilization: z.number().gt(0).max(1).default(CAPACITY_MIN_UTILIZATION),
  /** Utilisation each server is counted at (0..1]: capacity = rate + (target − load) / cost. */
  targetUtilization: z.number().gt(0).max(1).default(CAPACITY_TARGET_UTILIZATION),
  /** How fast a higher CPU cost per request is learned (a lower one is taken at once), >= 1s. */
  costHalfLife: duration({ min: '1s' }).prefault(CAPACITY_COST_HALF_LIFE),
});

export const orcaSchema = z.strictObject({
  name: z.literal('orca'),
  /** A58 error_utilization_penalty: how much errors per second count as utilisation. */
  errorUtilizationPenalty: z.number().min(0).default(ORCA_ERROR_UTILIZATION_PENALTY),
  /** A58 blackout_period: a server's weight is ignored this long after it starts reporting. */
  blackoutPeriod: duration().prefault(ORCA_BLACKOUT_PERIOD),
  /** A58 weight_expiration_period: a weight not refreshed this long is dropped (blackout starts again). */
  weightExpirationPeriod: duration().prefault(ORCA_WEIGHT_EXPIRATION_PERIOD),
});

export const pidSchema = z.strictObject({
  name: z.literal('pid'),
  kp: z.number().min(0).default(PID_KP),
  ki: z.number().min(0).default(PID_KI),
  kd: z.number().min(0).default(PID_KD),
  /** Largest relative weight change per sample, e.g. 0.2 = ±20 %. */
  maxStep: z.number().gt(0).max(1).default(PID_MAX_STEP),
  /** Also count connections in flight (relative to the service mean) when worse than CPU. */
  useConnections: z.boolean().default(true),
});

export const connectionsSchema = z.strictObject({
  name: z.literal('connections'),
});

export const expressionStrategySchema = z.strictObject({
  name: z.literal('expression'),
  /** Score of a server, >= 0; null (missing metric) gives it the service's mean. */
  score: expression,
});

export const queueSchema = z.strictObject({
  name: z.literal('queue'),
  /** Requests the server holds now (being served or waiting), >= 0. */
  inFlight: expression.prefault(QUEUE_IN_FLIGHT),
  /** Seconds a request holds a worker (or end-to-end latency), > 0. */
  latency: expression.prefault(QUEUE_LATENCY),
  /** Workers that serve requests in parallel (pool size, concurrency limit), > 0; null: count each server as one. */
  concurrency: expression.nullable().prefault(QUEUE_CONCURRENCY),
});

export const strategySchema = z.discriminatedUnion('name', [capacitySchema, headroomSchema, orcaSchema, pidSchema, connectionsSchema, expressionStrategySchema, queueSchema]);

export const serverSchema = z
  .strictObject({
    /** Match the agent with this node id. */
    node: name.optional(),
    /**
     * The engine's address of the destination: IP:PORT (e.g. 192.0.2.21:8080;
     * without `node`, the agent announcing this IP), or for HAProxy the server
     * name in its backend.
     */
    address: addressText((text) => parseHostPort(text)).optional(),
    /** Match every agent whose labels include all of these (a pool); the destination is the agent's first address and `port`. */
    selector: z
      .preprocess(
        (raw, ctx) => {
          // zod drops this key from records silently; the parsed file has it as its own.
          if (typeof raw === 'object' && raw !== null && Object.hasOwn(raw, '__proto__')) ctx.addIssue({ code: 'custom', message: '"__proto__" is not a label name' });
          return raw;
        },
        z
          .record(
            z.string().regex(LABEL_NAME, 'is not a label name: [prefix/]name, name 1..63 characters of A-Z a-z 0-9 - _ . starting and ending with a letter or digit'),
            z.string().regex(LABEL_VALUE, 'is not a label value: up to 63 characters of A-Z a-z 0-9 - _ . starting and ending with a letter or digit'),
          )
          .refine((labels) => Object.keys(labels).length > 0, 'needs at least one label (an empty selector would match every agent)'),
      )
      .optional(),
    /** With `selector`: the service port on each matched agent. */
    port: z.number().int().min(1).max(65535).optional(),
    /**
     * HOST:PORT of the server's ORCA service (xds.service.orca.v3; plaintext
     * gRPC, or TLS with the poller's --orca-tls-* options): the poller reads
     * its load reports itself, no agent needed. The
     * node id it reports as is `orca:HOST:PORT`.
     */
    orca: addressText((text) => parseHostPort(text)).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.orca !== undefined) {
      if (s.node !== undefined || s.selector !== undefined) ctx.addIssue({ code: 'custom', message: 'orca names the server\'s own report source: it cannot be combined with node or selector', path: ['orca'] });
      if (s.orca.error !== null) ctx.addIssue({ code: 'custom', message: s.orca.error, path: ['orca'] });
    }
    if (s.selector !== undefined) {
      if (s.node !== undefined || s.address !== undefined) ctx.addIssue({ code: 'custom', message: 'selector cannot be combined with node or address' });
      if (s.port === undefined) ctx.addIssue({ code: 'custom', message: 'selector needs port', path: ['port'] });
    } else {
      if (s.address === undefined) ctx.addIssue({ code: 'custom', message: 'needs address (or selector and port)', path: ['address'] });
      if (s.port !== undefined) ctx.addIssue({ code: 'custom', message: 'port goes with selector; put the port in address', path: ['port'] });
    }
  });

export const guardSchema = z.strictObject({
  /** Name for logs and reasons; defaults to the condition text. */
  name: z.string().max(128).optional(),
  when: expression,
  /** Fixed weight while the condition holds (0 = take no new connections). */
  weight: z.number().int().min(0),
});

export const serviceSchema = z.strictObject({
  name,
  /** Engine that forwards this service (fastpath, memory, ipvs, nftables, haproxy), or serves its weights (xds). */
  engine: z.string().default('fastpath'),
  /** The engine's address of the service: "tcp 192.0.2.10:80" (port 0: the fast path picks one), for HAProxy the backend name, for xds the service name clients ask for (xds:///NAME). */
  address: addressText((text) => parseL4Address(text, { allowPortZero: true })),
  /** Scheduler in the engine's words (fastpath: swrr-sed, wlc, swrr, sed, swrr-lc, swrr-lead or peak-ewma; IPVS: wlc, wrr, sed, …; nftables: random; xds: ring_hash, round_robin, least_request), checked against the engine; the engine's default when omitted. */
  scheduler: z.string().max(64).optional(),
  /**
   * The poller creates (and removes) this service and its destinations in
   * the engine; otherwise it only sets weights of what the engine already
   * has. Default: yes for fastpath, nftables, xds and memory; no for ipvs and haproxy.
   */
  owned: z.boolean().optional(),
  /**
   * A connection limit per server, where the engine has one (HAProxy maxconn,
   * IPVS upper threshold, the fast path's), so an overloaded server is capped, not only
   * down-weighted: an expression over its metrics, e.g.
   * "max(50, connections * (1.2 - cpu))"; 0 or a missing metric = no limit.
   */
  connectionLimit: expression.optional(),
  servers: z.array(serverSchema).min(1, 'needs at least one server'),
  strategy: strategySchema.prefault({ name: 'capacity' }),
  smoothing: z
    .strictObject({
      /** Default DEFAULT_HALF_LIFE_MS, or QUEUE_HALF_LIFE_MS with strategy queue. */
      halfLife: duration().optional().meta({ description: `a duration from 0ms to 24h (500ms, 2s, …); default ${formatDuration(DEFAULT_HALF_LIFE_MS)}, ${formatDuration(QUEUE_HALF_LIFE_MS)} with strategy queue` }),
      /** Falling scores (react fast to trouble, recover carefully); default the shorter of 250ms and halfLife, so `halfLife: 0s` turns smoothing off. */
      halfLifeDown: duration().optional().meta({ description: `a duration from 0ms to 24h; default the shorter of ${formatDuration(DEFAULT_HALF_LIFE_DOWN_MS)} and halfLife` }),
    })
    .prefault({}),
  /** Skip a weight change smaller than this fraction of the current weight. */
  deadband: fraction.default(DEFAULT_DEADBAND),
  /** Largest change of one weight per second, as a fraction of weights.max; null = unlimited. */
  maxChangePerSecond: z.number().gt(0).nullable().default(null),
  weights: z
    .strictObject({
      min: z.number().int().min(0).default(DEFAULT_WEIGHT_MIN),
      max: z.number().int().min(1).default(DEFAULT_WEIGHT_MAX),
      /** Round weights to multiples of this; auto = coarse steps (max/20) where the scheduler restarts on every update (IPVS wrr), else 1. */
      quantum: z.union([z.literal('auto'), z.number().int().min(1)]).default('auto'),
    })
    .prefault({})
    .superRefine((w, ctx) => {
      if (w.min > w.max) ctx.addIssue({ code: 'custom', message: `must be <= weights.max (${w.max})`, path: ['min'] });
    }),
  /** Clamp every weight to [min, max] × the service mean, as gRPC does (0.01..10); null = off. */
  meanBand: z
    .strictObject({ min: z.number().min(0).default(0.01), max: z.number().min(1).default(10) })
    .nullable()
    .default(null),
  /** No server gets more than this share of the service's total weight; null = off. */
  shareCap: z.number().gt(0).max(1).nullable().default(null),
  /** New or returning servers ramp from `from` × their weight (at most × the mean weight of the servers not ramping) to all of it over `duration`. */
  slowStart: z
    .strictObject({ duration: duration().prefault(DEFAULT_SLOW_START), from: fraction.default(DEFAULT_SLOW_START_FROM) })
    .nullable()
    .prefault({}),
  /** After (re)connecting, a server's metrics are ignored this long and it gets the service mean. */
  blackout: duration().prefault('0s'),
  guards: z.array(guardSchema).max(MAX_GUARDS).prefault([]),
  /** What a server whose agent went silent or away gets: 0 at once, or its last weight for `holdFor`, then 0. */
  stale: z
    .strictObject({ action: z.enum(['quiesce', 'hold']).default('quiesce'), holdFor: duration().prefault(DEFAULT_HOLD_FOR) })
    .prefault({}),
  /** If every server would get 0 because metrics vanished: keep the last weights, or give all equal ones. */
  allZero: z.enum(['keep-last', 'equal']).default('keep-last'),
  /** A weight found changed in the engine (by hand, or the engine restarted): write ours again, or leave it until it changes again. */
  drift: z.enum(['correct', 'respect']).default('correct'),
}).superRefine((s, ctx) => {
  const issue = (path: PropertyKey[], message: string): void => ctx.addIssue({ code: 'custom', message, path });
  const named = NAME_ADDRESSED_ENGINES.includes(s.engine);
  const address = s.address.text;
  if (named) {
    if (!HAPROXY_NAME.test(address)) issue(['address'], `${excerpt(address)} is not a ${s.engine} backend name`);
  } else if (NAMED_SERVICE_ENGINES.includes(s.engine)) {
    if (!SERVICE_NAME.test(address)) {
      issue(['address'], `${excerpt(address)} is not an ${s.engine} service name: 1..63 of A-Z a-z 0-9 . _ - (clients reach it as xds:///NAME)`);
    }
  } else if (s.address.error !== null) {
    issue(['address'], s.address.error);
  }
  s.servers.forEach((srv, j) => {
    if (srv.address === undefined) return;
    if (!named) {
      if (srv.address.error !== null) issue(['servers', j, 'address'], srv.address.error);
    } else if (srv.node === undefined && srv.orca === undefined) {
      issue(['servers', j, 'node'], `${s.engine} servers are named, not addressed: give the node id of the agent that reports for ${excerpt(srv.address.text)} (or its orca endpoint)`);
    } else if (!HAPROXY_NAME.test(srv.address.text)) {
      issue(['servers', j, 'address'], `${excerpt(srv.address.text)} is not a ${s.engine} server name`);
    }
  });
  if (named && s.servers.some((srv) => srv.selector !== undefined)) {
    issue(['servers'], `${s.engine} servers are named in its configuration: match them by node, not by selector`);
  }
  s.guards.forEach((g, j) => {
    if (g.weight > s.weights.max) issue(['guards', j, 'weight'], `${g.weight} must be <= weights.max (${s.weights.max})`);
  });
});

/** Settings of each engine the services use; an engine's instance is shared by its services. */
export const enginesSchema = z
  .strictObject({
    fastpath: z
      .strictObject({
        /** Give up connecting to a destination after this long and try the next one. */
        connectTimeout: duration({ min: '10ms' }).prefault('2s'),
        /** A destination that refused a connection is skipped this long. */
        downPeriod: duration().prefault('1s'),
      })
      .prefault({}),
    haproxy: z
      .strictObject({
        /** The runtime API: a stats socket path or HOST:PORT, with `level admin`. */
        socket: z.string().min(1).nullable().default(null),
        timeout: duration({ min: '10ms' }).prefault('2s'),
      })
      .prefault({}),
    ipvs: z
      .strictObject({
        /** netlink (the kernel's own interface), ipvsadm (one `ipvsadm -R` per cycle), or auto: netlink when it can. */
        driver: z.enum(['auto', 'netlink', 'ipvsadm']).default('auto'),
        /** Forwarding method of destinations the poller adds: masq (NAT), route (direct routing), tunnel. */
        forward: z.enum(['masq', 'route', 'tunnel']).default('masq'),
      })
      .prefault({}),
    nftables: z
      .strictObject({
        /** The loadfeed-owned table (family inet); anything else in it is replaced on every update. */
        table: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'must be a letter followed by up to 63 letters, digits or _').default('loadfeed'),
        /** Run nft inside this network namespace (ip netns exec), e.g. for a director namespace. */
        netns: z.string().min(1).nullable().default(null),
      })
      .prefault({}),
  })
  .prefault({});

export const policySchema = z.strictObject({
  apiVersion: z.literal(API_VERSION, { error: `must be "${API_VERSION}"` }),
  engines: enginesSchema,
  liveness: z
    .strictObject({
      /** A node with no sample for this long is stale. */
      staleAfter: duration().prefault(DEFAULT_STALE_AFTER),
      /** After a poller start, weights adopted from the engine are held this long while agents reconnect (their backoff). */
      restartGrace: duration().prefault(DEFAULT_RESTART_GRACE),
    })
    .prefault({}),
  agents: z
    .strictObject({
      /** Sampling interval pushed to every agent on connect. */
      interval: duration({ min: MIN_AGENT_INTERVAL, max: MAX_AGENT_INTERVAL }).prefault(DEFAULT_AGENT_INTERVAL),
    })
    .prefault({}),
  reconcile: z
    .strictObject({
      /** Compare the engine with the policy this often even when nothing changed: finds drift and engines that lost their state. */
      every: duration({ min: MIN_RECONCILE_EVERY }).prefault(DEFAULT_RECONCILE_EVERY),
      /** At most this many engine operations per cycle; the rest follow in the next cycles. */
      maxOpsPerCycle: z.number().int().min(1).default(DEFAULT_MAX_OPS_PER_CYCLE),
    })
    .prefault({}),
  services: z.array(serviceSchema).min(1, 'needs at least one service'),
}).superRefine((p, ctx) => {
  // Samples arrive every interval (plus network and scheduling jitter): a
  // deadline closer than that turns live servers stale between samples.
  const least = STALE_AFTER_INTERVALS * p.agents.interval;
  if (p.liveness.staleAfter < least) {
    ctx.addIssue({
      code: 'custom',
      path: ['liveness', 'staleAfter'],
      message: `must be at least ${STALE_AFTER_INTERVALS} × agents.interval (${formatDuration(least)}), or live servers turn stale between samples`,
    });
  }
  const servers = p.services.reduce((n, s) => n + s.servers.length, 0);
  if (servers > MAX_POLICY_SERVERS) {
    ctx.addIssue({ code: 'custom', path: ['services'], message: `${servers} server entries in all, at most ${MAX_POLICY_SERVERS} (docs/RELIABILITY.md)` });
  }
});

export type PolicyInput = z.input<typeof policySchema>;
export type PolicyOutput = z.output<typeof policySchema>;
