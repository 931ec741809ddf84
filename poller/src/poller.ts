// The poller's loop: agents' samples and liveness changes mark the services
// they feed dirty; one cycle at a time then evaluates those services, plans
// the engine operations against the engine's state, and applies them in one
// batch per engine. Every `reconcile.every` a full cycle evaluates every
// service against a fresh read of the engines (timers move on, drift is
// found); between those, cycles plan against the last read plus what was
// applied since. Data flows one way: ingest → node table → policy → planner → engine.
import * as grpc from '@grpc/grpc-js';
import { createServer, type Socket } from 'node:net';
import type { Engine, Observation } from '@loadfeed/kernel-bridge';
import { telemetryService } from '@loadfeed/proto';
import type { Logger } from 'pino';
import type { EngineRegistry } from './engines.js';
import type { PolicyProblem } from './errors.js';
import type { AuthOptions } from './auth.js';
import { DEFAULT_LIMITS, Ingest, type IngestLimits } from './ingest.js';
import { NodeTable, type NodeEvent, type NodeRecord } from './node-table.js';
import type { CompiledPolicy, CompiledService } from './policy/compile.js';
import { WeightEvaluator, type WeightDecision } from './policy/evaluate.js';
import type { StrategyRegistry } from './policy/strategy.js';
import { afterOps, plan, type DesiredService } from './planner.js';
import { listenOn } from './listen.js';
import { getOrCreate } from './maps.js';
import { CyclePacer } from './pacing.js';
import { Reconciler, type DriftEvent } from './reconcile.js';
import type { TraceRecord, TraceRecorder } from './trace.js';

/**
 * Server pings every agent connection this often (and waits this long for
 * the answer) to close the streams of hosts that vanished without a FIN. It
 * does not quiesce anything: the stale deadline does that within
 * `liveness.staleAfter`. Pinging every second cost as much as a sample per
 * agent (bench:poller-scale).
 */
export const SERVER_KEEPALIVE_MS = 10_000;
export const SERVER_KEEPALIVE_TIMEOUT_MS = 5_000;
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** Connections the kernel may queue for the poller to accept (capped by net.core.somaxconn, 4096 on current kernels). */
export const LISTEN_BACKLOG = 4096;
/** After a failed engine apply, try again this soon even if nothing changed. */
export const RETRY_AFTER_ERROR_MS = 1_000;
export interface PollerOptions {
  /** IP:PORT for the gRPC server, e.g. 0.0.0.0:7415 (port 0 picks one). */
  readonly listen: string;
  readonly policy: CompiledPolicy;
  readonly engines: EngineRegistry;
  readonly strategies: StrategyRegistry;
  readonly logger: Logger;
  /** Record every accepted agent message (`--record`). */
  readonly recorder?: TraceRecorder;
  /** Transport credentials and who may report for which node; plaintext, loopback-only by default. */
  readonly security?: PollerSecurity;
  readonly limits?: IngestLimits;
}

export interface PollerSecurity {
  readonly credentials: grpc.ServerCredentials;
  readonly auth: AuthOptions;
}

export interface ServiceSnapshot {
  readonly name: string;
  readonly engine: string;
  readonly address: string;
  readonly decisions: readonly WeightDecision[];
}

export interface PolicyStatus {
  readonly file: string;
  /** Wall-clock time the policy in force was loaded. */
  readonly loadedAt: string;
  /** Problems of the last refused file; empty when the newest file is in force. */
  readonly refused: readonly PolicyProblem[];
}

export interface PollerSnapshot {
  /** `degraded` while the newest policy file is refused or an engine fails. */
  readonly health: 'ok' | 'degraded';
  readonly policy: PolicyStatus;
  readonly nodes: readonly {
    readonly id: string;
    readonly state: string;
    readonly cores: number;
    readonly cpuUtilization: number | null;
    /** Samples accepted on the node's current stream. */
    readonly samples: number;
    readonly hostname: string;
    readonly addresses: readonly string[];
    readonly memoryBytes: number;
    readonly agentVersion: string;
    /** The agent's drain reason while it asked to be drained, else null. */
    readonly drained: string | null;
    /** Age of the latest sample, ms; null before the first. */
    readonly sampleAgeMs: number | null;
    readonly memUtilization: number | null;
    readonly psiCpuSome: number | null;
    readonly psiMemorySome: number | null;
    readonly psiIoSome: number | null;
    readonly load1: number | null;
    readonly tcpEstablished: number | null;
    /** The agent's services with their established connections (null: not counted). */
    readonly services: readonly { readonly name: string; readonly port: number; readonly established: number | null }[];
  }[];
  readonly services: readonly ServiceSnapshot[];
  readonly engineError: string | null;
  /** Agent messages accepted, and refused by reason (e.g. `auth`, `sample.seq`). */
  readonly ingest: { readonly accepted: number; readonly rejected: Readonly<Record<string, number>> };
  /** Drift found in engines since start: weights changed outside loadfeed, services an engine lost. */
  readonly driftEvents: number;
}

/** One weight change, exactly as logged ("weight changed"). */
export interface WeightChangeEvent {
  /** Wall-clock ms. */
  readonly at: number;
  readonly service: string;
  readonly server: string;
  readonly node: string | null;
  readonly from: number | null;
  readonly to: number;
  readonly state: string;
  readonly reason: string;
}

/** Hooks for the status server (metrics, dashboard): called synchronously from the loop, so they must be cheap. */
export interface PollerObserver {
  weightChanged?(change: WeightChangeEvent): void;
  /**
   * A cycle's weights are in the engines: ms since the oldest node event
   * (sample, liveness change) it acted on; it acted on every event before
   * `evaluatedAt` (performance.now()).
   */
  weightsApplied?(ingestToWeightMs: number, evaluatedAt: number): void;
  /** One `Engine.apply` batch, its duration and whether it succeeded. */
  engineApplied?(engine: string, ops: number, ms: number, ok: boolean): void;
  /** A policy reload took effect (true) or was refused (false). */
  policyReloaded?(ok: boolean): void;
}

export class Poller {
  private readonly table: NodeTable;
  private readonly ingest: Ingest;
  private readonly evaluator: WeightEvaluator;
  private readonly server = new grpc.Server({
    'grpc.keepalive_time_ms': SERVER_KEEPALIVE_MS,
    'grpc.keepalive_timeout_ms': SERVER_KEEPALIVE_TIMEOUT_MS,
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  });
  /** Accepts agents' connections for `server` (see start). */
  private readonly listener = createServer();
  private readonly engines = new Map<string, Engine>();
  /** The settings each engine instance was made with. */
  private readonly engineConfigs = new Map<string, string>();
  /** Engines whose weights were adopted already. */
  private readonly adopted = new Set<string>();
  private readonly reconcilers = new Map<string, Reconciler>();
  /** Drift found in engines since start (weights changed outside loadfeed, lost services). */
  private driftEvents = 0;
  private resync: NodeJS.Timeout | null = null;
  private policy: CompiledPolicy;
  private policyStatus: PolicyStatus;
  private decisions = new Map<string, readonly WeightDecision[]>();
  /** Services to evaluate in the next cycle; `full` evaluates all and reads the engines afresh. */
  private readonly dirty = new Set<string>();
  private full = false;
  /** Which services each node's events concern (see ServiceIndex). */
  private index: ServiceIndex;
  /** Each engine's state as last read plus the ops applied since. */
  private readonly engineState = new Map<string, Observation>();
  private cycling: Promise<void> | null = null;
  private readonly pacer = new CyclePacer();
  /** The event loop's utilisation counters when the last cycle started. */
  private loopMark = performance.eventLoopUtilization();
  /** A node stopped being live: the next cycle quiesces it without waiting out the load-based gap. */
  private urgent = false;
  /** Ends the wait before the next cycle early (see pace). */
  private wake: (() => void) | null = null;
  private retry: NodeJS.Timeout | null = null;
  private engineError: string | null = null;
  private stopped = false;
  private readonly observers = new Set<PollerObserver>();
  /** performance.now() of the oldest node event not yet reflected in the engines. */
  private pendingSince: number | null = null;

  constructor(private readonly options: PollerOptions) {
    this.policy = options.policy;
    this.index = new ServiceIndex(options.policy);
    this.policyStatus = { file: options.policy.file, loadedAt: new Date().toISOString(), refused: [] };
    this.evaluator = new WeightEvaluator(options.strategies);
    this.table = new NodeTable(this.policy.liveness.staleAfterMs, (e) => this.onNodeEvent(e));
    this.ingest = new Ingest({
      table: this.table,
      auth: options.security?.auth ?? { tokens: new Map(), mutualTls: false, allowPlaintext: false },
      limits: options.limits ?? DEFAULT_LIMITS,
      intervalMs: () => this.policy.agents.intervalMs,
      ...(options.recorder ? { record: (e: TraceRecord) => options.recorder?.record(e) } : {}),
      log: (event, msg) => options.logger.info(event, msg),
    });
    this.server.addService(telemetryService, this.ingest.service);
  }

  /** Start serving agents and apply the policy once; resolves with the bound port. */
  async start(): Promise<number> {
    // Connections are accepted here and handed to grpc-js, which listens with
    // Node's default backlog of 511: after a poller restart every agent
    // reconnects at once, and while a cycle or GC holds the loop the kernel
    // dropped tens of thousands of SYNs (10,000 agents), each retried only
    // after 1, 3, 7 … s.
    const injector = this.server.createConnectionInjector(this.options.security?.credentials ?? grpc.ServerCredentials.createInsecure());
    this.listener.on('connection', (socket: Socket) => injector.injectConnection(socket));
    const { port } = await listenOn(this.listener, '--listen', this.options.listen, { backlog: LISTEN_BACKLOG });
    // accept() failing (EMFILE) must not end the poller; the connections already served go on.
    this.listener.on('error', (err) => this.options.logger.error({ err }, 'accepting agent connections failed'));
    this.table.start();
    this.scheduleResync();
    this.markDirty(null);
    await this.settled();
    return port;
  }

  /** Swap in a new policy atomically; the next cycle uses it. */
  setPolicy(policy: CompiledPolicy): void {
    this.policyStatus = { file: policy.file, loadedAt: new Date().toISOString(), refused: [] };
    const intervalChanged = policy.agents.intervalMs !== this.policy.agents.intervalMs;
    this.policy = policy;
    this.index = new ServiceIndex(policy);
    this.table.setStaleAfter(policy.liveness.staleAfterMs);
    this.evaluator.retain(new Set(policy.services.map((s) => s.name)));
    if (intervalChanged) this.ingest.broadcastInterval(policy.agents.intervalMs);
    this.notify((o) => o.policyReloaded?.(true));
    this.markDirty(null);
  }

  /** A newer policy file was refused: the current policy stays, the status shows why. */
  refusePolicy(problems: readonly PolicyProblem[]): void {
    this.policyStatus = { ...this.policyStatus, refused: problems };
    this.notify((o) => o.policyReloaded?.(false));
  }

  /** Resolves when no cycle is running or pending. */
  async settled(): Promise<void> {
    while (this.cycling) await this.cycling;
  }

  /** Subscribe to weight changes, apply timings and reloads; returns the unsubscribe function. */
  observe(observer: PollerObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  snapshot(): PollerSnapshot {
    return {
      health: this.engineError !== null || this.policyStatus.refused.length > 0 ? 'degraded' : 'ok',
      policy: this.policyStatus,
      nodes: [...this.table.all()].map((n) => ({
        id: n.id,
        state: n.state,
        cores: n.hello.cores,
        cpuUtilization: n.sample?.cpuUtilization ?? null,
        samples: n.samples,
        hostname: n.hello.hostname,
        addresses: n.hello.addresses,
        memoryBytes: n.hello.memoryBytes,
        agentVersion: n.hello.agentVersion,
        drained: n.drained,
        sampleAgeMs: n.sample ? Math.max(0, performance.now() - n.sampleAt) : null,
        memUtilization: n.sample?.memUtilization ?? null,
        psiCpuSome: n.sample?.psiCpuSome ?? null,
        psiMemorySome: n.sample?.psiMemorySome ?? null,
        psiIoSome: n.sample?.psiIoSome ?? null,
        load1: n.sample?.load1 ?? null,
        tcpEstablished: n.sample?.tcpEstablished ?? null,
        services: n.hello.services.map((s) => ({
          // Decoded messages have every field set; pbts types nested ones by their init shape.
          name: s.name ?? '',
          port: s.port ?? 0,
          established: n.sample?.services.find((x) => x.name === s.name)?.established ?? null,
        })),
      })),
      services: this.policy.services.map((s) => ({
        name: s.name,
        engine: s.engine,
        address: s.address,
        decisions: this.decisions.get(s.name) ?? [],
      })),
      engineError: this.engineError,
      ingest: { accepted: this.ingest.counters.accepted, rejected: Object.fromEntries(this.ingest.counters.rejected) },
      driftEvents: this.driftEvents,
    };
  }

  /** The engine instance serving `kind`, created on first use from the policy's `engines:` settings. */
  engine(kind: string): Engine {
    let engine = this.engines.get(kind);
    if (!engine) {
      const entry = this.options.engines.get(kind);
      if (!entry) throw new Error(`engine "${kind}" is not registered`);
      engine = entry.create(this.policy.engines);
      this.engines.set(kind, engine);
      this.engineConfigs.set(kind, JSON.stringify(this.policy.engines[kind as keyof CompiledPolicy['engines']] ?? null));
    }
    return engine;
  }

  /**
   * A reload that changed an engine's settings replaces its instance: the
   * old one is closed, the new one adopts what the engine has (like a start).
   */
  private async refreshEngines(policy: CompiledPolicy): Promise<void> {
    for (const [kind, engine] of [...this.engines]) {
      const config = JSON.stringify(policy.engines[kind as keyof CompiledPolicy['engines']] ?? null);
      if (config === this.engineConfigs.get(kind)) continue;
      this.engines.delete(kind);
      this.adopted.delete(kind);
      this.reconcilers.delete(kind);
      this.engineState.delete(kind);
      this.options.logger.info({ engine: kind }, 'engine settings changed: reconnecting');
      await engine.close();
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.resync) clearTimeout(this.resync);
    this.table.stop();
    this.wake?.();
    this.listener.close();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.server.forceShutdown();
    await this.settled();
    await Promise.all([...this.engines.values()].map((e) => e.close()));
    this.engines.clear();
    await this.options.recorder?.close();
  }

  /**
   * Re-evaluate and reconcile every `reconcile.every` even without news:
   * slow start and hold timers move on, and drift or an engine that lost its
   * state is found within that time.
   */
  private scheduleResync(): void {
    if (this.stopped) return;
    this.resync = setTimeout(() => {
      this.markDirty(null);
      this.scheduleResync();
    }, this.policy.reconcile.everyMs);
  }

  private onNodeEvent(e: NodeEvent): void {
    if (e.from !== e.to) {
      this.options.logger.info({ node: e.node.id, from: e.from, to: e.to }, 'node state changed');
    }
    if (e.from === 'live' && e.to !== 'live') {
      this.urgent = true;
      this.wake?.();
    }
    this.pendingSince ??= performance.now();
    this.markDirty(e.node);
  }

  /** The services a node's news concerns need evaluating; null: every service, with fresh engine reads. */
  private markDirty(node: NodeRecord | null): void {
    if (node === null) this.full = true;
    else this.index.concerning(node, this.dirty);
    if (!this.cycling && !this.stopped && (this.full || this.dirty.size > 0)) this.cycling = this.cycle();
  }

  private async cycle(): Promise<void> {
    try {
      while ((this.full || this.dirty.size > 0) && !this.stopped) {
        await this.pace();
        if (this.stopped) break;
        const started = performance.now();
        const loop = performance.eventLoopUtilization();
        this.pacer.begin(started, performance.eventLoopUtilization(loop, this.loopMark).utilization);
        this.loopMark = loop;
        this.urgent = false;
        const since = this.pendingSince;
        this.pendingSince = null;
        const full = this.full;
        const services = new Set(this.dirty);
        this.full = false;
        this.dirty.clear();
        const evaluatedAt = await this.applyPolicy(full, services);
        this.pacer.end(performance.now());
        if (since !== null && this.engineError === null) {
          const ms = performance.now() - since;
          this.notify((o) => o.weightsApplied?.(ms, evaluatedAt));
        }
      }
    } catch (err) {
      this.options.logger.error({ err }, 'policy cycle failed');
    } finally {
      this.cycling = null;
    }
  }

  /**
   * Wait until the next cycle may start (see CyclePacer). A node leaving
   * `live` cuts that short.
   */
  private async pace(): Promise<void> {
    for (;;) {
      const wait = this.pacer.nextStart(this.urgent) - performance.now();
      if (wait <= 0) return new Promise((resolve) => setImmediate(resolve));
      const woken = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      this.wake = null;
      if (!woken || this.stopped) return;
    }
  }

  /** One cycle; returns when it evaluated (performance.now()): it acted on every node event before. */
  private async applyPolicy(full: boolean, dirty: ReadonlySet<string>): Promise<number> {
    const policy = this.policy;
    await this.refreshEngines(policy);
    const services = full ? policy.services : policy.services.filter((s) => dirty.has(s.name));
    const errors: string[] = [];
    const fail = (kind: string, err: unknown): void => {
      errors.push(`${kind}: ${(err as Error).message}`);
      this.options.logger.error({ engine: kind, err }, 'engine apply failed');
    };
    // Read every engine first: on first contact its weights are adopted
    // before anything is evaluated, so a restart starts from what the engine has.
    const observed = new Map<string, Observation>();
    for (const kind of new Set(services.map((s) => s.engine))) {
      const known = full ? undefined : this.engineState.get(kind);
      if (known) {
        observed.set(kind, known);
        continue;
      }
      try {
        const seen = await this.engine(kind).observe();
        if (!this.adopted.has(kind)) {
          this.adopt(policy, kind, seen);
          this.reconcilerFor(kind).adopt(seen);
          this.adopted.add(kind);
        }
        observed.set(kind, seen);
      } catch (err) {
        fail(kind, err);
      }
    }
    const lookup = this.table.lookup();
    const evaluatedAt = performance.now();
    const byEngine = new Map<string, DesiredService[]>();
    const decided = new Map<string, readonly WeightDecision[]>();
    for (const service of services) {
      const decisions = this.evaluator.evaluate(service, lookup, evaluatedAt);
      decided.set(service.name, decisions);
      getOrCreate(byEngine, service.engine, () => []).push({
        address: service.address,
        scheduler: service.scheduler,
        owned: service.owned,
        destinations: decisions,
      });
    }
    const drift = new Map(services.map((s) => [s.address, { address: s.address, drift: s.drift }]));
    for (const [kind, desired] of byEngine) {
      const seen = observed.get(kind);
      if (!seen) continue;
      this.engineState.delete(kind); // until the apply is known to have succeeded
      try {
        const reconciler = this.reconcilerFor(kind);
        const reconciled = reconciler.reconcile(desired, seen, drift);
        for (const e of reconciled.events) this.reportDrift(kind, e);
        const all = plan(reconciled.desired, seen);
        // Bounded work per cycle: the rest follows in the next cycles.
        const ops = all.slice(0, policy.reconcile.maxOpsPerCycle);
        if (all.length > ops.length) {
          this.options.logger.warn({ engine: kind, ops: all.length, applied: ops.length }, 'more changes than reconcile.maxOpsPerCycle: the rest follow next cycle');
          for (const s of services) if (s.engine === kind) this.dirty.add(s.name);
        }
        if (ops.length > 0) {
          await this.timedApply(kind, this.engine(kind), ops);
          reconciler.applied(ops);
        }
        this.engineState.set(kind, afterOps(seen, ops));
        this.logChanges(services, kind, decided);
      } catch (err) {
        fail(kind, err);
      }
    }
    this.decisions = full ? decided : new Map([...this.decisions, ...decided]);
    this.engineError = errors.length > 0 ? errors.join('; ') : null;
    if (errors.length > 0 && !this.retry && !this.stopped) {
      this.retry = setTimeout(() => {
        this.retry = null;
        this.markDirty(null);
      }, RETRY_AFTER_ERROR_MS);
    }
    return evaluatedAt;
  }

  private reconcilerFor(kind: string): Reconciler {
    let r = this.reconcilers.get(kind);
    if (!r) {
      r = new Reconciler();
      this.reconcilers.set(kind, r);
    }
    return r;
  }

  private reportDrift(engine: string, e: DriftEvent): void {
    this.driftEvents += 1;
    const what =
      e.action === 're-created'
        ? 'the engine lost this service: re-creating it'
        : e.action === 'missing'
          ? 'the engine no longer has this service (it is configured outside loadfeed)'
          : e.action === 'corrected'
            ? 'weight changed outside loadfeed: writing ours again'
            : 'weight changed outside loadfeed: respecting it until it changes again';
    this.options.logger.warn({ engine, service: e.service, destination: e.destination, expected: e.expected, found: e.found, action: e.action }, what);
  }

  private logChanges(services: readonly CompiledService[], kind: string, decided: Map<string, readonly WeightDecision[]>): void {
    for (const service of services) {
      if (service.engine !== kind) continue;
      const before = this.decisions.get(service.name) ?? [];
      // Decisions come in policy order: a server is looked up by address only when the list changed.
      let byAddress: Map<string, number> | null = null;
      for (const [i, d] of (decided.get(service.name) ?? []).entries()) {
        const same = before[i];
        const from = same?.address === d.address ? same.weight : ((byAddress ??= new Map(before.map((b) => [b.address, b.weight]))).get(d.address) ?? null);
        if (from !== d.weight) {
          this.options.logger.info({ service: service.name, server: d.address, node: d.node, from, to: d.weight, reason: d.reason }, 'weight changed');
          const change = { at: Date.now(), service: service.name, server: d.address, node: d.node, from, to: d.weight, state: d.state, reason: d.reason };
          this.notify((o) => o.weightChanged?.(change));
        }
      }
    }
  }

  private async timedApply(kind: string, engine: Engine, ops: Parameters<Engine['apply']>[0]): Promise<void> {
    const started = performance.now();
    let ok = false;
    try {
      await engine.apply(ops);
      ok = true;
    } finally {
      const ms = performance.now() - started;
      this.notify((o) => o.engineApplied?.(kind, ops.length, ms, ok));
    }
  }

  /** Observers never break the loop: a throwing one is logged and the cycle goes on. */
  private notify(call: (o: PollerObserver) => void): void {
    for (const o of this.observers) {
      try {
        call(o);
      } catch (err) {
        this.options.logger.error({ err }, 'status observer failed');
      }
    }
  }

  /**
   * First contact with an engine: take the weights it already has as the
   * last known ones, so a poller restart never flaps them (see
   * WeightEvaluator.adopt), and plan this cycle against them.
   */
  private adopt(policy: CompiledPolicy, kind: string, observed: Observation): void {
    const now = performance.now();
    for (const service of policy.services) {
      if (service.engine !== kind) continue;
      const have = observed.services.find((s) => s.address === service.address);
      if (!have) continue;
      const weights = new Map(have.destinations.map((d) => [d.address, d.weight]));
      this.evaluator.adopt(service, weights, now, policy.liveness.restartGraceMs);
      this.options.logger.info({ service: service.name, engine: kind, weights: Object.fromEntries(weights) }, 'adopted the weights the engine has');
    }
  }
}

/**
 * Which services a node's news (sample, liveness, drain) concerns: those
 * naming it by node id or by one of its addresses, and every service that
 * selects servers by label (a node's labels can match any of them).
 */
class ServiceIndex {
  private readonly byNode = new Map<string, Set<string>>();
  private readonly byHost = new Map<string, Set<string>>();
  private readonly bySelector = new Set<string>();

  constructor(policy: CompiledPolicy) {
    for (const service of policy.services) {
      for (const m of service.servers) {
        if (m.by === 'selector') this.bySelector.add(service.name);
        else if (m.by === 'node') getOrCreate(this.byNode, m.node, () => new Set<string>()).add(service.name);
        else getOrCreate(this.byHost, m.host, () => new Set<string>()).add(service.name);
      }
    }
  }

  concerning(node: NodeRecord, into: Set<string>): void {
    for (const name of this.byNode.get(node.id) ?? []) into.add(name);
    for (const host of node.hello.addresses) for (const name of this.byHost.get(host) ?? []) into.add(name);
    for (const name of this.bySelector) into.add(name);
  }
}
