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
export { METRICS, MAX_UTILIZATION, metricReadings, metricValues } from './metrics.js';
export type { MetricDefinition, MetricEntry, MetricField, MetricPrometheus, MetricReadings, MetricSource, MetricValues } from './metrics.js';
