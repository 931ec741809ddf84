// Errors of the poller: a stable `code` for programs, a message that names
// the file, field and value for people, and the underlying `cause`.

export class PollerError extends Error {
  override readonly name: string = 'PollerError';
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A command-line flag with a bad or missing value; the message names the flag. */
export class OptionError extends PollerError {
  override readonly name = 'OptionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('POLLER_OPTION_INVALID', message, options);
  }
}

/** A listening socket could not be opened (address in use, not this host's); the message says what to do. */
export class ListenError extends PollerError {
  override readonly name = 'ListenError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('POLLER_LISTEN_FAILED', message, options);
  }
}

/** A name (engine, strategy) that no registry holds: a composition mistake, not user input (compile checks that). */
export class NotRegisteredError extends PollerError {
  override readonly name = 'NotRegisteredError';
  constructor(message: string) {
    super('POLLER_NOT_REGISTERED', message);
  }
}

/** Another program or server did not do what was asked (openssl, a poller's status server). */
export class ExternalError extends PollerError {
  override readonly name = 'ExternalError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('POLLER_EXTERNAL_FAILED', message, options);
  }
}

/** A file the package ships is missing: the installation is broken. */
export class InstallError extends PollerError {
  override readonly name = 'InstallError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('POLLER_INSTALL_BROKEN', message, options);
  }
}

export interface PolicyProblem {
  /** File the problem is in. */
  readonly file: string;
  /** 1-based line, or null when the problem has no single place (e.g. the file is empty). */
  readonly line: number | null;
  /** JSON-style path of the field, e.g. `services[0].weights.min`. */
  readonly path: string;
  readonly message: string;
}

/** A policy file that does not compile; `problems` lists every error found. */
export class PolicyError extends PollerError {
  override readonly name = 'PolicyError';
  readonly problems: readonly PolicyProblem[];
  constructor(problems: readonly PolicyProblem[], options?: { cause?: unknown }) {
    super('POLICY_INVALID', problems.map(formatProblem).join('\n'), options);
    this.problems = problems;
  }
}

export function formatProblem(p: PolicyProblem): string {
  const where = p.line === null ? p.file : `${p.file}:${p.line}`;
  return p.path === '' ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
}

/**
 * An agent message that breaks the contract; mapped to a gRPC status in one
 * place (ingest). `rejection` is the stable label it is counted by
 * (loadfeed_samples_rejected_total{reason}): the field or check that failed,
 * e.g. `sample.seq`, `auth`, `sample.rate`.
 */
export class IngestError extends PollerError {
  override readonly name = 'IngestError';
  constructor(
    readonly reason: 'invalid-argument' | 'failed-precondition' | 'unauthenticated' | 'permission-denied' | 'resource-exhausted',
    readonly rejection: string,
    message: string,
  ) {
    super('INGEST_REJECTED', message);
  }
}
