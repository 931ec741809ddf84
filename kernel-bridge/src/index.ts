export type { Engine } from './engine.js';
export type {
  ServiceAddress,
  DestinationAddress,
  ObservedDestination,
  ObservedService,
  Observation,
  ServiceSpec,
  EngineOp,
  WeightRange,
} from './model.js';
export { BridgeError, UnknownTargetError, WeightRangeError, AddressError, ConflictError } from './errors.js';
export { parseHostPort, parseL4Address, formatHostPort, formatL4Address } from './address.js';
export type { HostPort, L4Address, Protocol } from './address.js';
export { UnsupportedError, OptionError, ListenerError, EngineClosedError } from './errors.js';
export type { ParseAddressOptions } from './address.js';
export {
  createMemoryEngine,
  MEMORY_ENGINE_KIND,
  MEMORY_ENGINE,
  DEFAULT_MEMORY_WEIGHT_RANGE,
  DEFAULT_MEMORY_SCHEDULER,
} from './memory-engine.js';
export type { MemoryEngineOptions } from './memory-engine.js';
export {
  createFastpathEngine,
  FASTPATH_ENGINE_KIND,
  FASTPATH_ENGINE,
  FASTPATH_WEIGHT_RANGE,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DOWN_PERIOD_MS,
} from './fastpath/engine.js';
export type { FastpathEngine, FastpathOptions, FastpathDiagnostics } from './fastpath/engine.js';
export { pickWlc, pickSwrr, pickSed, pickSwrrLc, pickSwrrSed, pickSwrrLead, pickPeakEwma, observeLatency, LONG_CONNECTION_MS, LATENCY_DECAY_MS, FASTPATH_SCHEDULERS, DEFAULT_FASTPATH_SCHEDULER } from './fastpath/scheduler.js';
export type { Scheduler, SchedulerTarget } from './fastpath/scheduler.js';
export {
  createIpvsEngine,
  createEngineOver as createIpvsEngineOver,
  IPVS_ENGINE_KIND,
  IPVS_ENGINE,
  IPVS_WEIGHT_RANGE,
  DEFAULT_IPVS_SCHEDULER,
  DEFAULT_IPVS_FORWARD,
} from './ipvs/engine.js';
export type { IpvsEngine, IpvsEngineOptions, IpvsDriverChoice } from './ipvs/engine.js';
export type { IpvsBackend, IpvsDriver } from './ipvs/backend.js';
export {
  createIpvsSocket,
  openIpvsSocket,
  openNetlinkTransport,
  IPVS_UNAVAILABLE_MESSAGE,
  IPVS_PERMISSION_MESSAGE,
  DEFAULT_NETLINK_TIMEOUT_MS,
} from './ipvs/socket.js';
export type { IpvsSocket, NetlinkTransport, NetlinkReply, NetlinkTransportOptions } from './ipvs/socket.js';
export { createNetlinkBackend, DEFAULT_NETLINK_WINDOW } from './ipvs/netlink-driver.js';
export { compileSteps as compileIpvsSteps, planEdits as planIpvsEdits } from './ipvs/edits.js';
export type { IpvsEdit, IpvsStep, EditPlan as IpvsEditPlan, EditDefaults as IpvsEditDefaults } from './ipvs/edits.js';
export {
  createIpvsadmBackend,
  parseListing as parseIpvsadmListing,
  mergeListings as mergeIpvsadmListings,
  scriptLine as ipvsadmScriptLine,
  firstMissing as firstMissingIpvsEdit,
  createIpvsadmRunner,
} from './ipvs/ipvsadm.js';
export type { IpvsadmOptions, IpvsadmRunner, IpvsadmResult, Listing as IpvsadmListing } from './ipvs/ipvsadm.js';
export { createIpvsCodec, ipvsCodec, HOST_ENDIANNESS } from './ipvs/codec.js';
export type {
  IpvsCodec,
  Endianness,
  RawAttribute,
  IpvsFlags,
  StatsAttributes,
  ServiceAttributes,
  DestAttributes,
  CommandAttributes,
  InfoAttributes,
  CtrlAttributes,
  NetlinkMessage,
  GenlMessage,
} from './ipvs/codec.js';
export {
  parseServiceKey as parseIpvsServiceKey,
  formatServiceKey as formatIpvsServiceKey,
  parseDestinationKey as parseIpvsDestinationKey,
  formatDestinationKey as formatIpvsDestinationKey,
} from './ipvs/model.js';
export type {
  IpvsFamily,
  IpvsProtocol,
  IpvsForwardMethod,
  IpvsTunnelType,
  IpvsServiceKey,
  IpvsServiceSettings,
  IpvsStats,
  IpvsService,
  IpvsDestinationKey,
  IpvsTunnel,
  IpvsDestinationSettings,
  IpvsDestinationCounters,
  IpvsDestination,
  IpvsServiceState,
} from './ipvs/model.js';
export { parseIp, formatIp, canonicalIp } from './ipvs/inet.js';
export { ipvsUapi } from './ipvs/uapi-namespace.js';
export {
  EngineUnavailableError,
  EnginePermissionError,
  NetlinkErrnoError,
  MalformedReplyError,
  CommandFailedError,
} from './errors.js';
export { ConnectionLimitError, TargetBusyError, CommandRefusedError } from './errors.js';
export {
  createHaproxyEngine,
  HAPROXY_ENGINE_KIND,
  HAPROXY_ENGINE,
  HAPROXY_WEIGHT_RANGE,
  DEFAULT_HAPROXY_MAX_LINE_BYTES,
} from './haproxy/engine.js';
export type { HaproxyEngine, HaproxyOptions } from './haproxy/engine.js';
export { createRuntimeApiClient, DEFAULT_RUNTIME_API_TIMEOUT_MS } from './haproxy/client.js';
export type { RuntimeApiClient, RuntimeApiOptions } from './haproxy/client.js';
export {
  checkOps as checkHaproxyOps,
  planCommands as planHaproxyCommands,
  groupLines as groupHaproxyLines,
  commandBytes as haproxyCommandBytes,
  serverNamedByAddress,
} from './haproxy/plan.js';
export type { PlannedOp as HaproxyPlannedOp, HaproxyPlan, ServerAddressResolver } from './haproxy/plan.js';
export {
  MarkedReplyReader,
  ReplyFormatError as HaproxyReplyFormatError,
  markedLine,
  parseMarkedReplies,
  classifyReply as classifyHaproxyReply,
  parseServersState,
  parseShowBackend,
  parseShowStat,
  splitCsvLine,
  MARKER_COMMAND as HAPROXY_MARKER_COMMAND,
  CLI_LEVELS as HAPROXY_CLI_LEVELS,
} from './haproxy/replies.js';
export type {
  CliLevel as HaproxyCliLevel,
  MarkedReplies,
  ReplyOutcome as HaproxyReplyOutcome,
  ServerState as HaproxyServerState,
  StatBackend as HaproxyStatBackend,
  StatServer as HaproxyStatServer,
} from './haproxy/replies.js';
export {
  createNftablesEngine,
  NFTABLES_ENGINE_KIND,
  NFTABLES_ENGINE,
  NFTABLES_WEIGHT_RANGE,
  DEFAULT_NFTABLES_TABLE,
} from './nftables/engine.js';
export type { NftablesEngine, NftablesOptions } from './nftables/engine.js';
export { createCommandRunner, systemTool, DEFAULT_COMMAND_TIMEOUT_MS, SYSTEM_BIN_DIRS } from './command.js';
export type { CommandOptions, CommandResult, CommandRunner } from './command.js';
export {
  NFTABLES_SCHEDULER,
  compileSteps as compileNftSteps,
  applySteps as applyNftSteps,
  parseServiceAddress as parseNftServiceAddress,
  sortServices as sortNftServices,
} from './nftables/model.js';
export type { NftFamily, NftServiceKey, NftDestination, NftService, NftStep, NftPlan } from './nftables/model.js';
export {
  renderScript as renderNftScript,
  elementsOf as nftMapElements,
  mapName as nftMapName,
  parseMapName as parseNftMapName,
  ZERO_WEIGHT_KEY_BASE as NFT_ZERO_WEIGHT_KEY_BASE,
  MAX_TOTAL_WEIGHT as NFT_MAX_TOTAL_WEIGHT,
} from './nftables/script.js';
export type { MapElement as NftMapElement } from './nftables/script.js';
export { parseRuleset as parseNftRuleset, SERVICES_CHAIN as NFT_SERVICES_CHAIN } from './nftables/ruleset.js';
export type { EngineDescriptor } from './descriptor.js';
export { createXdsEngine, XDS_ENGINE, XDS_ENGINE_KIND, XDS_WEIGHT_RANGE } from './xds/engine.js';
export type { XdsEngine, XdsEngineOptions, XdsEngineEvent } from './xds/engine.js';
export type { XdsClientStatus, XdsTypeStatus, XdsServerCounters } from './xds/server.js';
export { ADS_STREAM_PATH } from './xds/server.js';
export { XDS_SCHEDULERS, DEFAULT_XDS_SCHEDULER, RING_SIZE as XDS_RING_SIZE } from './xds/resources.js';
export { xdsTypes, LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE } from './xds/protos.js';
export type { XdsTypes, ResourceType as XdsResourceType } from './xds/protos.js';
export { loadAssignment as xdsLoadAssignment } from './xds/resources.js';
export type { XdsDestination } from './xds/resources.js';
