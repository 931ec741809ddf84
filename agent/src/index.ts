// Public API of @loadfeed/agent: explicit named re-exports only.
export { AgentError, type AgentErrorCode } from './errors.js';
export type { AppReading, Capacity, CpuWindow, Reading, ServiceReading } from './reading.js';
export { AppMetrics, NO_APP_READING, type AppMetricsStatus } from './app/metrics.js';
export { FIXED_APP_METRICS, type AppSource, type AppSourceKind, type AppSourceState, type AppSourceStatus } from './app/source.js';
export { MIN_ORCA_INTERVAL_MS, OrcaSource } from './app/orca-source.js';
export {
  MAX_SCRAPE_BYTES,
  MIN_SCRAPE_INTERVAL_MS,
  PrometheusSource,
  evaluateScrape,
  seriesKind,
  type ScrapeResult,
  type ScrapeTotals,
  type SeriesSpec,
} from './app/prometheus-source.js';
export {
  parsePrometheusText,
  parseSeriesSelector,
  selects,
  type LabelMatcher,
  type PromExposition,
  type PromSeries,
  type PromType,
  type SeriesSelector,
} from './app/prometheus-text.js';
export { MAX_LINE_BYTES, MAX_PUSH_CONNECTIONS, MAX_PUSH_NAMES, PUSH_SOCKET_MODE, PushSource, parsePushLine, type PushLine } from './app/push-socket.js';
export { createSampler, type Sampler, type SamplerOptions, type SamplerScope } from './sampler.js';
export { collectFacts, hostAddresses, type CpuInfo, type Facts } from './facts.js';
export { DEFAULT_PROC_ROOT, DEFAULT_SYS_ROOT } from './collectors/read-text.js';
export { USER_HZ, busyTicks, cpuDelta, parseProcStat, readProcStat, scanProcStatCpu, totalTicks, type CpuTimes, type ProcStat } from './collectors/proc-stat.js';
export { parseLoadavg, type LoadAvg } from './collectors/loadavg.js';
export { HostFiles } from './collectors/host-files.js';
export { parsePressure, readPressureFile, type Pressure, type PressureResource } from './collectors/pressure.js';
export { parseMeminfo, readMeminfo, type MemInfo } from './collectors/meminfo.js';
export { acceptsPerSecond, parseSnmp, parseSockstat, type TcpSnmp } from './collectors/sockstat.js';
export {
  DEFAULT_DUMP_TIMEOUT_MS,
  MAX_FILTERED_PORTS,
  SockDiagErrno,
  createEstablishedCounter,
  decodeSockDiagReply,
  encodePortFilter,
  encodeSockDiagRequest,
  encodeTcpDiagRequest,
  type DatagramSocket,
  type EstablishedCounter,
  type EstablishedCounterOptions,
} from './collectors/sock-diag.js';
export { DEFAULT_DUMP_CPU_BUDGET, DumpBudget, scaleCounts, type PortCounts } from './collectors/sock-diag-budget.js';
export {
  SELF_CGROUP,
  cfsQuotaCores,
  cgroupCpuUtilization,
  locateCgroup,
  openCgroup,
  parseCgroupCpuStat,
  parseCgroupInteger,
  parseCgroupMax,
  parseCpuMax,
  parseMountinfo,
  parseProcCgroup,
  CgroupCpuSource,
  readCgroupLimits,
  readCgroupMemory,
  readCgroupPressure,
  throttledFraction,
  type CgroupCandidates,
  type CgroupCpu,
  type CgroupCpuStat,
  type CgroupDirs,
  type CgroupLimits,
  type CgroupMembership,
  type CgroupV1Dirs,
  type CgroupV2Dir,
  type Mount,
} from './collectors/cgroup.js';
export {
  createProcessTreeReader,
  parseChildren,
  parsePidStat,
  parsePidStatusRss,
  processCpuUtilization,
  processTreeTicks,
  type PidStat,
  type ProcessTreeReader,
  type ProcessTreeUsage,
} from './collectors/process.js';
export {
  appSourcesConfigured,
  loadAgentConfig,
  parseIntervalMs,
  AGENT_USAGE,
  DEFAULT_INTERVAL_MS,
  MIN_INTERVAL_MS,
  MAX_INTERVAL_MS,
  DEFAULT_POLLER_PORT,
  DEFAULT_APP_TTL_MS,
  DEFAULT_EARLY_APP_CHANGE,
  type AgentConfig,
  type AppMetricsConfig,
  type ScopeConfig,
  type ParsedCommandLine,
} from './config.js';
export { mergeWindows, ReportGate, WATCHES_PER_INTERVAL } from './report-gate.js';
export { PollerStream, KEEPALIVE_TIME_MS, KEEPALIVE_TIMEOUT_MS, type StreamState, type ReporterEvents } from './reporter.js';
export { loadTransport, type Transport } from './transport.js';
export type { TransportConfig } from './config.js';
export { AgentStatus, AgentStatusSocket, AGENT_STATUS_VERSION, STATUS_SOCKET_MODE, type AgentStatusDocument, type StreamStatus } from './status-socket.js';
export { agentStatusMain, fetchAgentStatus, formatAgentStatus } from './status-cli.js';
export { defaultStatusSocket } from './config.js';
export { formatLogRecord, LOG_FORMATS as AGENT_LOG_FORMATS, type LogFormat as AgentLogFormat } from './log-line.js';
