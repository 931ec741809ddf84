// One measurement of the agent's scope, before it is put on the wire.
// `null` means "this kernel or scope cannot measure it", never 0.

export interface ServiceReading {
  readonly name: string;
  /** Established TCP connections on the service's local port; null without SOCK_DIAG. */
  readonly established: number | null;
}

export interface Reading {
  /** CPU busy over the window as a fraction of the scope's capacity (may exceed 1 in process scope). */
  readonly cpuUtilization: number;
  /** Memory in use as a fraction of the scope's memory capacity. */
  readonly memUtilization: number;
  /** Host 1-minute load average. */
  readonly load1: number | null;
  /** Host runnable tasks (procs_running). */
  readonly runnable: number | null;
  /** PSI `some avg10` of the scope as fractions 0..1. */
  readonly psiCpuSome: number | null;
  readonly psiMemorySome: number | null;
  readonly psiIoSome: number | null;
  /** Fraction of CFS periods throttled over the window (cgroup scope). */
  readonly cpuThrottled: number | null;
  /** Host TCP sockets in use (/proc/net/sockstat + sockstat6). */
  readonly tcpInuse: number | null;
  /** Host established TCP connections (/proc/net/snmp CurrEstab). */
  readonly tcpEstablished: number | null;
  /** Host connections accepted per second over the window (PassiveOpens delta). */
  readonly tcpAcceptsPerSecond: number | null;
  readonly services: readonly ServiceReading[];
  /** Wall time the reading covers, ms. */
  readonly windowMs: number;
}

/** Capacity of the measured scope, sent once in Hello. */
export interface Capacity {
  /** CPU capacity in cores (may be fractional). */
  readonly cores: number;
  readonly memoryBytes: number;
}
