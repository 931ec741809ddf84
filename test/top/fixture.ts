// Status documents for `loadfeed top` tests, built the way the poller
// builds them (buildStatus over a snapshot), so the shape cannot drift.
import { buildStatus, type NodeStatus, type StatusDocument } from '@loadfeed/poller';
import type { PollerSnapshot } from '@loadfeed/poller';
import { metricReadings } from '@loadfeed/proto';

export const AT = Date.UTC(2026, 10, 25, 12, 0, 1);

export function node(id: string, cpu: number | null, extra: Partial<NodeStatus> = {}): NodeStatus {
  return {
    ...metricReadings(null),
    id,
    state: 'live',
    cores: 4,
    cpuUtilization: cpu,
    samples: 10,
    hostname: `${id}.example`,
    addresses: ['10.0.0.1'],
    memoryBytes: 16 * 2 ** 30,
    agentVersion: '0.1.0',
    drained: null,
    sampleAgeMs: 300,
    memUtilization: 0.4,
    psiCpuSome: 0.02,
    psiMemorySome: 0,
    psiIoSome: 0.05,
    load1: 1.5,
    tcpEstablished: 100,
    services: [{ name: 'http', port: 80, established: 12 }],
    namedMetrics: {},
    ...extra,
  };
}

type Decision = PollerSnapshot['services'][number]['decisions'][number];

export function decision(node: string | null, address: string, weight: number, state = 'live', reason = 'cpu 0.5 of 4 cores'): Decision {
  return { node, address, weight, score: weight / 100, state: state as Decision['state'], reason, maxConnections: null };
}

export function doc(options: { nodes: NodeStatus[]; decisions: Decision[]; refused?: boolean; engineError?: string | null; appMetrics?: string[] }): StatusDocument {
  const snapshot: PollerSnapshot = {
    health: 'ok',
    policy: {
      file: 'web.yaml',
      loadedAt: new Date(AT - 60_000).toISOString(),
      refused: options.refused ? [{ file: 'web.yaml', line: 7, path: 'services[0].weights.min', message: '120 must be <= weights.max (100)' }] : [],
    },
    nodes: options.nodes,
    services: [{ name: 'web', engine: 'fastpath', address: 'tcp 10.0.0.100:80', appMetrics: options.appMetrics ?? [], decisions: options.decisions }],
    engineError: options.engineError ?? null,
    cycleError: null,
    cycleFailures: 0,
    ingest: { accepted: 100, rejected: {}, pendingConnections: 0 },
    driftEvents: 0,
    xds: null,
  };
  return buildStatus(snapshot, { now: AT, poller: { version: '0.1.0', pid: 1, startedAt: AT - 3_600_000 }, reloads: { ok: 0, refused: 0 }, changes: [] });
}

/** Three servers: web-1 busy, web-2 idle, web-3 without an agent. */
export function cluster(): StatusDocument {
  return doc({
    nodes: [node('web-1', 0.9, { tcpEstablished: 300 }), node('web-2', 0.1, { memUtilization: 0.05, psiIoSome: 0.3 })],
    decisions: [
      decision('web-1', '10.0.0.1:80', 20, 'live', 'cpu 3.6 of 4 cores'),
      decision('web-2', '10.0.0.2:80', 100, 'slow-start', 'cpu 0.4 of 4 cores; slow start 80%'),
      decision('web-3', '10.0.0.3:80', 0, 'absent', 'no agent connected'),
    ],
  });
}
