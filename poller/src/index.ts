export { Poller } from './poller.js';
export { AgentServer, LISTEN_BACKLOG, SERVER_KEEPALIVE_MS } from './ingest/server.js';
export { CycleScheduler, RETRY_AFTER_ERROR_MS, TIMER_LATE_MS } from './cycle/scheduler.js';
export { RESYNC_SLICE_SERVERS } from './cycle/run.js';
export { CyclePacer, cycleGapMs, LOOP_BUSY_TARGET, MAX_INCREMENTAL_GAP_MS, MAX_CYCLE_SHARE, MIN_CYCLE_GAP_MS, MIN_CYCLE_SHARE, PACING_HALF_LIFE_MS } from './cycle/pacing.js';
export type { PollerOptions } from './poller.js';
export type { PollerSnapshot, ServiceSnapshot, PolicyStatus } from './status/snapshot.js';
export { NodeTable, DEFAULT_STALE_AFTER_MS, LIVENESS_SWEEP_MS, DEPARTED_MAX, DEPARTED_MAX_BYTES, DEPARTED_TTL_MS, helloBytes } from './cycle/node-table.js';
export type { NodeRecord, NodeState, NodeEvent, NodeLookup } from './cycle/node-table.js';
export { Ingest } from './ingest/ingest.js';
export { afterOps, plan } from './cycle/planner.js';
export type { DesiredService } from './cycle/planner.js';
export { compilePolicy, compilePolicyOffThread, loadPolicyFile, readPolicyFile, formatPath, printPolicy } from './policy/compile.js';
export { MAX_POLICY_BYTES, MAX_POLICY_SERVERS, MAX_GUARDS, STALE_AFTER_INTERVALS } from './policy/schema.js';
export type { CompiledPolicy, CompiledService, ServerMatch, Guard, KnownEngines, EngineLimits, StrategyConfig } from './policy/compile.js';
export { WeightEvaluator } from './policy/evaluate.js';
export type { Evaluation, WeightDecision, ServerState } from './policy/evaluate.js';
export { StrategyRegistry } from './policy/strategy.js';
export type { Strategy, NodeMetrics, Score, ServerInput } from './policy/strategy.js';
export { capacityStrategy } from './policy/strategy-capacity.js';
export { headroomStrategy } from './policy/strategy-headroom.js';
export { orcaStrategy } from './policy/strategy-orca.js';
export { pidStrategy } from './policy/strategy-pid.js';
export { connectionsStrategy } from './policy/strategy-connections.js';
export { expressionStrategy } from './policy/strategy-expression.js';
export { parseExpression, ExpressionError, expressionVariables, MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH } from './policy/expression.js';
export type { Expression, Variables, VariableName } from './policy/expression.js';
export { EngineRegistry } from './cycle/engines.js';
export { defaultEngines, defaultStrategies } from './registries.js';
export { PollerError, PolicyError, IngestError, OptionError, ListenError, NotRegisteredError, ExternalError, InstallError, formatProblem, excerpt, EXCERPT_CHARS, MAX_POLICY_PROBLEMS, MAX_PROBLEM_CHARS } from './errors.js';
export { defaultXdsStateFile, xdsEngineOptions, XDS_STATE_FILE_NAME } from './xds-options.js';
export type { PolicyProblem } from './errors.js';
export { parseDuration, formatDuration, MAX_DURATION_MS } from './util/duration.js';
export { simulate, formatSimulation } from './tools/simulate.js';
export type { SimulationOptions, SimulationResult, WeightChange } from './tools/simulate.js';
export { readTrace, TraceRecorder, DEFAULT_RECORD_MAX_BYTES } from './ingest/trace.js';
export type { TraceEvent, TraceRecord } from './ingest/trace.js';
export { PolicyReloader, RELOAD_DEBOUNCE_MS } from './policy/reloader.js';
export type { ReloadOutcome } from './policy/reloader.js';
export { loadOrcaChannel, loadSecurity } from './ingest/security.js';
export type { OrcaTlsFiles, SecurityFiles } from './ingest/security.js';
export { authorize, loadTokens, isLoopbackPeer } from './ingest/auth.js';
export type { AuthOptions, AuthVerdict } from './ingest/auth.js';
export type { PollerSecurity } from './ingest/server.js';
export { makeCertificates } from './tools/certs.js';
export {
  DEFAULT_LIMITS,
  ACK_INTERVAL_MS,
  SAMPLE_BURST_SECONDS,
  MAX_HOSTNAME_CHARS,
  MAX_LABELS,
  MAX_LABEL_NAME_CHARS,
  MAX_LABEL_VALUE_CHARS,
  MAX_ADDRESSES,
  MAX_CPU_MODEL_CHARS,
  MAX_AGENT_VERSION_CHARS,
  MAX_SERVICES_PER_AGENT,
  MAX_SERVICE_NAME_CHARS,
} from './ingest/ingest.js';
export { ConnectionGuard } from './ingest/connection-guard.js';
export { partialMessage } from './ingest/grpc-decoder.js';
export type { PartialMessage } from './ingest/grpc-decoder.js';
export type { ConnectionLimits, ConnectionRefusal } from './ingest/connection-guard.js';
export { RateLimitedLog, LOG_BURST, LOG_WINDOW_MS } from './util/log-limit.js';
export type { IngestLimits } from './ingest/ingest.js';
export { Reconciler } from './cycle/reconcile.js';
export type { DriftEvent, DriftPolicy } from './cycle/reconcile.js';
export type { PollerObserver, WeightChangeEvent } from './cycle/observer.js';
export { StatusServer, DEFAULT_STATUS_LISTEN, RECENT_CHANGES, isLoopbackHost } from './status/server.js';
export type { StatusServerOptions, StatusSource } from './status/server.js';
export { buildStatus, healthOf, serviceConnections, STATUS_VERSION } from './status/document.js';
export type { StatusDocument, ServiceStatus, ServerStatus, NodeStatus, HealthStatus } from './status/document.js';
export { History, HISTORY_STEP_MS, HISTORY_POINTS, HISTORY_MAX_SERVERS } from './status/history.js';
export type { HistoryDocument } from './status/history.js';
export { StatusMetrics, METRICS_MAX_NODES } from './status/metrics.js';
export { render as renderTop, summary as topSummary, sortKeys as topSortKeys, MIN_COLUMNS } from './tools/top/render.js';
export type { SortKey, RenderOptions as TopRenderOptions } from './tools/top/render.js';
export { createLogger, formatLogLine, parseLogFormat, LOG_FORMATS } from './util/log.js';
export type { LogFormat } from './util/log.js';
export { Progress } from './tools/progress.js';
export { runBin } from './bin/run-bin.js';
