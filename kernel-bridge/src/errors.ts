// Errors of the kernel bridge: a stable `code` for programs, a message that
// names what was wrong for people, and the underlying `cause` when there is one.

export class BridgeError extends Error {
  override readonly name: string = 'BridgeError';
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** An op named a service or destination the engine does not have. */
export class UnknownTargetError extends BridgeError {
  override readonly name = 'UnknownTargetError';
  constructor(message: string) {
    super('BRIDGE_UNKNOWN_TARGET', message);
  }
}

/** A weight outside the engine's range, or not an integer. */
export class WeightRangeError extends BridgeError {
  override readonly name = 'WeightRangeError';
  constructor(message: string) {
    super('BRIDGE_WEIGHT_RANGE', message);
  }
}

/** An address string that does not parse (`tcp 127.0.0.1:80`, `10.0.0.1:8080`). */
export class AddressError extends BridgeError {
  override readonly name = 'AddressError';
  constructor(message: string) {
    super('BRIDGE_ADDRESS_INVALID', message);
  }
}

/** An op that would create something that exists already. */
export class ConflictError extends BridgeError {
  override readonly name = 'ConflictError';
  constructor(message: string) {
    super('BRIDGE_CONFLICT', message);
  }
}
