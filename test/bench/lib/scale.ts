// What bench:poller-scale, its server host and its simulated agents agree on:
// the identity of simulated agent i, the servers the host can be, and the
// host's answer to "report".

export const nodeId = (i: number): string => `sim-${String(i).padStart(6, '0')}`;
export const nodeAddress = (i: number): string => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

/** See poller-host.ts. */
export const HOST_MODES = ['grpc', 'http2', 'transport', 'full'] as const;
export type HostMode = (typeof HOST_MODES)[number];

export interface HostReport {
  /** Samples accepted (poller) or decoded (bare) in the window. */
  readonly accepted: number;
  /** Policy cycles whose weights reached the engine in the window (0 in the bare modes). */
  readonly cycles: number;
  /** Agents live (poller) or streams that said Hello and are open (bare). */
  readonly live: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** p99 of timestamp → sample accepted (the full poller's p99Ms runs on to the decision; the other modes': the same). */
  readonly ingestP99Ms: number;
  /** Full poller: sample accepted → evaluated by a policy cycle, p99 and longest (other modes: null, as JSON carries NaN). */
  readonly cycleWaitP99Ms: number;
  readonly cycleWaitMaxMs: number;
  readonly maxMs: number;
  readonly loopDelayP99Ms: number;
  /** Time in garbage-collection pauses, ms: all in the window together, those of major (mark-compact) collections, and the longest one. */
  readonly gcMs: number;
  readonly gcMajorMs: number;
  readonly gcMaxMs: number;
  /** Messages refused since start, by reason (poller modes). */
  readonly rejected: Readonly<Record<string, number>>;
}
