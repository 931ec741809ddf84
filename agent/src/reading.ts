// One measurement of the agent's scope, before it is put on the wire.
// `null` means "this kernel or scope cannot measure it", never 0.
import type { MetricValues } from '@loadfeed/proto';

export interface ServiceReading {
  readonly name: string;
  /** Established TCP connections on the service's local port; null without SOCK_DIAG. */
  readonly established: number | null;
}

/**
 * Every metric of the catalog (METRICS in @loadfeed/proto: cpuUtilization,
 * memUtilization, load1, runnable, PSI, cpuThrottled, tcpInuse,
 * tcpEstablished, tcpAcceptsPerSecond, and what the application reports:
 * applicationUtilization, rpsFractional, eps; units and ranges there), plus
 * what the sample carries besides.
 */
export interface Reading extends MetricValues {
  readonly services: readonly ServiceReading[];
  /** Wall time the reading covers, ms. */
  readonly windowMs: number;
  /**
   * The smallest change of cpuUtilization the scope's CPU accounting can show
   * over this window: one 10 ms clock tick of /proc is 0.8 of a 0.1-core
   * process's capacity in a 125 ms window; cgroup usage (µs) is finer than
   * it matters. Not sent: it tells the agent how far to trust a short window.
   */
  readonly cpuStep: number;
  /** Named application metrics, within the contract's limits (proto APP_METRIC_NAME, MAX_NAMED_METRICS); empty without sources. */
  readonly namedMetrics: Readonly<Record<string, number>>;
}

/**
 * The scope's CPU over one watch window, or over several merged: what the
 * early-report decision needs, read from the scope's CPU source alone.
 */
export type CpuWindow = Pick<Reading, 'cpuUtilization' | 'cpuThrottled' | 'windowMs' | 'cpuStep'>;

/** What the application reports about itself: the catalog's application fields (null when no source has a fresh value) and the named ones. */
export type AppReading = Pick<MetricValues, 'applicationUtilization' | 'rpsFractional' | 'eps'> & Pick<Reading, 'namedMetrics'>;

/** Capacity of the measured scope, sent once in Hello. */
export interface Capacity {
  /** CPU capacity in cores (may be fractional). */
  readonly cores: number;
  readonly memoryBytes: number;
}
