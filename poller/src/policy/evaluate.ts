// From the node table to desired weights, one service at a time. The order
// of the wrappers is part of the policy language (docs/policy.md):
//
//   1. liveness: a server without a live agent is quiesced (or held, per
//      `stale`); a drained server gets 0
//   2. guards: the first matching condition fixes the weight
//   3. blackout: a server (re)connected less than `blackout` ago gets the mean
//   4. strategy scores → EWMA smoothing (half-life, poller clock) → a server
//      without a score gets the mean score
//   5. scale: the best score of the established servers (not in slow start)
//      maps to weights.max
//   6. meanBand clamp, 7. shareCap, 8. slow start ramp, bounded by the
//      established servers' mean weight
//   9. min/max clamp, 10. maximum change per second, 11. quantum, 12. deadband
//  13. all-zero fallback: if every server ends at 0 because metrics vanished,
//      keep the last weights (or equal ones) instead of black-holing the service
import { formatHostPort } from '@loadfeed/kernel-bridge';
import { metricValues, type Sample } from '@loadfeed/proto';
import { getOrCreate } from '../util/maps.js';
import type { NodeLookup, NodeRecord } from '../cycle/node-table.js';
import type { CompiledService, Guard, ServerMatch } from './compile.js';
import type { Expression, Variables } from './expression.js';
import { fmt, variablesOf, type NodeMetrics, type Score, type ServerInput, type StrategyRegistry } from './strategy.js';

export type ServerState = 'live' | 'blackout' | 'slow-start' | 'guarded' | 'drained' | 'stale' | 'held' | 'absent' | 'fallback';

export interface WeightDecision {
  readonly address: string;
  /** Node id of the agent that reports (or should report) for this server, when one is known. */
  readonly node: string | null;
  readonly weight: number;
  /** Smoothed strategy score, or null when the strategy did not score it. */
  readonly score: number | null;
  readonly state: ServerState;
  /** Why this weight: the deciding metric or wrapper, e.g. "cpu 0.5 of 4 cores; slow start 40%". */
  readonly reason: string;
  /** Connection limit from `connectionLimit` (0 = none); null when the policy sets none or the server has no metrics. */
  readonly maxConnections: number | null;
}


interface ServerMemory {
  smoothed: number | null;
  smoothedAt: number;
  /** Last weight decided (and so applied) for this server, and when. */
  weight: number | null;
  decidedAt: number;
  /** Last weight it had while its agent reported, if > 0: what `allZero: keep-last` restores. */
  lastGood: number | null;
  /** Since when the server has had no live agent, for `stale: hold`. */
  missingSince: number | null;
  /** Stream (its start time) last seen live. */
  stream: number | null;
  /** When the server came back from having no live agent, until slow start takes note. */
  returnedAt: number | null;
  /** When the current slow start ramp began, or null when not ramping. */
  rampFrom: number | null;
  /** The weight came from the engine at start: no ramp for the stream that first reports. */
  adopted: boolean;
  /** An adopted weight is held until then while the agent reconnects. */
  holdUntil: number | null;
  /** The weight adopted from the engine, while adopted servers still wait for their agents. */
  adoptedWeight: number | null;
  /** The last evaluation that included this server: one that a later evaluation leaves out is forgotten. */
  round: number;
  /** What its node's latest sample means for the service, worked out once per sample. */
  facts: SampleFacts | null;
}

/**
 * One sample of one node, seen by one compiled service: at scale nearly
 * every server is evaluated every cycle while few have a new sample, so
 * what depends only on the sample is computed once. A new sample, a new
 * stream (node record) or a new policy (compiled service) starts afresh.
 */
interface SampleFacts {
  readonly node: NodeRecord;
  readonly sample: Sample;
  readonly service: CompiledService;
  readonly input: ServerInput;
  /** The first guard whose condition holds, or null. */
  readonly guard: Guard | null;
  /** From `connectionLimit`; null when the policy sets none. */
  readonly maxConnections: number | null;
  /** The strategy's latest answer for this server; a per-server strategy is asked once per sample (null: not yet). */
  score: Score | null;
}

interface ServiceMemory {
  strategyKey: string;
  strategyState: unknown;
  servers: Map<string, ServerMemory>;
  /** The servers as last resolved: still right while the compiled service and the node table's membership stay the same. */
  resolved: { readonly service: CompiledService; readonly membership: number; readonly servers: readonly Resolved[] } | null;
}

interface Candidate extends Resolved {
  state: ServerState;
  reason: string;
  score: number | null;
  weight: number;
  /** Zero because metrics vanished (no agent, stale): what the all-zero fallback may override. */
  missing: boolean;
  /** Weight is final before scaling (guards, drain, liveness). */
  fixed: boolean;
  /** Slow start factor while the server ramps, else null. */
  ramp: number | null;
}

export class WeightEvaluator {
  private readonly services = new Map<string, ServiceMemory>();
  /** Counts evaluations (see ServerMemory.round). */
  private round = 0;

  constructor(private readonly strategies: StrategyRegistry) {}

  /**
   * Seed the last-known weights from the engine: a restarted poller adopts
   * what the engine has and holds it for `graceMs` while agents reconnect, so
   * a restart alone never flaps a weight to 0 or to a default.
   */
  adopt(service: CompiledService, weights: ReadonlyMap<string, number>, now: number, graceMs: number): void {
    const mem = this.memory(service);
    for (const [address, weight] of weights) {
      const s = this.server(mem, address, now);
      if (s.weight === null) {
        s.weight = weight;
        s.adoptedWeight = weight;
        s.lastGood = weight > 0 ? weight : null;
        s.adopted = weight > 0;
        s.holdUntil = now + graceMs;
      }
    }
  }

  /** Drop state of services no longer in the policy. */
  retain(serviceNames: ReadonlySet<string>): void {
    for (const name of this.services.keys()) if (!serviceNames.has(name)) this.services.delete(name);
  }

  evaluate(service: CompiledService, nodes: NodeLookup, now: number): WeightDecision[] {
    const mem = this.memory(service);
    const round = ++this.round;
    const candidates: Candidate[] = [];
    for (const r of this.resolve(service, mem, nodes, now)) {
      r.memory.round = round;
      candidates.push(this.liveness(service, r, now));
    }

    // 2. guards and 3. blackout on the live ones; the rest go to the strategy.
    const scored: Candidate[] = [];
    const scoredFacts: SampleFacts[] = [];
    for (const c of candidates) {
      if (c.fixed || !c.node?.sample) continue;
      const facts = factsOf(c.memory, c.address, c.node, c.node.sample, service);
      if (facts.guard) {
        c.state = 'guarded';
        c.reason = `guard ${facts.guard.name}`;
        c.weight = facts.guard.weight;
        c.fixed = true;
        continue;
      }
      if (now - c.node.connectedAt < service.blackoutMs) {
        c.state = 'blackout';
        c.reason = `blackout for ${fmt((service.blackoutMs - (now - c.node.connectedAt)) / 1000)}s more: mean weight`;
        continue;
      }
      scored.push(c);
      scoredFacts.push(facts);
    }

    // 4. strategy, smoothing, mean for the unscored. A per-server strategy
    // is asked only about the servers with a sample it has not scored.
    const strategy = this.strategies.get(service.strategy.name);
    const ask = strategy.perServer === true ? scoredFacts.filter((f) => f.score === null) : scoredFacts;
    const answers = strategy.weigh(service.strategy, ask.map((f) => f.input), mem.strategyState, now);
    ask.forEach((f, i) => {
      f.score = answers[i] ?? null;
    });
    scored.forEach((c, i) => {
      const s = scoredFacts[i]?.score ?? null;
      const score = s?.score ?? null;
      // A score that is not a finite non-negative number is no score (a
      // strategy fed extreme metrics must not poison the service).
      const usable = score !== null && Number.isFinite(score) && score >= 0;
      c.reason = s?.reason ?? '';
      if (score !== null && !usable) c.reason += `; unusable score ${score}: mean`;
      c.score = usable ? smooth(c.memory, score, service.smoothing, now) : null;
    });
    const open = candidates.filter((c) => !c.fixed);
    let known = 0;
    let sum = 0;
    for (const c of open) {
      if (c.score === null || !Number.isFinite(c.score)) continue;
      known += 1;
      sum += c.score;
    }
    const meanScore = known > 0 ? sum / known : 1;
    for (const c of open) if (c.score === null) c.score = meanScore;

    // Which servers slow-start (the ramp state is updated here, before
    // scaling, so a ramping server's score does not set the scale).
    if (service.slowStart) for (const c of open) c.ramp = rampFactor(service, service.slowStart, c, now);
    const established = open.filter((c) => c.ramp === null);

    // 5. scale so the best established server maps to max. A server in slow
    // start does not set the scale: an idle returning server has the best
    // headroom of all, and scaling to it would shrink every other weight.
    const { min, max, quantum } = service.weights;
    const bestOfEstablished = bestScore(established);
    const best = bestOfEstablished > 0 ? bestOfEstablished : bestScore(open);
    for (const c of open) c.weight = best > 0 ? Math.min(max, (max * (c.score ?? 0)) / best) : max;

    // 6. mean band.
    if (service.meanBand && open.length > 0) {
      const m = open.reduce((a, c) => a + c.weight, 0) / open.length;
      for (const c of open) {
        const clamped = Math.min(service.meanBand.max * m, Math.max(service.meanBand.min * m, c.weight));
        if (clamped !== c.weight) c.reason += `; clamped to ${fmt(clamped / m)}× mean`;
        c.weight = clamped;
      }
    }
    // 7. share cap over every server that takes traffic.
    if (service.shareCap !== null) capShares(candidates, open, service.shareCap);
    // 8. slow start: a server that (re)connected or came back from silence
    // ramps up, unless its weight was adopted from the engine at start. The
    // ramp is `factor` × the smaller of its own weight and the established
    // servers' mean weight: its own weight alone is no bound, since headroom
    // rates an idle, cold server best of all.
    if (established.length < open.length) {
      const reference = established.length > 0 ? established.reduce((a, c) => a + c.weight, 0) / established.length : 0;
      for (const c of open) {
        if (c.ramp === null) continue;
        const bounded = reference > 0 && c.weight >= reference;
        c.weight = c.ramp * (bounded ? reference : c.weight);
        c.state = 'slow-start';
        c.reason += `; slow start ${Math.round(c.ramp * 100)}%${bounded ? ' of the established servers\' mean weight' : ''}`;
      }
    }

    // 9.–12. per server: clamp, rate limit, quantum, deadband.
    for (const c of open) {
      const s = c.memory;
      c.weight = Math.min(max, Math.max(min, c.weight));
      if (service.maxChangePerSecond !== null && s.weight !== null && s.weight > 0) {
        const limit = service.maxChangePerSecond * max * Math.max(0, now - s.decidedAt) / 1000;
        const limited = Math.min(s.weight + limit, Math.max(s.weight - limit, c.weight));
        if (limited !== c.weight) c.reason += '; rate limited';
        c.weight = limited;
      }
      c.weight = Math.max(min, Math.min(max, Math.round(c.weight / quantum) * quantum));
      if (s.weight !== null && s.weight > 0 && c.weight > 0 && c.weight !== s.weight && Math.abs(c.weight - s.weight) / s.weight < service.deadband) {
        c.weight = s.weight;
        c.reason += '; within deadband';
      }
    }

    // While servers adopted from the engine still wait for their agents, the
    // ones already back keep their adopted weights too: re-scaling them
    // against a partial set would flap shares just because the poller restarted.
    const waiting = candidates.some((c) => c.state === 'held' && c.memory.holdUntil !== null);
    for (const c of candidates) {
      const s = c.memory;
      if (!waiting) s.adoptedWeight = null;
      else if (!c.fixed && s.adoptedWeight !== null) {
        c.weight = s.adoptedWeight;
        c.state = 'held';
        c.reason += '; keeping the weight adopted from the engine until every agent has reported';
      }
    }

    // 13. all-zero fallback.
    if (candidates.length > 0 && candidates.every((c) => c.weight === 0) && candidates.some((c) => c.missing)) {
      for (const c of candidates) {
        if (!c.missing) continue;
        const last = c.memory.lastGood;
        if (service.allZero === 'keep-last' && last === null) continue; // nothing known to keep
        c.weight = service.allZero === 'keep-last' ? (last ?? 0) : max;
        c.state = 'fallback';
        c.reason = `every server would get 0 (${c.reason}): ${service.allZero === 'keep-last' ? 'keeping the last weight' : 'equal weights'}`;
      }
    }

    for (const c of candidates) {
      const s = c.memory;
      if (s.weight !== c.weight) s.decidedAt = now;
      s.weight = c.weight;
      // Drained or guarded to 0 on purpose: nothing for the fallback to restore.
      if (!c.missing && c.state !== 'held' && c.state !== 'fallback') s.lastGood = c.weight > 0 ? c.weight : null;
    }
    // Every candidate has its own entry: more entries means some are no longer resolved.
    if (mem.servers.size > candidates.length) for (const [address, s] of mem.servers) if (s.round !== round) mem.servers.delete(address);
    return candidates.map((c) => ({
      address: c.address,
      node: c.nodeId,
      weight: c.weight,
      score: c.score,
      state: c.state,
      reason: c.reason,
      maxConnections: service.connectionLimit && c.node?.sample ? factsOf(c.memory, c.address, c.node, c.node.sample, service).maxConnections : null,
    }));
  }

  /** The service's servers, their nodes and memory: resolved again only when the policy or the set of nodes changed. */
  private resolve(service: CompiledService, mem: ServiceMemory, nodes: NodeLookup, now: number): readonly Resolved[] {
    const known = mem.resolved;
    if (known?.service === service && known.membership === nodes.membership) return known.servers;
    const servers: Resolved[] = [];
    const seen = new Set<string>();
    resolve(service.servers, nodes, (address, node, nodeId) => {
      if (seen.has(address)) return; // named twice: the first entry counts
      seen.add(address);
      servers.push({ address, node, nodeId, memory: this.server(mem, address, now) });
    });
    mem.resolved = { service, membership: nodes.membership, servers };
    return servers;
  }

  /** 1. liveness, drain and the stale action. */
  private liveness(service: CompiledService, r: Resolved, now: number): Candidate {
    const { node, memory: s } = r;
    if (!node || node.state === 'stale' || !node.sample) {
      const [state, why]: [ServerState, string] = !node ? ['absent', 'no agent connected'] : node.state === 'stale' ? ['stale', 'agent silent: no sample within the stale deadline'] : ['absent', 'agent connected, no sample yet'];
      s.missingSince ??= now;
      s.smoothed = null; // a returning server starts from its fresh metrics
      if (s.holdUntil !== null && now < s.holdUntil && s.weight !== null) {
        return candidate(r, 'held', `${why}: keeping the weight adopted from the engine while agents reconnect`, s.weight, false, true);
      }
      const heldFor = now - s.missingSince;
      if (service.stale.action === 'hold' && s.weight !== null && s.weight > 0 && heldFor < service.stale.holdForMs) {
        return candidate(r, 'held', `${why}: holding the last weight for ${fmt((service.stale.holdForMs - heldFor) / 1000)}s more`, s.weight, false, true);
      }
      return candidate(r, state, why, 0, true, true);
    }
    if (s.missingSince !== null) s.returnedAt = now;
    s.missingSince = null;
    s.holdUntil = null;
    if (node.drained !== null) return candidate(r, 'drained', `drained by the agent${node.drained ? `: ${node.drained}` : ''}`, 0, false, true);
    return candidate(r, 'live', '', 0, false, false);
  }

  private memory(service: CompiledService): ServiceMemory {
    const key = JSON.stringify(service.strategy);
    let mem = this.services.get(service.name);
    if (!mem || mem.strategyKey !== key) {
      const strategy = this.strategies.get(service.strategy.name);
      mem = { strategyKey: key, strategyState: strategy.createState(service.strategy), servers: mem?.servers ?? new Map(), resolved: null };
      this.services.set(service.name, mem);
    }
    return mem;
  }

  private server(mem: ServiceMemory, address: string, now: number): ServerMemory {
    return getOrCreate(mem.servers, address, () => ({ smoothed: null, smoothedAt: now, weight: null, decidedAt: now, lastGood: null, missingSince: null, stream: null, returnedAt: null, rampFrom: null, adopted: false, holdUntil: null, adoptedWeight: null, round: 0, facts: null }));
  }
}

/** Every candidate has one shape (this literal): evaluation runs for every server many times a second. */
function candidate({ address, node, nodeId, memory }: Resolved, state: ServerState, reason: string, weight: number, missing: boolean, fixed: boolean): Candidate {
  return { address, node, nodeId, memory, state, reason, score: null, weight, missing, fixed, ramp: null };
}

/**
 * Slow start state of one server: the ramp factor (`from` → 1 over the
 * duration) while it ramps, null when it does not. A new stream ramps from
 * when it connected (after its blackout); the same stream back from
 * silence ramps from its return; a weight adopted from the engine at start
 * does not ramp.
 */
function rampFactor(service: CompiledService, slowStart: { readonly durationMs: number; readonly from: number }, c: Candidate, now: number): number | null {
  if (!c.node) return null;
  const s = c.memory;
  const newStream = s.stream !== c.node.connectedAt;
  if (newStream || s.returnedAt !== null) {
    s.rampFrom = s.adopted ? null : newStream ? c.node.connectedAt + service.blackoutMs : s.returnedAt;
    s.stream = c.node.connectedAt;
    s.adopted = false;
    s.returnedAt = null;
  }
  if (s.rampFrom === null) return null;
  const elapsed = now - s.rampFrom;
  if (elapsed >= slowStart.durationMs) {
    s.rampFrom = null;
    return null;
  }
  return slowStart.from + ((1 - slowStart.from) * Math.max(0, elapsed)) / slowStart.durationMs;
}

/**
 * EWMA in continuous time on the poller's clock: after one half-life a step
 * in the score is half absorbed, however often the service is evaluated.
 * (Scores can change without a new sample of their own: orca's round robin
 * ends, pid renormalises.)
 */
/** EWMA on the poller's clock, with its own half-life for falling scores. */
function smooth(s: ServerMemory, score: number, halfLives: CompiledService['smoothing'], now: number): number {
  const halfLifeMs = s.smoothed !== null && score < s.smoothed ? halfLives.halfLifeDownMs : halfLives.halfLifeMs;
  const value = s.smoothed === null || halfLifeMs <= 0 ? score : s.smoothed + (1 - 2 ** (-(now - s.smoothedAt) / halfLifeMs)) * (score - s.smoothed);
  s.smoothed = value;
  s.smoothedAt = now;
  return value;
}

/** The best score (at least 0) among candidates whose scores are all set. */
function bestScore(cs: readonly Candidate[]): number {
  let best = 0;
  for (const c of cs) best = Math.max(best, c.score ?? 0);
  return best;
}

/** A server of the service: its destination address, the node that reports for it, and its memory. */
interface Resolved {
  readonly address: string;
  readonly node: NodeRecord | null;
  readonly nodeId: string | null;
  readonly memory: ServerMemory;
}

/** Policy server entries → concrete destinations with their node (selectors expand to every matching agent), in policy order. */
function resolve(servers: readonly ServerMatch[], nodes: NodeLookup, found: (address: string, node: NodeRecord | null, nodeId: string | null) => void): void {
  for (const m of servers) {
    if (m.by === 'node') found(m.address, nodes.byId(m.node) ?? null, m.node);
    else if (m.by === 'address') {
      const node = nodes.byHost(m.host) ?? null;
      found(m.address, node, node?.id ?? null);
    } else {
      const matched = [...nodes.all()]
        .filter((n) => Object.entries(m.selector).every(([k, v]) => n.hello.labels[k] === v) && n.hello.addresses.length > 0)
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      for (const n of matched) found(formatHostPort({ host: n.hello.addresses[0] ?? '', port: m.port }), n, n.id);
    }
  }
}

/** The server's facts for its node's current sample: kept while node, sample and compiled service stay the same. */
function factsOf(s: ServerMemory, address: string, node: NodeRecord, sample: Sample, service: CompiledService): SampleFacts {
  const known = s.facts;
  if (known && known.node === node && known.sample === sample && known.service === service) return known;
  const metrics = metricsOf(node, service);
  const variables = variablesOf(metrics);
  const facts: SampleFacts = {
    node,
    sample,
    service,
    input: { key: address, nodeId: node.id, metrics, sampleId: `${node.connectedAt}/${sample.seq}`, sampleAt: node.sampleAt, connectedAt: node.connectedAt },
    guard: service.guards.find((g) => (g.when.evaluate(variables) ?? 0) !== 0) ?? null,
    maxConnections: service.connectionLimit ? connectionLimitOf(service.connectionLimit, variables) : null,
    score: null,
  };
  s.facts = facts;
  return facts;
}

function metricsOf(node: NodeRecord, service: CompiledService): NodeMetrics {
  const s = node.sample;
  const name = announcedServiceName(node, service);
  const load = s?.services.find((x) => x.name === name);
  return { ...metricValues(s ?? {}), cores: node.hello.cores, memoryBytes: node.hello.memoryBytes, connections: load?.established ?? null };
}

/** A connection limit from its expression: a positive integer, or 0 for none (also when a metric is missing). */
function connectionLimitOf(expr: Expression, variables: Variables): number {
  const v = expr.evaluate(variables);
  return v === null || !Number.isFinite(v) || v < 1 ? 0 : Math.min(1_000_000, Math.round(v));
}

/**
 * Which of the agent's announced services this policy service is: the one
 * named like it, else the one whose port is the destination's, else the only one.
 */
function announcedServiceName(node: NodeRecord, service: CompiledService): string | null {
  const announced = node.hello.services;
  const byName = announced.find((x) => x.name === service.name);
  if (byName) return byName.name ?? null;
  const ports = portsOf(service);
  const byPort = announced.find((x) => ports.has(x.port ?? -1));
  if (byPort) return byPort.name ?? null;
  return announced.length === 1 ? (announced[0]?.name ?? null) : null;
}

const servicePorts = new WeakMap<CompiledService, ReadonlySet<number>>();

/** The destination ports a service names, computed once per compiled policy. */
function portsOf(service: CompiledService): ReadonlySet<number> {
  let ports = servicePorts.get(service);
  if (!ports) {
    ports = new Set(service.servers.map((m) => (m.by === 'selector' ? m.port : Number(/:(\d+)$/.exec(m.address)?.[1]))));
    servicePorts.set(service, ports);
  }
  return ports;
}

/**
 * Water-filling: the k largest weights are lowered to cap × T, where T is
 * the resulting total, for the smallest k that leaves every other weight at
 * or under the cap. When the cap cannot be met (fewer than 1/cap servers),
 * the adjustable servers get equal weights, the closest to it there is.
 */
function capShares(all: readonly Candidate[], open: readonly Candidate[], cap: number): void {
  const sorted = [...open].sort((a, b) => b.weight - a.weight);
  // Sums of the k-th largest and smaller ones, added smallest first so a
  // huge weight cannot swallow the small ones in floating point.
  const fixed = all.filter((c) => c.fixed).reduce((a, c) => a + c.weight, 0);
  const rest: number[] = new Array<number>(sorted.length + 1).fill(fixed);
  for (let i = sorted.length - 1; i >= 0; i -= 1) rest[i] = (rest[i + 1] ?? 0) + (sorted[i]?.weight ?? 0);
  for (let k = 0; k <= sorted.length && k * cap < 1; k += 1) {
    const total = (rest[k] ?? 0) / (1 - k * cap);
    const next = sorted[k];
    if (total <= 0) break;
    if (next === undefined || next.weight <= cap * total * (1 + 1e-9)) {
      for (const c of sorted.slice(0, k)) {
        c.weight = cap * total;
        c.reason += `; share capped at ${fmt(cap * 100)}%`;
      }
      return;
    }
  }
  const equal = Math.min(...sorted.map((c) => c.weight).filter((w) => w > 0));
  for (const c of sorted) {
    c.weight = equal;
    c.reason += `; share cap ${fmt(cap * 100)}% needs more servers: equal weights`;
  }
}
