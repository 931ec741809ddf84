// Compile a policy file into a fully defaulted, checked `CompiledPolicy`.
// Every problem is reported with file, line, path and value, all at once.
import { open } from 'node:fs/promises';
import type { z } from 'zod';
import { formatHostPort, formatL4Address, type EngineDescriptor } from '@loadfeed/kernel-bridge';
import { excerpt, PolicyError, type PolicyProblem } from '../errors.js';
import { formatDuration } from '../util/duration.js';
import { ORCA_NODE_PREFIX } from '@loadfeed/proto';
import type { Expression } from './expression.js';
import { parseHere, parseOffThread, type YamlResult } from './yaml-text.js';
import { API_VERSION, DEFAULT_HALF_LIFE_DOWN_MS, DEFAULT_HALF_LIFE_MS, MAX_POLICY_BYTES, QUEUE_HALF_LIFE_MS, NAME_ADDRESSED_ENGINES, NAMED_SERVICE_ENGINES, policySchema, type PolicyInput, type PolicyOutput } from './schema.js';

export type StrategyConfig = PolicyOutput['services'][number]['strategy'];
export type StrategyName = StrategyConfig['name'];

/** How a policy server entry finds its agent(s). */
export type ServerMatch =
  | { readonly by: 'node'; readonly node: string; readonly address: string }
  /** An agentless gRPC backend read through ORCA: `node` is `orca:` + `target`. */
  | { readonly by: 'orca'; readonly target: string; readonly node: string; readonly address: string }
  | { readonly by: 'address'; readonly host: string; readonly address: string }
  | { readonly by: 'selector'; readonly selector: Readonly<Record<string, string>>; readonly port: number };

export interface Guard {
  readonly name: string;
  readonly when: Expression;
  readonly weight: number;
}

export interface CompiledService {
  readonly name: string;
  readonly engine: string;
  readonly address: string;
  readonly scheduler: string | null;
  readonly servers: readonly ServerMatch[];
  readonly strategy: StrategyConfig;
  readonly smoothing: { readonly halfLifeMs: number; readonly halfLifeDownMs: number };
  readonly deadband: number;
  readonly maxChangePerSecond: number | null;
  readonly weights: { readonly min: number; readonly max: number; readonly quantum: number };
  readonly meanBand: { readonly min: number; readonly max: number } | null;
  readonly shareCap: number | null;
  readonly slowStart: { readonly durationMs: number; readonly from: number } | null;
  readonly blackoutMs: number;
  readonly guards: readonly Guard[];
  readonly stale: { readonly action: 'quiesce' | 'hold'; readonly holdForMs: number };
  readonly allZero: 'keep-last' | 'equal';
  readonly drift: 'correct' | 'respect';
  /** The poller creates and removes the service and its destinations. */
  readonly owned: boolean;
  /** Expression for each server's connection limit, or null for none. */
  readonly connectionLimit: Expression | null;
}

/** A service's smoothing half-life when the policy gives none: queue's is shorter (schema.ts, QUEUE_HALF_LIFE_MS). */
export function defaultHalfLifeMs(strategy: StrategyName): number {
  return strategy === 'queue' ? QUEUE_HALF_LIFE_MS : DEFAULT_HALF_LIFE_MS;
}

/** Half-lives of rising and falling scores: a falling one defaults to the shorter of DEFAULT_HALF_LIFE_DOWN_MS and the rising one. */
function smoothingOf(s: { halfLife?: number | undefined; halfLifeDown?: number | undefined }, strategy: StrategyName): CompiledService['smoothing'] {
  const halfLifeMs = s.halfLife ?? defaultHalfLifeMs(strategy);
  return { halfLifeMs, halfLifeDownMs: s.halfLifeDown ?? Math.min(halfLifeMs, DEFAULT_HALF_LIFE_DOWN_MS) };
}

/** The node id an agentless ORCA backend reports as (within Hello's node id alphabet). */
export function orcaNodeId(target: string): string {
  return `${ORCA_NODE_PREFIX}${target.replace(/[[\]]/g, '')}`;
}

export type EnginesConfig = PolicyOutput['engines'];

export interface CompiledPolicy {
  readonly file: string;
  readonly liveness: { readonly staleAfterMs: number; readonly restartGraceMs: number };
  readonly agents: { readonly intervalMs: number };
  readonly reconcile: { readonly everyMs: number; readonly maxOpsPerCycle: number };
  /** Engine settings (durations in ms). */
  readonly engines: EnginesConfig;
  readonly services: readonly CompiledService[];
}

/** What compile checks a service against: the engine's own description (EngineDescriptor), without its factory. */
export type EngineLimits = Omit<EngineDescriptor<never>, 'kind' | 'create'>;

/** Engines the policy may name, with what compile must check against. */
export type KnownEngines = ReadonlyMap<string, EngineLimits>;

/** `quantum: auto` on a coarse scheduler: 20 steps over the weight range. */
export const COARSE_QUANTUM_STEPS = 20;

/**
 * A policy file's text; the one place policy files are read (a failure is a
 * PolicyError naming the file). A file over MAX_POLICY_BYTES is refused
 * without reading it.
 */
export async function readPolicyFile(file: string): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size > MAX_POLICY_BYTES) throw tooLarge(file, size);
      // A file growing between stat and read is cut one byte past the limit, and refused below.
      const buffer = Buffer.alloc(MAX_POLICY_BYTES + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_POLICY_BYTES) throw tooLarge(file, bytesRead);
      return buffer.toString('utf8', 0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof PolicyError) throw err;
    throw new PolicyError([{ file, line: null, path: '', message: `cannot read: ${(err as Error).message}` }], { cause: err });
  }
}

export async function loadPolicyFile(file: string, engines: KnownEngines): Promise<CompiledPolicy> {
  return compilePolicy(await readPolicyFile(file), file, engines);
}

function tooLarge(file: string, bytes: number): PolicyError {
  return new PolicyError([{ file, line: null, path: '', message: `${bytes} bytes or more, at most ${MAX_POLICY_BYTES} (a policy of the largest size the poller is measured at is far smaller)` }]);
}

export function compilePolicy(text: string, file: string, engines: KnownEngines): CompiledPolicy {
  checkSize(text, file);
  const parsed = parseHere(text);
  const outcome = compileData(parsed.result, file, engines);
  if ('policy' in outcome) return outcome.policy;
  throw new PolicyError(locate(outcome.problems, parsed.lines(outcome.problems.map((p) => p.at))));
}

/**
 * compilePolicy with the YAML parse in a worker thread (yaml-text.ts): what
 * is left on the event loop is checking the data, about a tenth of the time.
 */
export async function compilePolicyOffThread(text: string, file: string, engines: KnownEngines): Promise<CompiledPolicy> {
  checkSize(text, file);
  let parsed: Awaited<ReturnType<typeof parseOffThread>>;
  try {
    parsed = await parseOffThread(text);
  } catch (err) {
    throw new PolicyError([{ file, line: null, path: '', message: `cannot parse: ${(err as Error).message}` }], { cause: err });
  }
  try {
    const outcome = compileData(parsed.result, file, engines);
    if ('policy' in outcome) return outcome.policy;
    throw new PolicyError(locate(outcome.problems, await parsed.lines(outcome.problems.map((p) => p.at))));
  } finally {
    await parsed.close();
  }
}

function checkSize(text: string, file: string): void {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_POLICY_BYTES) throw tooLarge(file, bytes);
}

/** A problem whose line is that of the document node at `at`; null: the line is known. */
interface Unlocated extends PolicyProblem {
  readonly at: readonly PropertyKey[];
}

function locate(problems: readonly Unlocated[], lines: readonly (number | null)[]): PolicyProblem[] {
  return problems.map(({ at: _at, ...p }, i) => ({ ...p, line: p.line ?? lines[i] ?? null }));
}

function compileData(result: YamlResult, file: string, engines: KnownEngines): { policy: CompiledPolicy } | { problems: Unlocated[] } {
  if (!result.ok) return { problems: result.problems.map((p) => ({ file, line: p.line, path: '', message: p.message, at: [] })) };
  const problems: Unlocated[] = [];
  const schema = policySchema.safeParse(result.data);
  if (!schema.success) {
    for (const issue of schema.error.issues) problems.push(problemFromIssue(file, result.data, issue));
    return { problems };
  }
  const compiled = finish(schema.data, file, engines);
  checkSemantics(compiled, engines, (path, message) => problems.push({ file, line: null, path: formatPath(path), message, at: path }));
  return problems.length > 0 ? { problems } : { policy: compiled };
}

function finish(p: PolicyOutput, file: string, engines: KnownEngines): CompiledPolicy {
  return {
    file,
    liveness: { staleAfterMs: p.liveness.staleAfter, restartGraceMs: p.liveness.restartGrace },
    agents: { intervalMs: p.agents.interval },
    reconcile: { everyMs: p.reconcile.every, maxOpsPerCycle: p.reconcile.maxOpsPerCycle },
    engines: p.engines,
    services: p.services.map((s): CompiledService => {
      const coarse = s.scheduler !== undefined && (engines.get(s.engine)?.coarseSchedulers ?? []).includes(s.scheduler);
      return {
        name: s.name,
        engine: s.engine,
        // Engines report addresses in canonical form (`tcp 192.0.2.1:80`,
        // `[2001:db8::1]:80`): compare like with like. The schema parsed them and checked they parse.
        address: s.address.parsed === null || NAME_ADDRESSED_ENGINES.includes(s.engine) || NAMED_SERVICE_ENGINES.includes(s.engine) ? s.address.text : formatL4Address(s.address.parsed),
        scheduler: s.scheduler ?? null,
        servers: s.servers.map((srv): ServerMatch => {
          // No prototype: a label named like an Object method is only ever the label.
          if (srv.selector !== undefined) return { by: 'selector', selector: Object.freeze(Object.assign(Object.create(null) as Record<string, string>, srv.selector)), port: srv.port ?? 0 };
          const named = NAME_ADDRESSED_ENGINES.includes(s.engine);
          const at = named ? null : (srv.address?.parsed ?? null);
          const address = at === null ? (srv.address?.text ?? '') : formatHostPort(at);
          if (srv.orca?.parsed) {
            const target = formatHostPort(srv.orca.parsed);
            return { by: 'orca', target, node: orcaNodeId(target), address };
          }
          if (srv.node !== undefined) return { by: 'node', node: srv.node, address };
          return { by: 'address', host: at?.host ?? '', address };
        }),
        strategy: s.strategy,
        smoothing: smoothingOf(s.smoothing, s.strategy.name),
        deadband: s.deadband,
        maxChangePerSecond: s.maxChangePerSecond,
        weights: {
          min: s.weights.min,
          max: s.weights.max,
          quantum: s.weights.quantum !== 'auto' ? s.weights.quantum : coarse ? Math.max(1, Math.round(s.weights.max / COARSE_QUANTUM_STEPS)) : 1,
        },
        meanBand: s.meanBand,
        shareCap: s.shareCap,
        slowStart: s.slowStart === null ? null : { durationMs: s.slowStart.duration, from: s.slowStart.from },
        blackoutMs: s.blackout,
        guards: s.guards.map((g) => ({ name: g.name ?? g.when.source, when: g.when, weight: g.weight })),
        stale: { action: s.stale.action, holdForMs: s.stale.holdFor },
        allZero: s.allZero,
        drift: s.drift,
        owned: s.owned ?? engines.get(s.engine)?.ownsServicesByDefault ?? false,
        connectionLimit: s.connectionLimit ?? null,
      };
    }),
  };
}

/**
 * The compiled policy as a policy file with every default written out
 * (`loadfeed policy explain`). Compiling it again gives the same policy.
 */
export function printPolicy(p: CompiledPolicy): PolicyInput {
  const d = formatDuration;
  return {
    apiVersion: API_VERSION,
    liveness: { staleAfter: d(p.liveness.staleAfterMs), restartGrace: d(p.liveness.restartGraceMs) },
    agents: { interval: d(p.agents.intervalMs) },
    reconcile: { every: d(p.reconcile.everyMs), maxOpsPerCycle: p.reconcile.maxOpsPerCycle },
    engines: {
      fastpath: { connectTimeout: d(p.engines.fastpath.connectTimeout), downPeriod: d(p.engines.fastpath.downPeriod) },
      haproxy: { socket: p.engines.haproxy.socket, timeout: d(p.engines.haproxy.timeout) },
      ipvs: { ...p.engines.ipvs },
      nftables: { ...p.engines.nftables },
    },
    services: p.services.map((s) => ({
      name: s.name,
      engine: s.engine,
      address: s.address,
      ...(s.scheduler === null ? {} : { scheduler: s.scheduler }),
      servers: s.servers.map((m) => {
        if (m.by === 'selector') return { selector: { ...m.selector }, port: m.port };
        if (m.by === 'orca') return { orca: m.target, address: m.address };
        return m.by === 'node' ? { node: m.node, address: m.address } : { address: m.address };
      }),
      strategy: printStrategy(s.strategy),
      smoothing: { halfLife: d(s.smoothing.halfLifeMs), halfLifeDown: d(s.smoothing.halfLifeDownMs) },
      deadband: s.deadband,
      maxChangePerSecond: s.maxChangePerSecond,
      weights: { ...s.weights },
      meanBand: s.meanBand === null ? null : { ...s.meanBand },
      shareCap: s.shareCap,
      slowStart: s.slowStart === null ? null : { duration: d(s.slowStart.durationMs), from: s.slowStart.from },
      blackout: d(s.blackoutMs),
      guards: s.guards.map((g) => ({ name: g.name, when: g.when.source, weight: g.weight })),
      stale: { action: s.stale.action, holdFor: d(s.stale.holdForMs) },
      allZero: s.allZero,
      drift: s.drift,
      owned: s.owned,
      ...(s.connectionLimit === null ? {} : { connectionLimit: s.connectionLimit.source }),
    })),
  };
}

function printStrategy(s: StrategyConfig): PolicyInput['services'][number]['strategy'] {
  if (s.name === 'orca') {
    return { ...s, blackoutPeriod: formatDuration(s.blackoutPeriod), weightExpirationPeriod: formatDuration(s.weightExpirationPeriod) };
  }
  if (s.name === 'expression') return { ...s, score: s.score.source };
  if (s.name === 'queue') return { ...s, inFlight: s.inFlight.source, latency: s.latency.source, concurrency: s.concurrency?.source ?? null };
  return { ...s };
}

type Report = (path: readonly PropertyKey[], message: string) => void;

function checkSemantics(p: CompiledPolicy, engines: KnownEngines, report: Report): void {
  const names = new Set<string>();
  const addresses = new Set<string>();
  p.services.forEach((s, i) => {
    if (names.has(s.name)) report(['services', i, 'name'], `${excerpt(s.name)} names another service already`);
    names.add(s.name);
    const limits = engines.get(s.engine);
    if (!limits) {
      report(['services', i, 'engine'], `${excerpt(s.engine)} is not an engine (known: ${[...engines.keys()].join(', ')})`);
      return;
    }
    const key = `${s.engine} ${s.address}`;
    if (addresses.has(key)) report(['services', i, 'address'], `${excerpt(s.address)} is used by another service of engine ${s.engine}`);
    addresses.add(key);
    if (s.owned && !limits.canCreateServices) {
      report(['services', i, 'owned'], `true: the ${s.engine} engine cannot create services (they come from its own configuration)`);
    }
    const schedulerProblem = s.scheduler === null ? null : (limits.checkScheduler?.(s.scheduler) ?? null);
    if (schedulerProblem !== null) report(['services', i, 'scheduler'], `${excerpt(s.scheduler)}: ${schedulerProblem}`);
    if (s.connectionLimit !== null && !limits.connectionLimits) {
      report(['services', i, 'connectionLimit'], `the ${s.engine} engine has no per-server connection limit`);
    }
    if (s.engine === 'haproxy' && p.engines.haproxy.socket === null) {
      report(['services', i, 'engine'], 'haproxy needs engines.haproxy.socket: the runtime API socket (stats socket … level admin)');
    }
    if (s.weights.max > limits.weightRange.max) {
      report(['services', i, 'weights', 'max'], `${s.weights.max} exceeds the ${s.engine} engine's maximum weight (${limits.weightRange.max})`);
    }
    const dests = new Set<string>();
    s.servers.forEach((srv, j) => {
      const key = srv.by === 'selector' ? `selector ${JSON.stringify(srv.selector)}:${srv.port}` : srv.address;
      if (dests.has(key)) report(['services', i, 'servers', j, srv.by === 'selector' ? 'selector' : 'address'], `${srv.by === 'selector' ? 'this selector and port are' : `${excerpt(key)} is`} listed twice`);
      dests.add(key);
    });
  });
}

function problemFromIssue(file: string, data: unknown, issue: z.core.$ZodIssue): Unlocated {
  const path = issue.path;
  const value = valueAt(data, path);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.slice(0, 5).map(excerpt).join(', ')}${issue.keys.length > 5 ? ` and ${issue.keys.length - 5} more` : ''}`;
    return { file, line: null, path: formatPath(path), message, at: [...path, issue.keys[0] ?? ''] };
  }
  const scalar = value === null || (value !== undefined && typeof value !== 'object');
  if (scalar && !message.startsWith(excerpt(value))) {
    message = `${excerpt(value)}${message.startsWith('must') ? ' ' : ': '}${message}`;
  }
  if (!scalar && issue.code === 'invalid_type') {
    message = path.length === 0 ? 'a policy is a mapping with apiVersion and services' : value !== undefined ? message : 'is required';
  }
  return { file, line: null, path: formatPath(path), message, at: path };
}

/** What the file holds at `path` (undefined where it has nothing). */
function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const key of path) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc === '' ? String(part) : `${acc}.${String(part)}`), '');
}
