// From the node table to desired weights, one service at a time. The order
// of the wrappers is part of the policy language (docs/policy.md):
//
//   1. liveness: a server without a live agent is quiesced (or held, per
//      `stale`); a drained server gets 0
//   2. guards: the first matching condition fixes the weight
//   3. blackout: a server (re)connected less than `blackout` ago gets the mean
//   4. strategy scores → EWMA smoothing (half-life, poller clock, advanced
//      when a score arrives) → a server without a score gets the mean score
//   5. scale: the best score of the established servers (not in slow start)
//      maps to weights.max
//   6. meanBand clamp, 7. shareCap, 8. slow start ramp, bounded by the
//      established servers' mean weight
//   9. min/max clamp, 10. maximum change per second, 11. quantum, 12. deadband
//  13. all-zero fallback: if every server ends at 0 because metrics vanished,
//      keep the last weights (or equal ones) instead of black-holing the service
//
// Steps 1–4 are a server's own (its assessment, kept in its memory); 5–13
// need the whole service. A full pass (`evaluate`) does everything; an
// incremental one (`update`, between the periodic full cycles) assesses only
// the servers with news and decides the same weights, at a cost that
// follows what changed rather than the number of servers.
import { formatHostPort } from '@loadfeed/kernel-bridge';
import { copyMetricValues, isOrcaNodeId } from '@loadfeed/proto';
import { getOrCreate } from '../util/maps.js';
import type { LatestSample, NodeLookup, NodeRecord } from '../cycle/node-table.js';
import type { CompiledService, Guard, ServerMatch } from './compile.js';
import type { Expression, Variables } from './expression.js';
import { fmt, nodeMetrics, variablesOf, type NodeMetrics, type Score, type ServerInput, type StrategyRegistry } from './strategy.js';

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
  /** The strategy answer last folded into `smoothed`: a score is smoothed in once, when it is new. */
  smoothedFrom: Score | null;
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
  /** Its weight moves with time alone (blackout, slow start, a hold, the rate limit): assessed on every pass while that lasts. */
  timed: boolean;
  /** The last assessment (steps 1–4), which a pass reuses while the server has no news. */
  assessed: Candidate | null;
}

/**
 * One sample of one node, seen by one compiled service: at scale nearly
 * every server is evaluated every cycle while few have a new sample, so
 * what depends only on the sample is computed once. One record per server
 * and stream (node record), written over when a new sample or a new policy
 * (compiled service) comes: a record per sample lived a second, long
 * enough to be promoted, and was most of the poller's garbage.
 */
interface SampleFacts {
  readonly node: NodeRecord;
  /** The node's sample count (NodeRecord.samples) these facts are of. */
  samples: number;
  service: CompiledService;
  readonly input: SampleInput;
  /** The first guard whose condition holds, or null. */
  guard: Guard | null;
  /** From `connectionLimit`; null when the policy sets none. */
  maxConnections: number | null;
  /** The strategy's latest answer for this server; a per-server strategy is asked once per sample (null: not yet). */
  score: Score | null;
}

/** A server's strategy input, written over by each sample; the sample id, which only stateful strategies read, is built when read. */
class SampleInput implements ServerInput {
  sampleAt = 0;
  windowMs = 0;
  seq = 0;

  constructor(
    readonly key: string,
    readonly nodeId: string,
    readonly connectedAt: number,
    readonly metrics: NodeMetrics,
  ) {}

  get sampleId(): string {
    return `${this.connectedAt}/${this.seq}`;
  }
}

/** What the last pass over a service left for the next incremental one. */
interface LastPass {
  /** The resolved servers it evaluated: the same object while the policy and the node table's membership stay. */
  readonly resolved: ResolvedServers;
  /** The best score of the open servers not in slow start: what maps to weights.max. */
  readonly best: number;
  /**
   * Servers whose assessment brings every weight of the service into a pass
   * (open without a score or in slow start, held while adopted weights wait):
   * how many.
   */
  special: number;
  /** Service-wide steps were in play (all-zero fallback, adopted weights waiting): the next pass redoes every server's weight. */
  readonly global: boolean;
  /** Its decisions, in the order of `resolved.servers`; an incremental pass that weighs only the servers assessed again replaces theirs in place. */
  readonly decisions: WeightDecision[];
  /** Indexes of the servers whose weight moves with time (ServerMemory.timed); copied when one changes, never changed in place. */
  timed: ReadonlySet<number>;
}

/** A service's servers in policy order, and where each node's servers are among them. */
interface ResolvedServers {
  readonly service: CompiledService;
  readonly membership: number;
  readonly servers: readonly Resolved[];
  readonly byNode: ReadonlyMap<NodeRecord, readonly number[]>;
}

interface ServiceMemory {
  strategyKey: string;
  /** The compiled service `strategyKey` was taken from. */
  compiled: CompiledService | null;
  strategyState: unknown;
  servers: Map<string, ServerMemory>;
  /** The servers as last resolved: still right while the compiled service and the node table's membership stay the same. */
  resolved: ResolvedServers | null;
  /** Null until a full pass, and after adoption changed the servers' memory. */
  last: LastPass | null;
}

interface Candidate {
  address: string;
  node: NodeRecord | null;
  nodeId: string | null;
  memory: ServerMemory;
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
  /** The weight was held back by maxChangePerSecond. */
  limited: boolean;
}

/** An incremental pass's answer (WeightEvaluator.update). */
export interface Evaluation {
  /** Every server's decision, in policy order. */
  readonly decisions: readonly WeightDecision[];
  /** Indexes of the decisions whose weight or connection limit differ from the previous pass's at the same index; null: the servers were resolved anew, take them all. */
  readonly changed: readonly number[] | null;
  /**
   * The previous pass's decisions at the `changed` indexes, when `decisions`
   * is the previous pass's array with those replaced in place (the common
   * case: a new array per service and pass was most of an incremental
   * pass's garbage); null when `decisions` is a new array.
   */
  readonly replaced: readonly WeightDecision[] | null;
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
    mem.last = null;
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

  /** A full pass: every server of the service assessed and weighed afresh (the periodic resync, and the reference for `update`). */
  evaluate(service: CompiledService, nodes: NodeLookup, now: number): WeightDecision[] {
    const mem = this.memory(service);
    const round = ++this.round;
    const resolved = this.resolve(service, mem, nodes, now);
    const { servers } = resolved;
    for (const r of servers) r.memory.round = round;
    this.assess(service, mem, servers, now);
    const candidates = servers.map((r) => copy(r.memory.assessed as Candidate));
    const decisions = this.weigh(service, mem, resolved, candidates, now);
    // Every server has its own entry: more entries means some are no longer resolved.
    if (mem.servers.size > servers.length) for (const [address, s] of mem.servers) if (s.round !== round) mem.servers.delete(address);
    return decisions;
  }

  /**
   * An incremental pass, as exact as a full one: only the servers of the
   * nodes in `news` (those with a new sample, or a liveness or drain change
   * since the last pass; nodes of other services are ignored) and those
   * whose weight moves with time are assessed again; the others keep their
   * assessment. The service's aggregates (the best score, how many servers
   * need every weight redone) are kept up to date from the servers assessed
   * again. Every weight is redone only when the best score changed or a
   * service-wide step is in play (mean band, share cap, slow start, blackout
   * or unscored servers taking the mean, adopted weights, the all-zero
   * fallback); otherwise only the servers assessed again are weighed. Full
   * when the servers were resolved anew, and for strategies that score the
   * whole service together.
   */
  update(service: CompiledService, nodes: NodeLookup, now: number, news: ReadonlySet<NodeRecord>): Evaluation {
    const mem = this.memory(service);
    const resolved = this.resolve(service, mem, nodes, now);
    const last = mem.last;
    if (last === null || last.resolved !== resolved || this.strategies.get(service.strategy.name).perServer !== true) {
      return { decisions: this.evaluate(service, nodes, now), changed: null, replaced: null };
    }
    const { servers } = resolved;
    const indexes = assessAgain(last.timed, news, resolved.byNode);
    if (indexes.length === 0) return { decisions: last.decisions, changed: [], replaced: [] };
    const reassessed = indexes.map((i) => servers[i] as Resolved);
    // The aggregates: out with the old assessments, in with the new.
    let special = last.special;
    let lost = false;
    for (const r of reassessed) {
      const a = r.memory.assessed as Candidate;
      if (isSpecial(a)) special -= 1;
      else if (!a.fixed && a.score === last.best) lost = true; // perhaps the best server: its successor is found below
    }
    this.assess(service, mem, reassessed, now);
    let top = 0;
    for (const r of reassessed) {
      const a = r.memory.assessed as Candidate;
      if (isSpecial(a)) special += 1;
      else if (!a.fixed && (a.score ?? 0) > top) top = a.score ?? 0;
    }
    const global = last.global || special > 0 || service.meanBand !== null || service.shareCap !== null;
    const best = global ? last.best : lost && top < last.best ? bestAssessed(servers) : Math.max(last.best, top);
    if (!global && best === last.best && best > 0) {
      const { max } = service.weights;
      const changed = reassessed.map((r) => copy(r.memory.assessed as Candidate));
      for (const c of changed) {
        if (c.fixed) continue;
        c.weight = Math.min(max, (max * (c.score ?? 0)) / best);
        settle(service, c, now);
      }
      // A weight of 0 might leave every server at 0: the all-zero fallback looks at all of them.
      if (!changed.some((c) => c.weight === 0)) {
        commit(changed, now);
        const { decisions } = last;
        const moved: number[] = [];
        const replaced: WeightDecision[] = [];
        for (let k = 0; k < changed.length; k += 1) {
          const c = changed[k] as Candidate;
          const i = indexes[k] as number;
          const d = decide(service, c);
          const before = decisions[i] as WeightDecision;
          decisions[i] = d;
          if (before.weight !== d.weight || before.maxConnections !== d.maxConnections) {
            moved.push(i);
            replaced.push(before);
          }
          if (c.memory.timed !== last.timed.has(i)) {
            const timed = new Set(last.timed);
            if (c.memory.timed) timed.add(i);
            else timed.delete(i);
            last.timed = timed;
          }
        }
        last.special = special;
        return { decisions, changed: moved, replaced };
      }
    }
    const decisions = this.weigh(service, mem, resolved, servers.map((r) => copy(r.memory.assessed as Candidate)), now);
    const moved: number[] = [];
    decisions.forEach((d, i) => {
      const before = last.decisions[i];
      if (before?.weight !== d.weight || before.maxConnections !== d.maxConnections) moved.push(i);
    });
    return { decisions, changed: moved, replaced: null };
  }

  /** Steps 1–4 for these servers: liveness, guards, blackout, the strategy's score and its smoothing, and whether it ramps (kept in their memory). */
  private assess(service: CompiledService, mem: ServiceMemory, servers: readonly Resolved[], now: number): void {
    const scored: Candidate[] = [];
    const scoredFacts: SampleFacts[] = [];
    for (const r of servers) {
      const c = this.liveness(service, r, now);
      const s = r.memory;
      s.assessed = c;
      // 2. guards and 3. blackout on the live ones; the rest go to the strategy.
      if (c.fixed || !c.node?.sample) continue;
      const facts = factsOf(s, c.address, c.node, c.node.sample, service);
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

    // 4. strategy and smoothing. A per-server strategy is asked only about
    // the servers with a sample it has not scored.
    const strategy = this.strategies.get(service.strategy.name);
    const ask = strategy.perServer === true ? scoredFacts.filter((f) => f.score === null) : scoredFacts;
    const answers = strategy.weigh(service.strategy, ask.map((f) => f.input), mem.strategyState, now);
    ask.forEach((f, i) => {
      f.score = answers[i] ?? null;
    });
    scored.forEach((c, i) => {
      const answer = scoredFacts[i]?.score ?? null;
      const score = answer?.score ?? null;
      // A score that is not a finite non-negative number is no score (a
      // strategy fed extreme metrics must not poison the service).
      const usable = score !== null && Number.isFinite(score) && score >= 0;
      c.reason = answer?.reason ?? '';
      if (score !== null && !usable) c.reason += `; unusable score ${score}: mean`;
      c.score = usable ? smooth(c.memory, answer as Score, score, service.smoothing, now) : null;
    });

    // Which servers slow-start (the ramp state is updated here, before
    // scaling, so a ramping server's score does not set the scale).
    for (const r of servers) {
      const c = r.memory.assessed as Candidate;
      const s = r.memory;
      if (service.slowStart && !c.fixed) c.ramp = rampFactor(service, service.slowStart, c, now);
      // A server without a live agent may be held at its last weight, which the service-wide steps can still change.
      const holding = (s.holdUntil !== null && now < s.holdUntil) || (service.stale.action === 'hold' && s.missingSince !== null && now - s.missingSince < service.stale.holdForMs);
      s.timed = c.state === 'blackout' || c.ramp !== null || (c.missing || c.state === 'held' ? holding : false);
    }
  }

  /** Steps 5–13 over every server of the service, from their assessments (`candidates`, copies in policy order). */
  private weigh(service: CompiledService, mem: ServiceMemory, resolved: ResolvedServers, candidates: Candidate[], now: number): WeightDecision[] {
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
    const established = open.filter((c) => c.ramp === null);

    // 5. scale so the best established server maps to max. A server in slow
    // start does not set the scale: an idle returning server has the best
    // headroom of all, and scaling to it would shrink every other weight.
    const { max } = service.weights;
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
    for (const c of open) settle(service, c, now);

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
    let fallback = false;
    if (candidates.length > 0 && candidates.every((c) => c.weight === 0) && candidates.some((c) => c.missing)) {
      for (const c of candidates) {
        if (!c.missing) continue;
        const last = c.memory.lastGood;
        if (service.allZero === 'keep-last' && last === null) continue; // nothing known to keep
        c.weight = service.allZero === 'keep-last' ? (last ?? 0) : max;
        c.state = 'fallback';
        c.reason = `every server would get 0 (${c.reason}): ${service.allZero === 'keep-last' ? 'keeping the last weight' : 'equal weights'}`;
        fallback = true;
      }
    }

    commit(candidates, now);
    const decisions = candidates.map((c) => decide(service, c));
    const timed = new Set<number>();
    let special = 0;
    resolved.servers.forEach((r, i) => {
      if (r.memory.timed) timed.add(i);
      if (isSpecial(r.memory.assessed as Candidate)) special += 1;
    });
    mem.last = { resolved, best: bestAssessed(resolved.servers), special, global: waiting || fallback, decisions, timed };
    return decisions;
  }

  /** The service's servers, their nodes and memory: resolved again only when the policy or the set of nodes changed. */
  private resolve(service: CompiledService, mem: ServiceMemory, nodes: NodeLookup, now: number): ResolvedServers {
    const known = mem.resolved;
    if (known?.service === service && known.membership === nodes.membership) return known;
    const servers: Resolved[] = [];
    const byNode = new Map<NodeRecord, number[]>();
    const seen = new Set<string>();
    resolve(service.servers, nodes, (address, node, nodeId) => {
      if (seen.has(address)) return; // named twice: the first entry counts
      seen.add(address);
      if (node) getOrCreate(byNode, node, () => []).push(servers.length);
      servers.push({ address, node, nodeId, memory: this.server(mem, address, now) });
    });
    mem.resolved = { service, membership: nodes.membership, servers, byNode };
    return mem.resolved;
  }

  /** 1. liveness, drain and the stale action. */
  private liveness(service: CompiledService, r: Resolved, now: number): Candidate {
    const { node, memory: s } = r;
    if (!node || node.state === 'stale' || !node.sample) {
      const [state, why]: [ServerState, string] = !node
        ? ['absent', r.nodeId !== null && isOrcaNodeId(r.nodeId) ? 'no ORCA report: the stream to the server is not up (the poller logs why: "orca stream ended")' : 'no agent connected']
        : node.state === 'stale'
          ? ['stale', 'agent silent: no sample within the stale deadline']
          : ['absent', 'agent connected, no sample yet'];
      s.missingSince ??= now;
      // A returning server starts from its fresh metrics.
      s.smoothed = null;
      s.smoothedFrom = null;
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
    let mem = this.services.get(service.name);
    if (mem?.compiled === service) return mem;
    const key = JSON.stringify(service.strategy);
    if (!mem || mem.strategyKey !== key) {
      const strategy = this.strategies.get(service.strategy.name);
      mem = { strategyKey: key, compiled: service, strategyState: strategy.createState(service.strategy), servers: mem?.servers ?? new Map(), resolved: null, last: null };
      this.services.set(service.name, mem);
    }
    mem.compiled = service;
    return mem;
  }

  private server(mem: ServiceMemory, address: string, now: number): ServerMemory {
    return getOrCreate(mem.servers, address, () => ({
      smoothed: null,
      smoothedAt: now,
      smoothedFrom: null,
      weight: null,
      decidedAt: now,
      lastGood: null,
      missingSince: null,
      stream: null,
      returnedAt: null,
      rampFrom: null,
      adopted: false,
      holdUntil: null,
      adoptedWeight: null,
      round: 0,
      facts: null,
      timed: false,
      assessed: null,
    }));
  }
}

/** 9.–12. one server's clamp, rate limit, quantum and deadband. */
function settle(service: CompiledService, c: Candidate, now: number): void {
  const { min, max, quantum } = service.weights;
  const s = c.memory;
  c.weight = Math.min(max, Math.max(min, c.weight));
  if (service.maxChangePerSecond !== null && s.weight !== null && s.weight > 0) {
    const limit = service.maxChangePerSecond * max * Math.max(0, now - s.decidedAt) / 1000;
    const limited = Math.min(s.weight + limit, Math.max(s.weight - limit, c.weight));
    if (limited !== c.weight) {
      c.reason += '; rate limited';
      c.limited = true;
    }
    c.weight = limited;
  }
  c.weight = Math.max(min, Math.min(max, Math.round(c.weight / quantum) * quantum));
  if (s.weight !== null && s.weight > 0 && c.weight > 0 && c.weight !== s.weight && Math.abs(c.weight - s.weight) / s.weight < service.deadband) {
    c.weight = s.weight;
    c.reason += '; within deadband';
  }
}

/** Largest list of indexes put in order by insertion (see assessAgain). */
const INSERTION_SORT_MAX = 32;

/**
 * Indexes of the servers to assess again, ascending: those whose weight
 * moves with time and those of the nodes with news (each index belongs to
 * one node). Built without a Set and, for the few indexes of a usual pass,
 * sorted without Array.prototype.sort's work area: this runs for every
 * service with news in every cycle.
 */
function assessAgain(timed: ReadonlySet<number>, news: ReadonlySet<NodeRecord>, byNode: ReadonlyMap<NodeRecord, readonly number[]>): number[] {
  const out: number[] = [];
  for (const i of timed) out.push(i);
  for (const node of news) {
    const indexes = byNode.get(node);
    if (indexes) for (const i of indexes) if (!timed.has(i)) out.push(i);
  }
  if (out.length > INSERTION_SORT_MAX) return out.sort((a, b) => a - b);
  for (let k = 1; k < out.length; k += 1) {
    const v = out[k] as number;
    let j = k - 1;
    for (; j >= 0 && (out[j] as number) > v; j -= 1) out[j + 1] = out[j] as number;
    out[j + 1] = v;
  }
  return out;
}

/** An assessment that brings every weight of its service into a pass (see LastPass.special). */
function isSpecial(a: Candidate): boolean {
  return a.fixed ? a.state === 'held' && a.memory.holdUntil !== null : a.score === null || a.ramp !== null;
}

/** The best score (at least 0) of the open servers with a score and not in slow start, from their assessments. */
function bestAssessed(servers: readonly Resolved[]): number {
  let best = 0;
  for (const r of servers) {
    const a = r.memory.assessed as Candidate;
    if (!a.fixed && a.ramp === null && a.score !== null && a.score > best) best = a.score;
  }
  return best;
}

/** The decided weights become the servers' last ones. */
function commit(candidates: readonly Candidate[], now: number): void {
  for (const c of candidates) {
    const s = c.memory;
    if (s.weight !== c.weight) s.decidedAt = now;
    s.weight = c.weight;
    // Drained or guarded to 0 on purpose: nothing for the fallback to restore.
    if (!c.missing && c.state !== 'held' && c.state !== 'fallback') s.lastGood = c.weight > 0 ? c.weight : null;
    // A rate-limited weight is still on its way.
    if (c.limited) s.timed = true;
  }
}

function decide(service: CompiledService, c: Candidate): WeightDecision {
  return {
    address: c.address,
    node: c.nodeId,
    weight: c.weight,
    score: c.score,
    state: c.state,
    reason: c.reason,
    maxConnections: service.connectionLimit && c.node?.sample ? factsOf(c.memory, c.address, c.node, c.node.sample, service).maxConnections : null,
  };
}

/**
 * A server's assessment, written over its last one (a pass reads the last
 * one before it assesses again). Every candidate has one shape (this
 * literal): evaluation runs for every server many times a second.
 */
function candidate({ address, node, nodeId, memory }: Resolved, state: ServerState, reason: string, weight: number, missing: boolean, fixed: boolean): Candidate {
  const c = memory.assessed;
  if (c === null) return { address, node, nodeId, memory, state, reason, score: null, weight, missing, fixed, ramp: null, limited: false };
  c.address = address;
  c.node = node;
  c.nodeId = nodeId;
  c.state = state;
  c.reason = reason;
  c.score = null;
  c.weight = weight;
  c.missing = missing;
  c.fixed = fixed;
  c.ramp = null;
  c.limited = false;
  return c;
}

/** A working copy of an assessment, for steps 5–13 to change. */
function copy(c: Candidate): Candidate {
  return { address: c.address, node: c.node, nodeId: c.nodeId, memory: c.memory, state: c.state, reason: c.reason, score: c.score, weight: c.weight, missing: c.missing, fixed: c.fixed, ramp: c.ramp, limited: false };
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
 * EWMA on the poller's clock, advanced when a new score arrives (for the
 * per-server strategies, once per sample; for the others, at every
 * evaluation, as they may change a score without a sample): the new score
 * weighs 1 - 2^(-elapsed / half-life), elapsed being the time since the
 * last one, so after one half-life a step is half absorbed however often
 * samples come. Between scores the smoothed value holds: a server without
 * news keeps its weight, which is what lets a pass evaluate only the
 * servers with news and still decide what a full pass would.
 */
function smooth(s: ServerMemory, answer: Score, score: number, halfLives: CompiledService['smoothing'], now: number): number {
  if (s.smoothedFrom === answer && s.smoothed !== null) return s.smoothed;
  // Falling scores (trouble) have their own, shorter half-life; none for a change the strategy told from noise.
  const falling = s.smoothed !== null && score < s.smoothed;
  const halfLifeMs = falling ? (answer.change === true ? 0 : halfLives.halfLifeDownMs) : halfLives.halfLifeMs;
  const value = s.smoothed === null || halfLifeMs <= 0 ? score : s.smoothed + (1 - 2 ** (-Math.max(0, now - s.smoothedAt) / halfLifeMs)) * (score - s.smoothed);
  s.smoothed = value;
  s.smoothedAt = now;
  s.smoothedFrom = answer;
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
    if (m.by === 'node' || m.by === 'orca') found(m.address, nodes.byId(m.node) ?? null, m.node);
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

/**
 * The server's facts for its node's current sample: kept while node, sample
 * and compiled service stay the same, written over when the sample or the
 * service changes, allocated anew for a new node record.
 */
function factsOf(s: ServerMemory, address: string, node: NodeRecord, sample: LatestSample, service: CompiledService): SampleFacts {
  let facts = s.facts;
  if (facts?.node === node && facts.samples === node.samples && facts.service === service) return facts;
  const connections = establishedOn(node, sample, service);
  if (facts?.node === node) copyNodeMetrics(facts.input.metrics, sample, connections, sample.namedMetrics);
  else {
    facts = {
      node,
      samples: 0,
      service,
      input: new SampleInput(address, node.id, node.connectedAt, nodeMetrics(sample, node.hello.cores, node.hello.memoryBytes, connections, sample.namedMetrics)),
      guard: null,
      maxConnections: null,
      score: null,
    };
    s.facts = facts;
  }
  const { input } = facts;
  input.sampleAt = node.sampleAt;
  input.windowMs = sample.windowMs;
  input.seq = sample.seq;
  // The expression variables only where guards or a connection limit read them: most services have neither.
  const variables = service.guards.length > 0 || service.connectionLimit ? variablesOf(input.metrics) : null;
  facts.samples = node.samples;
  facts.service = service;
  facts.guard = variables === null ? null : (service.guards.find((g) => (g.when.evaluate(variables) ?? 0) !== 0) ?? null);
  facts.maxConnections = service.connectionLimit && variables !== null ? connectionLimitOf(service.connectionLimit, variables) : null;
  facts.score = null;
  return facts;
}

/** Writes a sample's values over a server's metrics (the same values nodeMetrics gives; cores and memory are the node's, fixed per node record). */
function copyNodeMetrics(t: NodeMetrics, s: LatestSample, connections: number | null, app: Readonly<Record<string, number>>): void {
  copyMetricValues(t, s);
  const written = t as { -readonly [K in keyof NodeMetrics]: NodeMetrics[K] };
  written.connections = connections;
  written.app = app;
}

/** Established connections on the service's announced port in the node's latest sample, or null. */
function establishedOn(node: NodeRecord, sample: LatestSample, service: CompiledService): number | null {
  const name = announcedServiceName(node, service);
  for (const x of sample.services) if (x.name === name) return x.established;
  return null;
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
