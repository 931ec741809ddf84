// The nftables engine: weighted DNAT in a loadfeed-owned table (`inet
// loadfeed` by default; layout in script.ts). Services are `tcp VIP:PORT` or
// `udp VIP:PORT` (IPv4 or IPv6), destinations `IP:PORT` of the same family; the
// engine creates and removes services itself. Every apply() reads the table,
// applies the ops (model.ts) and, when something changed, rewrites the table
// in ONE `nft -f -` transaction; observe() reads it back (ruleset.ts). The
// kernel is the only copy of the state, so a poller restart adopts it as is.
//
// The director must route: forwarded traffic needs net.ipv4.ip_forward=1 (and
// net.ipv6.conf.all.forwarding=1), and the real servers must send replies back
// through the director (default route), since DNAT keeps the client address.
import type { EngineDescriptor } from '../descriptor.js';
import type { Engine } from '../engine.js';
import { CommandFailedError, EngineClosedError, EnginePermissionError, EngineUnavailableError, OptionError } from '../errors.js';
import { weightOnly, type EngineOp, type Observation, type WeightRange } from '../model.js';
import { checkWeights } from '../op-checks.js';
import { createCommandRunner, DEFAULT_COMMAND_TIMEOUT_MS, type CommandResult, type CommandRunner } from '../command.js';
import {
  NFTABLES_SCHEDULER,
  applySteps,
  compileSteps,
  destinationAddress,
  serviceAddress,
  type NftService,
} from './model.js';
import { parseRuleset } from './ruleset.js';
import { checkTableName, renderScript } from './script.js';

export const NFTABLES_ENGINE_KIND = 'nftables';
/** IPVS's practical range, so policies move between engines unchanged; a service's weights may add up to 2^31 - 1. */
export const NFTABLES_WEIGHT_RANGE: WeightRange = { min: 0, max: 65535 };
export const DEFAULT_NFTABLES_TABLE = 'loadfeed';

export interface NftablesOptions {
  /** Name of the loadfeed-owned table, family inet. Anything else in it is dropped by the next update. */
  readonly table?: string;
  /**
   * How to run nft: `['nft']` by default; `['ip', 'netns', 'exec', 'lb', 'nft']`
   * drives the ruleset of network namespace `lb`. Tools given by name are
   * the system's (SYSTEM_BIN_DIRS, never PATH); an absolute path is used as given.
   */
  readonly command?: readonly string[];
  /** Bound on each nft call. */
  readonly timeoutMs?: number;
}

export interface NftablesEngine extends Engine {
  readonly kind: typeof NFTABLES_ENGINE_KIND;
  readonly table: string;
}

export function createNftablesEngine(options: NftablesOptions = {}): NftablesEngine {
  const table = options.table ?? DEFAULT_NFTABLES_TABLE;
  if (!checkTableName(table)) {
    throw new OptionError(`table: "${table}" must be a letter followed by up to 63 letters, digits or "_"`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new OptionError(`timeoutMs: ${timeoutMs} must be a positive number of milliseconds`);
  }
  const runner = createCommandRunner(options.command ?? ['nft'], { timeoutMs, install: 'install nftables (apt-get install nftables)' });
  let queue: Promise<void> = Promise.resolve();
  let closed = false;

  async function read(): Promise<NftService[]> {
    const args = ['-j', 'list', 'table', 'inet', table];
    const result = await runner.run(args);
    // No table yet: nothing was ever applied (or someone deleted it).
    if (result.exitCode === 1 && /No such file or directory/.test(result.stderr)) return [];
    if (result.exitCode !== 0) throw nftError(runner, args, result);
    return parseRuleset(result.stdout, table);
  }

  async function write(services: readonly NftService[]): Promise<void> {
    const args = ['-f', '-'];
    const result = await runner.run(args, renderScript(table, services));
    if (result.exitCode !== 0) throw nftError(runner, args, result);
  }

  async function applyNow(ops: readonly EngineOp[]): Promise<void> {
    if (closed) throw new EngineClosedError(NFTABLES_ENGINE_KIND);
    checkWeights(ops, NFTABLES_WEIGHT_RANGE);
    const steps = compileSteps(ops);
    if (steps.length === 0) return;
    const before = await read();
    const plan = applySteps(before, steps);
    if (JSON.stringify(plan.services) !== JSON.stringify(before)) await write(plan.services);
    if (plan.error !== null) throw plan.error;
  }

  return {
    kind: NFTABLES_ENGINE_KIND,
    weightRange: NFTABLES_WEIGHT_RANGE,
    table,
    async observe(): Promise<Observation> {
      const services = await read();
      return {
        services: services.map((s) => ({
          address: serviceAddress(s.key),
          scheduler: NFTABLES_SCHEDULER,
          // Per-destination counts would need conntrack; nftables itself has none.
          destinations: s.destinations.map((d) => weightOnly(destinationAddress(d), d.weight)),
        })),
      };
    },
    apply(ops) {
      const run = queue.then(() => applyNow(ops));
      queue = run.catch(() => undefined);
      return run;
    },
    async close() {
      // The table stays: the kernel keeps forwarding with the last weights.
      closed = true;
      await queue;
    },
  };
}

function nftError(runner: CommandRunner, args: readonly string[], result: CommandResult): Error {
  const shown = `${[...runner.command, ...args].join(' ')}`;
  const said = result.stderr.trim().replace(/\s*\n\s*/g, ' | ');
  if (/Operation not permitted/.test(result.stderr)) {
    return new EnginePermissionError(`${shown}: ${said}; nft needs CAP_NET_ADMIN (run as root or grant the capability)`);
  }
  if (/Protocol not supported|Could not receive .* from kernel|No such file or directory.*netlink/i.test(result.stderr)) {
    return new EngineUnavailableError(`${shown}: ${said}; the kernel needs nf_tables and nft_nat (modprobe nf_tables)`);
  }
  return new CommandFailedError(`${shown} exited with ${String(result.exitCode)}: ${said}`, {
    exitCode: result.exitCode,
    stderr: result.stderr,
  });
}

/** nftables: a loadfeed-owned table, weighted `numgen random` only, no connection limits. */
export const NFTABLES_ENGINE: EngineDescriptor<NftablesOptions> = {
  kind: NFTABLES_ENGINE_KIND,
  weightRange: NFTABLES_WEIGHT_RANGE,
  checkScheduler: (name) => (name === 'random' ? null : 'the nftables engine\'s only scheduler is "random" (numgen random, by weight)'),
  connectionLimits: false,
  ownsServicesByDefault: true,
  canCreateServices: true,
  create: (options) => createNftablesEngine(options),
};
