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

/** The engine cannot do what an op or option asks (e.g. UDP on the fast path, an unknown scheduler). */
export class UnsupportedError extends BridgeError {
  override readonly name = 'UnsupportedError';
  constructor(message: string) {
    super('BRIDGE_UNSUPPORTED', message);
  }
}

/** An engine option out of range (e.g. a negative timeout). */
export class OptionError extends BridgeError {
  override readonly name = 'OptionError';
  constructor(message: string) {
    super('BRIDGE_OPTION_INVALID', message);
  }
}

/** A listening socket could not be opened (EADDRINUSE, EACCES…) or failed to accept. */
export class ListenerError extends BridgeError {
  override readonly name = 'ListenerError';
  constructor(message: string, options: { cause: unknown }) {
    super('BRIDGE_LISTENER_FAILED', message, options);
  }
}

/** `apply()` after `close()`. */
export class EngineClosedError extends BridgeError {
  override readonly name = 'EngineClosedError';
  constructor(kind: string) {
    super('BRIDGE_ENGINE_CLOSED', `the ${kind} engine is closed`);
  }
}

/**
 * An engine the kernel or host does not provide (no IPVS in the kernel, a
 * missing binary or native module). The message says what to install or load.
 */
export class EngineUnavailableError extends BridgeError {
  override readonly name = 'EngineUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('BRIDGE_ENGINE_UNAVAILABLE', message, options);
  }
}

/** The process lacks a privilege the engine needs (e.g. CAP_NET_ADMIN for IPVS). */
export class EnginePermissionError extends BridgeError {
  override readonly name = 'EnginePermissionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('BRIDGE_PERMISSION_DENIED', message, options);
  }
}

/** The kernel answered a netlink request with an error number not mapped to a more specific error. */
export class NetlinkErrnoError extends BridgeError {
  override readonly name = 'NetlinkErrnoError';
  /** Positive errno, e.g. 22. */
  readonly errno: number;
  /** Its symbolic name, e.g. `EINVAL`. */
  readonly errnoName: string;
  constructor(errno: number, errnoName: string, message: string) {
    super('BRIDGE_NETLINK_ERRNO', message);
    this.errno = errno;
    this.errnoName = errnoName;
  }
}

/** A reply from the kernel or a tool that does not have the expected shape (truncated, unknown format). */
export class MalformedReplyError extends BridgeError {
  override readonly name = 'MalformedReplyError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('BRIDGE_MALFORMED_REPLY', message, options);
  }
}

/** An external command an engine runs (ipvsadm, nft…) failed: exit status and stderr in the message. */
export class CommandFailedError extends BridgeError {
  override readonly name = 'CommandFailedError';
  /** Exit status, or null when the command was killed by a signal or did not start. */
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(message: string, details: { exitCode: number | null; stderr: string; cause?: unknown }) {
    super('BRIDGE_COMMAND_FAILED', message, { cause: details.cause });
    this.exitCode = details.exitCode;
    this.stderr = details.stderr;
  }
}

/** A connection limit (`maxConnections`) that is not a non-negative integer the engine can hold. */
export class ConnectionLimitError extends BridgeError {
  override readonly name = 'ConnectionLimitError';
  constructor(message: string) {
    super('BRIDGE_CONNECTION_LIMIT_RANGE', message);
  }
}

/**
 * A target that cannot be removed yet because connections still use it (HAProxy
 * deletes a server only once they are gone); it takes no new ones meanwhile.
 */
export class TargetBusyError extends BridgeError {
  override readonly name = 'TargetBusyError';
  constructor(message: string) {
    super('BRIDGE_TARGET_BUSY', message);
  }
}

/** An engine refused a command for a reason no other error names; the message quotes the engine. */
export class CommandRefusedError extends BridgeError {
  override readonly name = 'CommandRefusedError';
  constructor(message: string) {
    super('BRIDGE_COMMAND_REFUSED', message);
  }
}
