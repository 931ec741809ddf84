// The poller, composed along its data path: the agent server feeds ingest,
// which records each accepted sample on the node's record in the node table
// and reports a node event; the scheduler marks the services that event
// concerns (ServiceIndex) and, paced, runs one cycle at a time; the cycle
// reads the node table, evaluates the policy, reconciles, plans and applies
// to the engines (cycle/run.ts). A sample is thus parked on its NodeRecord
// until the next cycle picks it up; nothing else carries it.
import * as grpc from '@grpc/grpc-js';
import { PLAINTEXT_CHANNEL, type ClientChannel } from '@loadfeed/proto';
import { XDS_ENGINE_KIND, type Engine, type XdsEngine } from '@loadfeed/kernel-bridge';
import type { Logger } from 'pino';
import { EngineSet } from './cycle/engine-set.js';
import type { EngineRegistry } from './cycle/engines.js';
import { NodeTable, type NodeEvent } from './cycle/node-table.js';
import type { PollerObserver } from './cycle/observer.js';
import { CycleRunner } from './cycle/run.js';
import { CycleScheduler } from './cycle/scheduler.js';
import { ServiceIndex } from './cycle/service-index.js';
import type { PolicyProblem } from './errors.js';
import { DEFAULT_LIMITS, Ingest, type IngestLimits } from './ingest/ingest.js';
import { OrcaBackends } from './ingest/orca-backends.js';
import { AgentServer, type PollerSecurity } from './ingest/server.js';
import type { TraceRecord, TraceRecorder } from './ingest/trace.js';
import type { CompiledPolicy } from './policy/compile.js';
import { WeightEvaluator } from './policy/evaluate.js';
import type { StrategyRegistry } from './policy/strategy.js';
import { takeSnapshot, type PolicyStatus, type PollerSnapshot } from './status/snapshot.js';

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
  /** Channel to agentless ORCA backends (`--orca-tls-*`); plaintext by default. */
  readonly orcaChannel?: ClientChannel;
  readonly limits?: IngestLimits;
}

export class Poller {
  private readonly table: NodeTable;
  private readonly ingest: Ingest;
  private readonly server: AgentServer;
  /** Agentless backends the policy names by their ORCA endpoint. */
  private readonly orca: OrcaBackends;
  private readonly evaluator: WeightEvaluator;
  private readonly engines: EngineSet;
  private readonly runner: CycleRunner;
  private readonly scheduler: CycleScheduler;
  private policy: CompiledPolicy;
  private policyStatus: PolicyStatus;
  /** Which services each node's events concern. */
  private index: ServiceIndex;
  private stopped = false;
  private readonly observers = new Set<PollerObserver>();

  constructor(private readonly options: PollerOptions) {
    const { logger } = options;
    this.policy = options.policy;
    this.index = new ServiceIndex(options.policy);
    this.policyStatus = { file: options.policy.file, loadedAt: new Date().toISOString(), refused: [] };
    this.evaluator = new WeightEvaluator(options.strategies);
    this.table = new NodeTable(this.policy.liveness.staleAfterMs, (e) => this.onNodeEvent(e), undefined, (node) => this.scheduler.nodeEvent(false, this.index.concerning(node), node));
    this.ingest = new Ingest({
      table: this.table,
      auth: options.security?.auth ?? { tokens: new Map(), mutualTls: false, allowPlaintext: false },
      limits: options.limits ?? DEFAULT_LIMITS,
      intervalMs: () => this.policy.agents.intervalMs,
      ...(options.recorder ? { record: (e: TraceRecord) => options.recorder?.record(e) } : {}),
      log: (event, msg) => logger.info(event, msg),
    });
    this.orca = new OrcaBackends({
      table: this.table,
      intervalMs: () => this.policy.agents.intervalMs,
      refused: (err, event) => this.ingest.countRefusal(err, event),
      channel: options.orcaChannel ?? PLAINTEXT_CHANNEL,
      ...(options.recorder ? { record: (e: TraceRecord) => options.recorder?.record(e) } : {}),
      log: (event, msg) => logger.info(event, msg),
    });
    this.server = new AgentServer(this.ingest, options.security?.credentials ?? grpc.ServerCredentials.createInsecure(), logger);
    this.engines = new EngineSet(options.engines, logger, options.policy);
    const notify = (call: (o: PollerObserver) => void): void => this.notify(call);
    this.runner = new CycleRunner({ table: this.table, evaluator: this.evaluator, engines: this.engines, logger, notify });
    this.scheduler = new CycleScheduler({
      run: (full, resync, services, news) => this.runner.run(this.policy, full, resync, services, news),
      resyncEveryMs: () => this.policy.reconcile.everyMs,
      applied: (ms, evaluatedAt) => notify((o) => o.weightsApplied?.(ms, evaluatedAt)),
      logger,
    });
  }

  /** Start serving agents and apply the policy once; resolves with the bound port. */
  async start(): Promise<number> {
    const port = await this.server.start(this.options.listen);
    this.table.start();
    this.orca.sync(this.policy);
    this.scheduler.start();
    await this.settled();
    return port;
  }

  /** Swap in a new policy atomically; the next cycle uses it. */
  setPolicy(policy: CompiledPolicy): void {
    this.policyStatus = { file: policy.file, loadedAt: new Date().toISOString(), refused: [] };
    const intervalChanged = policy.agents.intervalMs !== this.policy.agents.intervalMs;
    this.policy = policy;
    this.engines.setPolicy(policy);
    this.index = new ServiceIndex(policy);
    this.table.setStaleAfter(policy.liveness.staleAfterMs);
    this.evaluator.retain(new Set(policy.services.map((s) => s.name)));
    if (intervalChanged) this.ingest.broadcastInterval(policy.agents.intervalMs);
    if (!this.stopped) this.orca.sync(policy);
    this.notify((o) => o.policyReloaded?.(true));
    this.scheduler.markAll();
  }

  /** A newer policy file was refused: the current policy stays, the status shows why. */
  refusePolicy(problems: readonly PolicyProblem[]): void {
    this.policyStatus = { ...this.policyStatus, refused: problems };
    this.notify((o) => o.policyReloaded?.(false));
  }

  /** Resolves when no cycle is running or pending. */
  async settled(): Promise<void> {
    await this.scheduler.settled();
  }

  /** Subscribe to weight changes, apply timings and reloads; returns the unsubscribe function. */
  observe(observer: PollerObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  snapshot(): PollerSnapshot {
    const xds = this.engines.existing(XDS_ENGINE_KIND);
    return takeSnapshot({
      table: this.table,
      policy: this.policy,
      policyStatus: this.policyStatus,
      cycle: this.runner,
      scheduler: this.scheduler,
      ingest: this.ingest,
      xds: xds === undefined ? null : (xds as XdsEngine),
    });
  }

  /** The engine instance serving `kind`, created on first use from the policy's `engines:` settings. */
  engine(kind: string): Engine {
    return this.engines.get(kind);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.scheduler.stop();
    this.orca.close();
    this.table.stop();
    await this.server.stop();
    await this.settled();
    await this.engines.close();
    await this.options.recorder?.close();
  }

  private onNodeEvent(e: NodeEvent): void {
    if (e.from !== e.to) {
      this.options.logger.info({ node: e.node.id, from: e.from, to: e.to }, 'node state changed');
    }
    this.scheduler.nodeEvent(e.from === 'live' && e.to !== 'live', this.index.concerning(e.node), e.node);
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
}
