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
  DEFAULT_MEMORY_WEIGHT_RANGE,
  DEFAULT_MEMORY_SCHEDULER,
} from './memory-engine.js';
export type { MemoryEngineOptions } from './memory-engine.js';
export {
  createFastpathEngine,
  FASTPATH_ENGINE_KIND,
  FASTPATH_WEIGHT_RANGE,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DOWN_PERIOD_MS,
} from './fastpath/engine.js';
export type { FastpathEngine, FastpathOptions, FastpathDiagnostics } from './fastpath/engine.js';
export { pickWlc, pickSwrr, FASTPATH_SCHEDULERS, DEFAULT_FASTPATH_SCHEDULER } from './fastpath/scheduler.js';
export type { Scheduler, SchedulerTarget } from './fastpath/scheduler.js';
