import { readFileSync } from 'node:fs';
import type { CpuCgroup } from './cgroup.js';
import { firstLine, type Children } from './children.js';
import { Cluster } from './cluster.js';
import { QUICK } from './measure.js';
import type { NetNs } from './netns.js';
import { LOADGEN_SCRIPT, parseRecords } from './records.js';

export interface CalibrateOptions {
  readonly children: Children;
  readonly root: CpuCgroup;
  readonly nets: readonly NetNs[];
  readonly periodUs: number;
  readonly workMs: number;
  /** File for the load generator's per-request records. */
  readonly records: string;
  /** Told of the calibration cluster while it runs, so that an interrupted bench can stop it. */
  readonly track: (c: Cluster | null) => void;
}

/**
 * Requests per second one core of bench backend serves, measured by
 * saturating one backend alone. Less than the nominal 1000 / workMs: HTTP,
 * the sockets and the quota's throttling cost CPU too, so a load set from the
 * nominal figure would run the backends much hotter than intended.
 */
export async function calibrate(o: CalibrateOptions): Promise<number> {
  const spec = { id: 'cal', cores: 0.2 };
  const cluster = new Cluster({ children: o.children, root: o.root, run: 'calibrate', nets: o.nets, backends: [spec], workMs: o.workMs, periodUs: o.periodUs });
  o.track(cluster);
  try {
    await cluster.startBackends();
    await cluster.startBalancer({ kind: 'engine', scheduler: 'wlc', weight: () => 1 });
    const nominal = (spec.cores * 1000) / o.workMs;
    const durationS = QUICK ? 3 : 6;
    const gen = o.children.node('loadgen', LOADGEN_SCRIPT, [
      '--target', `${cluster.target.host}:${cluster.target.port}`,
      '--schedule', JSON.stringify([[0, nominal * 1.5]]),
      '--duration', String(durationS),
      '--out', o.records,
      '--timeout-ms', '3000',
    ]);
    await firstLine(gen);
    await new Promise((resolve) => gen.child.once('exit', resolve));
    // Completions per second while saturated (after the first second, before the end).
    const recs = parseRecords(readFileSync(o.records, 'utf8')).filter((r) => r.outcome === 'ok');
    const ends = recs.map((r) => r.intendedMs + r.latencyUs / 1000).filter((t) => t >= 1000 && t < durationS * 1000);
    if (ends.length === 0) throw new Error(`calibration: no request to the saturated backend completed in ${durationS} s`);
    return ends.length / (durationS - 1) / spec.cores;
  } finally {
    await cluster.stop();
    o.track(null);
  }
}
