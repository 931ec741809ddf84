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

/** Another program or server did not do what was asked (a poller's status server). */
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

/** Problems a PolicyError keeps; a file with more says how many it left out. */
export const MAX_POLICY_PROBLEMS = 20;
/** Characters of one problem's message; a value is quoted as an excerpt (see excerpt). */
export const MAX_PROBLEM_CHARS = 300;

/**
 * A policy file that does not compile; `problems` lists the errors found,
 * at most MAX_POLICY_PROBLEMS of them, each at most MAX_PROBLEM_CHARS long:
 * they end up in logs, /status and /healthz, so a refused file of any size
 * is never echoed whole.
 */
export class PolicyError extends PollerError {
  override readonly name = 'PolicyError';
  readonly problems: readonly PolicyProblem[];
  constructor(problems: readonly PolicyProblem[], options?: { cause?: unknown }) {
    const cut = (text: string): string => (text.length > MAX_PROBLEM_CHARS ? `${text.slice(0, MAX_PROBLEM_CHARS)}…` : text);
    const kept = problems.slice(0, MAX_POLICY_PROBLEMS).map((p) => ({ ...p, path: cut(p.path), message: cut(p.message) }));
    const first = problems[0];
    if (problems.length > kept.length && first) {
      kept.push({ file: first.file, line: null, path: '', message: `and ${problems.length - kept.length} more problems` });
    }
    super('POLICY_INVALID', kept.map(formatProblem).join('\n'), options);
    this.problems = kept;
  }
}

/** Characters of a value quoted in an error message. */
export const EXCERPT_CHARS = 60;

/** A value as JSON for an error message, cut to EXCERPT_CHARS with its full length said. */
export function excerpt(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  if (text.length <= EXCERPT_CHARS) return typeof value === 'string' ? JSON.stringify(value) : text;
  return `${JSON.stringify(text.slice(0, EXCERPT_CHARS))}… (${text.length} characters)`;
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
