// Errors the agent throws or reports. `code` is stable (logs and tests match
// on it); `message` names the file, line or value that was wrong.

export type AgentErrorCode =
  /** The agent's configuration (flags, environment, file) is invalid. */
  | 'AGENT_CONFIG_INVALID'
  /** A /proc or /sys file did not have the format the kernel documents. */
  | 'AGENT_PROC_PARSE'
  /** The measured scope disappeared: the process tree's root exited, the cgroup was removed. */
  | 'AGENT_SCOPE_GONE'
  /** A /proc or /sys file exists but could not be read (permissions, I/O). */
  | 'AGENT_READ_FAILED'
  /** The netlink SOCK_DIAG socket could not be opened or a dump failed. */
  | 'AGENT_SOCK_DIAG'
  /** An application metrics source (ORCA, Prometheus endpoint, push socket) sent something unusable. */
  | 'AGENT_APP_METRICS';

export class AgentError extends Error {
  override readonly name = 'AgentError';
  readonly code: AgentErrorCode;

  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
