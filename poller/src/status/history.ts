// The last minutes of every server's weight and load, for the dashboard's
// charts. A ring of frames per service, one frame per step, so memory is
// bounded by HISTORY_POINTS × servers; servers beyond HISTORY_MAX_SERVERS
// (across services) are left out of the charts and counted.
import { METRICS, type MetricField } from '@loadfeed/proto';
import type { StatusDocument } from './document.js';

export const HISTORY_STEP_MS = 1_000;
/** Ten minutes at one frame a second. */
export const HISTORY_POINTS = 600;
export const HISTORY_MAX_SERVERS = 500;

/** One server at one instant: weight, connections and the charted metrics (the catalog's `display.chart`) by field. */
interface Point {
  readonly weight: number;
  readonly connections: number | null;
  readonly metrics: ReadonlyMap<MetricField, number | null>;
}

interface Frame {
  readonly t: number;
  readonly points: ReadonlyMap<string, { readonly node: string | null; readonly point: Point }>;
}

export interface ServerSeries {
  readonly address: string;
  /** Node id at the newest frame that has this server. */
  readonly node: string | null;
  /** Aligned with the service's `t`; null where the server was not in a frame. */
  readonly weight: readonly (number | null)[];
  readonly connections: readonly (number | null)[];
  /** Each charted metric (the catalog's `display.chart`) by field name. */
  readonly metrics: Readonly<Record<string, readonly (number | null)[]>>;
}

export interface HistoryDocument {
  readonly stepMs: number;
  /** Servers not charted because of HISTORY_MAX_SERVERS at the newest frame. */
  readonly omitted: number;
  readonly services: readonly {
    readonly name: string;
    /** Wall-clock ms of each frame, oldest first. */
    readonly t: readonly number[];
    readonly servers: readonly ServerSeries[];
  }[];
}

/** The catalog's charted metrics, read at each call (the catalog is fixed in a running poller; a test adds to it). */
const chartedFields = (): MetricField[] => METRICS.filter((m) => m.display.chart).map((m) => m.field);

export class History {
  private readonly frames = new Map<string, Frame[]>();
  private omitted = 0;

  constructor(
    private readonly points = HISTORY_POINTS,
    private readonly maxServers = HISTORY_MAX_SERVERS,
  ) {}

  /** Append one frame per service of `doc`; services gone from the policy are forgotten. */
  record(doc: StatusDocument): void {
    const charted = chartedFields();
    let budget = this.maxServers;
    let omitted = 0;
    const names = new Set<string>();
    for (const service of doc.services) {
      names.add(service.name);
      const points = new Map<string, { node: string | null; point: Point }>();
      for (const s of service.servers) {
        if (budget <= 0) {
          omitted += 1;
          continue;
        }
        budget -= 1;
        points.set(s.address, {
          node: s.node,
          point: { weight: s.weight, connections: s.connections, metrics: new Map(charted.map((f) => [f, s.metrics[f]])) },
        });
      }
      let ring = this.frames.get(service.name);
      if (!ring) {
        ring = [];
        this.frames.set(service.name, ring);
      }
      ring.push({ t: doc.generatedAt, points });
      if (ring.length > this.points) ring.splice(0, ring.length - this.points);
    }
    for (const name of this.frames.keys()) if (!names.has(name)) this.frames.delete(name);
    this.omitted = omitted;
  }

  /** Frames newer than `sinceMs` (wall clock), as columns ready for charts. */
  since(sinceMs = 0, stepMs = HISTORY_STEP_MS): HistoryDocument {
    const charted = chartedFields();
    const services = [...this.frames].map(([name, ring]) => {
      const frames = ring.filter((f) => f.t > sinceMs);
      const addresses: string[] = [];
      const nodes = new Map<string, string | null>();
      for (const f of frames) {
        for (const [address, { node }] of f.points) {
          if (!nodes.has(address)) addresses.push(address);
          nodes.set(address, node);
        }
      }
      const column = (address: string, of: (p: Point) => number | null | undefined): (number | null)[] =>
        frames.map((f) => {
          const p = f.points.get(address)?.point;
          return p === undefined ? null : (of(p) ?? null);
        });
      return {
        name,
        t: frames.map((f) => f.t),
        servers: addresses.map((address) => ({
          address,
          node: nodes.get(address) ?? null,
          weight: column(address, (p) => p.weight),
          connections: column(address, (p) => p.connections),
          metrics: Object.fromEntries(charted.map((f) => [f, column(address, (p) => p.metrics.get(f))])),
        })),
      };
    });
    return { stepMs, omitted: this.omitted, services };
  }
}
