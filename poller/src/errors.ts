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

/** An agent message that breaks the contract; mapped to a gRPC status in one place (ingest). */
export class IngestError extends PollerError {
  override readonly name = 'IngestError';
  constructor(
    readonly reason: 'invalid-argument' | 'failed-precondition' | 'unauthenticated' | 'permission-denied' | 'resource-exhausted',
    message: string,
  ) {
    super('INGEST_REJECTED', message);
  }
}
