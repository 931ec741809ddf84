// Per-port connection counts under a CPU budget. A SOCK_DIAG dump walks the
// kernel's whole established-socket hash table, once per address family,
// whatever the port filter: a few milliseconds on a quiet host, and about
// 1.2 µs more for every socket on it (bench:agent-cost measured 120 ms of
// kernel time per count with 50,000 loopback connections, i.e. 12 % of a core
// at one sample a second). So a dump is taken only when the CPU the previous
// one cost, spread over the time since, stays within `budget` (a fraction of
// one core). Between dumps the counts are the last dump's; when the counted
// ports held most of the host's established connections at that dump, they
// are scaled by how the host's total (/proc/net/snmp CurrEstab, which costs
// nothing to read) moved since, which tracks a server whose connections are
// its service's. A cheap dump (a host with few sockets) is simply repeated
// every sample or few.

/** Average share of one core the per-port dumps may use. */
export const DEFAULT_DUMP_CPU_BUDGET = 0.002;
/** Scale between dumps only when the counted ports held at least this share of the host's established connections. */
export const SCALE_WHEN_COUNTED_SHARE = 0.5;

export type PortCounts = ReadonlyMap<number, number>;

/** The agent's own CPU time so far, µs (user + system: the dump is kernel time in our process). */
function ownCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

export class DumpBudget {
  private last: PortCounts | null = null;
  private establishedAtLast: number | null = null;
  private nextAt = -Infinity;

  constructor(
    private readonly budget = DEFAULT_DUMP_CPU_BUDGET,
    private readonly cpuUs: () => number = ownCpuUs,
  ) {
    if (!(budget > 0 && budget <= 1)) throw new RangeError(`dump budget ${budget} must be within (0, 1]`);
  }

  /**
   * Counts per port now (ms on any monotonic clock): from `dump` when the
   * budget allows or nothing is known yet, else estimated from the last dump
   * and the host's established total (`hostEstablished`, null when unknown).
   */
  async count(now: number, hostEstablished: number | null, dump: () => Promise<PortCounts | null>): Promise<PortCounts | null> {
    if (this.last !== null && now < this.nextAt) return scaleCounts(this.last, this.establishedAtLast, hostEstablished);
    const before = this.cpuUs();
    const counts = await dump();
    const costUs = Math.max(0, this.cpuUs() - before);
    this.nextAt = now + costUs / 1000 / this.budget;
    if (counts !== null) {
      this.last = counts;
      this.establishedAtLast = hostEstablished;
    }
    return counts;
  }
}

/**
 * `counts` scaled by established now / then; unchanged when either total is
 * unknown, then was 0, or the counted ports were not most of it then.
 */
export function scaleCounts(counts: PortCounts, establishedThen: number | null, establishedNow: number | null): PortCounts {
  if (establishedThen === null || establishedNow === null || establishedThen <= 0 || establishedNow === establishedThen) return counts;
  let counted = 0;
  for (const n of counts.values()) counted += n;
  if (counted < SCALE_WHEN_COUNTED_SHARE * establishedThen) return counts;
  const f = establishedNow / establishedThen;
  return new Map([...counts].map(([port, n]) => [port, Math.round(n * f)]));
}
