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
