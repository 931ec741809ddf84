export {
  v1,
  AgentMessage,
  PollerMessage,
  Hello,
  Sample,
  ServiceLoad,
  ServiceInfo,
  Ack,
  Config,
  Scope,
} from './messages.js';
export type { HelloInit, SampleInit } from './messages.js';
export {
  telemetryService,
  createTelemetryClient,
  TELEMETRY_REPORT_PATH,
} from './telemetry-service.js';
export type { TelemetryClient, TelemetryServer, TelemetryReportCall } from './telemetry-service.js';
export { grpc } from './grpc.js';
export { METRICS, MAX_UTILIZATION, compileFromCatalog, compileMetricValues, copyMetricValues, metricGroups, metricReadings, metricValues, APP_METRIC_NAME, MAX_APP_METRIC_NAME_LENGTH, MAX_NAMED_METRICS, toAppMetricName } from './metrics.js';
export type { MetricDefinition, MetricDisplay, MetricEntry, MetricField, MetricGroup, MetricPrometheus, MetricReadings, MetricSource, MetricValues } from './metrics.js';
export { createOrcaStreamClient, isOrcaNodeId, orcaEndReason, orcaReportValues, OrcaSubscription, ORCA_NODE_PREFIX, ORCA_STREAM_PATH } from './orca.js';
export { Backoff, DEFAULT_BACKOFF_BASE_MS, DEFAULT_BACKOFF_MAX_MS } from './backoff.js';
export type { OrcaClient, OrcaLoadReport, OrcaSubscriptionEvents } from './orca.js';
export { PLAINTEXT_CHANNEL, tlsChannel } from './tls.js';
export type { ClientChannel, ClientTls } from './tls.js';
