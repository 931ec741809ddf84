// The `/status` document: the poller's snapshot joined into what an operator
// reads (per service, every server with its weight, share, state, reason and
// its agent's load), plus health, policy reloads and the recent weight
// changes. Pure, so `loadfeed top`, the dashboard and the tests all read the
// same shape. `version` changes when a field changes meaning or goes away.
import { formatProblem } from '../errors.js';
import type { WeightChangeEvent } from '../cycle/observer.js';
import type { PollerSnapshot, XdsStatus } from './snapshot.js';
import { appMetricValue } from '../policy/app-metrics-used.js';
import { METRICS, metricGroups, type MetricGroup, type MetricReadings } from '@loadfeed/proto';

export const STATUS_VERSION = 1;

export type NodeStatus = PollerSnapshot['nodes'][number];

export interface ServerStatus {
  /** Destination address in the engine, e.g. `10.0.0.21:8080`. */
  readonly address: string;
  /** Node id of the agent reporting for it, when one is connected. */
  readonly node: string | null;
  /** Policy state of the server: live, blackout, slow-start, guarded, drained, stale, held, absent, fallback. */
  readonly state: string;
  readonly weight: number;
  /** Fraction of the service's total weight, 0..1 (0 when every weight is 0). */
  readonly share: number;
  readonly score: number | null;
  /** Why this weight, e.g. "cpu 0.5 of 4 cores; slow start 40%". */
  readonly reason: string;
  /** The agent's liveness (live, stale), or null without an agent. */
  readonly nodeState: string | null;
  readonly cores: number | null;
  /** Every catalogued metric of its agent's latest sample, by field name as in `nodes[]`; null where unknown. */
  readonly metrics: MetricReadings;
  // The catalog's `serverStatus` fields, as /status had them before `metrics`
  // (the same values): CPU busy as a fraction of the scope's capacity (may
  // exceed 1 in process scope), memory, PSI `some avg10` fractions (null
  // where the scope has none), the host's 1-minute load average.
  readonly cpu: number | null;
  readonly memory: number | null;
  readonly psi: { readonly cpu: number | null; readonly memory: number | null; readonly io: number | null };
  readonly load1: number | null;
  /** Established connections the agent counts on this service's port. */
  readonly connections: number | null;
  readonly sampleAgeMs: number | null;
  /** The application metrics the service's policy reads (app_util, rps, eps, app.NAME), null while not reported. */
  readonly app: Readonly<Record<string, number | null>>;
}

export interface ServiceStatus {
  readonly name: string;
  readonly engine: string;
  readonly address: string;
  readonly totalWeight: number;
  /** Names of the application metrics its policy reads, in the order servers' `app` lists them. */
  readonly appMetrics: readonly string[];
  readonly servers: readonly ServerStatus[];
}

export interface HealthStatus {
  readonly status: 'ok' | 'degraded';
  /** Why degraded, one line each; empty when ok. */
  readonly reasons: readonly string[];
}

export interface StatusDocument {
  readonly version: typeof STATUS_VERSION;
  /** Wall-clock ms when the document was made. */
  readonly generatedAt: number;
  readonly poller: { readonly version: string; readonly pid: number; readonly startedAt: number };
  readonly health: HealthStatus;
  readonly policy: {
    readonly file: string;
    readonly loadedAt: string;
    /** Problems of the newest file when it was refused (`file:line: path: message`); empty otherwise. */
    readonly refused: readonly string[];
    readonly reloads: { readonly ok: number; readonly refused: number };
  };
  readonly engineError: string | null;
  readonly cycleError: string | null;
  readonly cycleFailures: number;
  readonly ingest: PollerSnapshot['ingest'];
  /** Drift found in engines since start: weights changed outside loadfeed, services an engine lost. */
  readonly driftEvents: number;
  readonly nodes: readonly NodeStatus[];
  readonly services: readonly ServiceStatus[];
  /** Recent weight changes, oldest first. */
  readonly changes: readonly WeightChangeEvent[];
  /** The xDS server and its clients; null unless the xds engine runs. */
  readonly xds: XdsStatus | null;
  /** How to show the metrics of `nodes[]` and `servers[].metrics` (the catalog's display groups), so clients need no list of their own. */
  readonly metricCatalog: readonly MetricGroup[];
}

export interface StatusExtras {
  readonly now: number;
  readonly poller: StatusDocument['poller'];
  readonly reloads: { readonly ok: number; readonly refused: number };
  readonly changes: readonly WeightChangeEvent[];
}

export function healthOf(snapshot: Pick<PollerSnapshot, 'policy' | 'engineError' | 'cycleError'>): HealthStatus {
  const reasons: string[] = [];
  const refused = snapshot.policy.refused;
  const first = refused[0];
  if (first !== undefined) {
    const more = refused.length > 1 ? ` (and ${refused.length - 1} more)` : '';
    reasons.push(`policy ${snapshot.policy.file} refused: ${formatProblem(first)}${more}; the last good policy stays in force`);
  }
  if (snapshot.engineError !== null) reasons.push(`engine failing: ${snapshot.engineError}`);
  if (snapshot.cycleError !== null) reasons.push(`policy cycle failing: ${snapshot.cycleError}; the engines keep their last weights`);
  return { status: reasons.length > 0 ? 'degraded' : 'ok', reasons };
}

export function buildStatus(snapshot: PollerSnapshot, extras: StatusExtras): StatusDocument {
  const nodes = new Map(snapshot.nodes.map((n) => [n.id, n]));
  return {
    version: STATUS_VERSION,
    generatedAt: extras.now,
    poller: extras.poller,
    health: healthOf(snapshot),
    policy: {
      file: snapshot.policy.file,
      loadedAt: snapshot.policy.loadedAt,
      refused: snapshot.policy.refused.map(formatProblem),
      reloads: extras.reloads,
    },
    engineError: snapshot.engineError,
    cycleError: snapshot.cycleError,
    cycleFailures: snapshot.cycleFailures,
    ingest: snapshot.ingest,
    driftEvents: snapshot.driftEvents,
    xds: snapshot.xds,
    metricCatalog: metricGroups(),
    nodes: snapshot.nodes,
    services: snapshot.services.map((s) => {
      const total = s.decisions.reduce((a, d) => a + d.weight, 0);
      return {
        name: s.name,
        engine: s.engine,
        address: s.address,
        totalWeight: total,
        appMetrics: s.appMetrics,
        servers: s.decisions.map((d): ServerStatus => {
          const n = d.node === null ? undefined : nodes.get(d.node);
          const metrics = readingsOf(n);
          return {
            address: d.address,
            node: d.node,
            state: d.state,
            weight: d.weight,
            share: total > 0 ? d.weight / total : 0,
            score: d.score,
            reason: d.reason,
            nodeState: n?.state ?? null,
            cores: n?.cores ?? null,
            metrics,
            ...serverStatusFields(metrics),
            connections: n ? serviceConnections(n, s.name, d.address) : null,
            sampleAgeMs: n?.sampleAgeMs ?? null,
            app: Object.fromEntries(s.appMetrics.map((name) => [name, n ? appMetricValue(n, name) : null])),
          };
        }),
      };
    }),
    changes: extras.changes,
  };
}

function readingsOf(node: NodeStatus | undefined): MetricReadings {
  const out: Record<string, number | null> = {};
  for (const m of METRICS) out[m.field] = node?.[m.field] ?? null;
  return out as MetricReadings;
}

type ServerStatusFields = Pick<ServerStatus, 'cpu' | 'memory' | 'psi' | 'load1'>;

/** The per-server fields older /status readers know, placed where each catalog entry's `serverStatus` says. */
function serverStatusFields(metrics: MetricReadings): ServerStatusFields {
  const out: Record<string, unknown> = {};
  for (const m of METRICS) {
    if (m.serverStatus === null) continue;
    const [head, leaf] = m.serverStatus.split('.') as [string, string | undefined];
    if (leaf === undefined) out[head] = metrics[m.field];
    else out[head] = { ...(out[head] as object | undefined), [leaf]: metrics[m.field] };
  }
  return out as unknown as ServerStatusFields;
}

/**
 * The agent's established count for this service: the announced service of
 * the same name, else the one on the destination's port, else its only one.
 */
export function serviceConnections(node: NodeStatus, service: string, destination: string): number | null {
  const port = Number(/:(\d+)$/.exec(destination)?.[1]);
  const match =
    node.services.find((s) => s.name === service) ??
    node.services.find((s) => s.port === port) ??
    (node.services.length === 1 ? node.services[0] : undefined);
  return match?.established ?? null;
}
