// The HAProxy engine: weights and connection limits of HAProxy servers,
// written through the runtime API (client.ts). Addresses are HAProxy's own
// names: a service is a backend (`web`), a destination a server of it
// (`web1`, or `10.0.0.1:8080` for a server added at runtime). Backends live in
// haproxy.cfg, so add-service and remove-service are unsupported;
// servers can be added and removed at runtime (HAProxy ≥ 2.5 dynamic servers,
// on backends with a dynamic balance algorithm).
//
// Weights and servers set here are runtime state: a HAProxy reload or restart
// goes back to haproxy.cfg unless it keeps a `server-state-file`. The poller
// re-applies its weights on the next cycle either way.
import type { EngineDescriptor } from '../descriptor.js';
import type { Engine } from '../engine.js';
import {
  CommandRefusedError,
  ConflictError,
  EngineClosedError,
  EnginePermissionError,
  OptionError,
  TargetBusyError,
  UnknownTargetError,
  UnsupportedError,
  type BridgeError,
} from '../errors.js';
import type { EngineOp, Observation, WeightRange } from '../model.js';
import { checkWeights } from '../op-checks.js';
import { createRuntimeApiClient, type RuntimeApiClient } from './client.js';
import {
  checkOps,
  groupLines,
  planCommands,
  serverNamedByAddress,
  type PlannedOp,
  type ServerAddressResolver,
} from './plan.js';
import { classifyReply, type CliLevel, type ReplyOutcome, type StatBackend } from './replies.js';

export const HAPROXY_ENGINE_KIND = 'haproxy';
/** `set server … weight` accepts 0..256 (HAProxy's SRV_UWGHT_MAX). */
export const HAPROXY_WEIGHT_RANGE: WeightRange = { min: 0, max: 256 };
/**
 * Longest command line sent at once. HAProxy 2.6 reads `;`-joined commands
 * one by one and took 2 MB lines here, but older versions need a line to fit
 * in one buffer (tune.bufsize, 16 KiB by default): stay under it.
 */
export const DEFAULT_HAPROXY_MAX_LINE_BYTES = 15_000;

export interface HaproxyOptions {
  /** The stats socket (Unix path or HOST:PORT); it must be `level admin` for writes. */
  readonly socket: string;
  /** Bound on each exchange with HAProxy. */
  readonly timeoutMs?: number;
  /** See DEFAULT_HAPROXY_MAX_LINE_BYTES. */
  readonly maxLineBytes?: number;
  /** Address (`HOST:PORT`) for a server created by add-destination; by default the server's name is its IPv4 address. */
  readonly resolveServer?: ServerAddressResolver;
}

export interface HaproxyEngine extends Engine {
  readonly kind: typeof HAPROXY_ENGINE_KIND;
  /** The runtime API client the engine uses (for diagnostics and tests). */
  readonly client: RuntimeApiClient;
}

/**
 * apply() costs one `show stat` exchange (to check every target and skip
 * writes that change nothing), then one connection per command line: all
 * set-weight ops of a batch share one line (split only past maxLineBytes);
 * add-destination and remove-destination each end a line, because they can
 * fail in ways the check cannot foresee and HAProxy runs a line to its end.
 */
export function createHaproxyEngine(options: HaproxyOptions): HaproxyEngine {
  const client = createRuntimeApiClient({ socket: options.socket, timeoutMs: options.timeoutMs });
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_HAPROXY_MAX_LINE_BYTES;
  if (!Number.isInteger(maxLineBytes) || maxLineBytes < 256) {
    throw new OptionError(`maxLineBytes: ${maxLineBytes} must be an integer of at least 256`);
  }
  const resolve = options.resolveServer ?? serverNamedByAddress;
  let queue: Promise<void> = Promise.resolve();
  let closed = false;

  async function applyNow(ops: readonly EngineOp[]): Promise<void> {
    if (closed) throw new EngineClosedError(HAPROXY_ENGINE_KIND);
    checkWeights(ops, HAPROXY_WEIGHT_RANGE);
    checkOps(ops);
    if (ops.length === 0) return;
    const backends = await client.showStat();
    const plan = planCommands(ops, backends, resolve);
    for (const line of groupLines(plan.ops, maxLineBytes)) {
      const commands = line.flatMap((op) => op.commands);
      const { level, replies } = await client.run(commands);
      let next = 0;
      for (const [position, op] of line.entries()) {
        for (const command of op.commands) {
          const outcome = classifyReply(replies[next++] ?? '');
          if (outcome.ok) continue;
          throw replyError(op, command, outcome, {
            level,
            socket: client.socket,
            backends,
            sentAfter: line.length - position - 1,
          });
        }
      }
    }
    if (plan.error !== null) throw plan.error;
  }

  return {
    kind: HAPROXY_ENGINE_KIND,
    weightRange: HAPROXY_WEIGHT_RANGE,
    client,
    async observe(): Promise<Observation> {
      const backends = await client.showStat();
      return {
        services: backends.map((backend) => ({
          address: backend.name,
          scheduler: backend.algorithm === '' ? 'unknown' : backend.algorithm,
          destinations: backend.servers.map((server) => ({
            address: server.name,
            weight: server.weight,
            activeConnections: server.currentSessions,
            inactiveConnections: null,
            totalConnections: server.totalSessions,
            maxConnections: server.maxConnections,
            up: !/^(?:DOWN|MAINT)/.test(server.status),
          })),
        })),
      };
    },
    apply(ops) {
      const run = queue.then(() => applyNow(ops));
      queue = run.catch(() => undefined);
      return run;
    },
    async close() {
      closed = true;
      await queue;
    },
  };
}

interface ReplyContext {
  readonly level: CliLevel;
  readonly socket: string;
  readonly backends: readonly StatBackend[];
  /** Ops after the failing one on the same line: HAProxy ran them too. */
  readonly sentAfter: number;
}

function replyError(
  op: PlannedOp,
  command: string,
  outcome: Exclude<ReplyOutcome, { ok: true }>,
  context: ReplyContext,
): BridgeError {
  const said =
    `${op.label}: HAProxy answered "${command}" with "${outcome.message}"` +
    (context.sentAfter > 0 ? ` (the ${context.sentAfter} later op(s) on the same command line were sent too)` : '');
  switch (outcome.kind) {
    case 'no-such-server':
    case 'no-such-backend':
      // Checked just before; it went away in between.
      return new UnknownTargetError(`${said}; it was removed while the batch was being applied`);
    case 'permission-denied':
      return new EnginePermissionError(
        `${said}: the stats socket ${context.socket} is at level "${context.level}", and changing servers needs ` +
          `level admin, e.g. "stats socket /run/haproxy/admin.sock mode 600 level admin" in the global section of haproxy.cfg`,
      );
    case 'server-exists':
      return new ConflictError(`${said}; it was added while the batch was being applied`);
    case 'server-busy':
      return new TargetBusyError(
        `${said}: the server is in maintenance now (no new connections) and can be removed once its ` +
          `connections have finished; apply the removal again then`,
      );
    case 'not-dynamic': {
      const backend = context.backends.find((b) => b.name === op.backend);
      return new UnsupportedError(
        `${said}: "balance ${backend?.algorithm ?? '?'}" cannot take servers at runtime; use roundrobin, ` +
          `leastconn, first or a consistent hash, or declare the server in haproxy.cfg`,
      );
    }
    case 'other':
      return new CommandRefusedError(said);
  }
}

/** HAProxy's runtime API: backends and their algorithm live in haproxy.cfg; maxconn is the connection limit. */
export const HAPROXY_ENGINE: EngineDescriptor<HaproxyOptions> = {
  kind: HAPROXY_ENGINE_KIND,
  weightRange: HAPROXY_WEIGHT_RANGE,
  checkScheduler: () =>
    'HAProxy\'s algorithm is "balance" in haproxy.cfg (roundrobin and leastconn follow weights; it has no shortest expected delay): remove scheduler here',
  connectionLimits: true,
  ownsServicesByDefault: false,
  canCreateServices: false,
  create: (options) => createHaproxyEngine(options),
};
