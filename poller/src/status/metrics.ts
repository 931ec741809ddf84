// Prometheus metrics of the poller (prom-client, one registry per status
// server, never the global one). Gauges that describe nodes and servers are
// rebuilt from the status document at every scrape, so departed nodes lose
// their series at once; beyond `maxNodes` nodes (and as many servers) the
// per-node series are left out and counted in loadfeed_metrics_series_omitted
// (50k series render in ~100 ms on a small VM).
// Counters and histograms are fed by the poller's observer hooks.
import { METRICS } from '@loadfeed/proto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PollerObserver, WeightChangeEvent } from '../cycle/observer.js';
import type { StatusDocument } from './document.js';

/** Nodes (and servers) with their own series; about 10 series each. */
export const METRICS_MAX_NODES = 2_000;
/** Distinct rejection reasons with their own series; the rest count as "other". */
export const METRICS_MAX_REASONS = 50;

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class StatusMetrics implements PollerObserver {
  readonly registry = new Registry();
  private readonly g;
  /** One gauge per catalogued metric's Prometheus name (PSI's three share one, told apart by label). */
  private readonly sampleGauges = new Map<string, Gauge>();
  private readonly ingestToWeight;
  private readonly applySeconds;
  private readonly applyFailures;
  private readonly weightChanges;
  private readonly reloads;
  private readonly accepted;
  private readonly rejected;
  private readonly drift;
  private readonly cycleFailures;
  private readonly xdsNacks;
  private readonly xdsResponses;

  constructor(private readonly maxNodes = METRICS_MAX_NODES) {
    const registers = [this.registry];
    const gauge = (name: string, help: string, labelNames: string[] = []): Gauge => new Gauge({ name, help, labelNames, registers });
    this.g = {
      up: gauge('loadfeed_node_up', '1 while the node\'s agent streams samples (live), 0 while it is silent (stale); gone nodes have no series', ['node']),
      cores: gauge('loadfeed_node_cores', 'CPU capacity of the agent\'s scope, cores', ['node']),
      age: gauge('loadfeed_node_sample_age_seconds', 'age of the node\'s latest sample', ['node']),
      weight: gauge('loadfeed_server_weight', 'weight the policy gave the server (written to the engine)', ['service', 'server', 'node']),
      connections: gauge('loadfeed_server_connections', 'established connections the server\'s agent counts on the service port', ['service', 'server']),
      app: gauge(
        'loadfeed_server_app_metric',
        'application metrics the service\'s policy reads (metric: app_util, rps, eps or app.NAME), as the server last reported them; absent while it does not',
        ['service', 'server', 'metric'],
      ),
      state: gauge('loadfeed_server_state', '1 for the server\'s current policy state', ['service', 'server', 'state']),
      nodes: gauge('loadfeed_nodes', 'nodes in the node table by liveness', ['state']),
      omitted: gauge('loadfeed_metrics_series_omitted', `nodes or servers without their own series (more than ${maxNodes})`, ['kind']),
      degraded: gauge('loadfeed_degraded', '1 while the poller is degraded (policy refused, engine or policy cycle failing), else 0'),
      pending: gauge('loadfeed_agent_connections_pending', 'agent connections without an accepted Hello (bounded by --max-pending-connections)'),
      refused: gauge('loadfeed_policy_refused', '1 while the newest policy file is refused (the last good one stays in force)'),
      xdsClients: gauge('loadfeed_xds_clients', 'xDS clients connected (ADS streams)'),
      xdsVersion: gauge('loadfeed_xds_version', 'last xDS publication served (one per cycle that changed what is served)'),
      xdsAcked: gauge('loadfeed_xds_client_acked_version', 'the version each xDS client ACKed last, by node id and resource type', ['node', 'type']),
      xdsClientNacks: gauge('loadfeed_xds_client_nacks', 'NACKs from each connected xDS client on its current stream, by resource type', ['node', 'type']),
    };
    for (const m of METRICS) {
      if (m.prometheus === null || this.sampleGauges.has(m.prometheus.name)) continue;
      const labels = 'labels' in m.prometheus ? Object.keys(m.prometheus.labels) : [];
      this.sampleGauges.set(m.prometheus.name, gauge(m.prometheus.name, m.prometheus.help, ['node', ...labels]));
    }
    this.accepted = new Counter({ name: 'loadfeed_samples_accepted_total', help: 'agent samples accepted', registers });
    this.rejected = new Counter({
      name: 'loadfeed_samples_rejected_total',
      help: 'agent messages, streams and connections refused, by reason: the field or check that failed (the stream ends with a gRPC status), or the limit hit (oversize, truncated, pending-connections, pending-per-peer, hello-timeout, streams-per-connection)',
      labelNames: ['reason'],
      registers,
    });
    this.xdsNacks = new Counter({ name: 'loadfeed_xds_nacks_total', help: 'xDS responses clients rejected (NACK); they keep their last good config', registers });
    this.xdsResponses = new Counter({ name: 'loadfeed_xds_responses_total', help: 'xDS responses sent', registers });
    this.drift = new Counter({
      name: 'loadfeed_engine_drift_events_total',
      help: 'drift found in engines: weights changed outside loadfeed, services an engine lost',
      registers,
    });
    this.cycleFailures = new Counter({
      name: 'loadfeed_cycle_failures_total',
      help: 'policy cycles that failed (nothing written: the engines keep their last weights; /healthz degraded until one succeeds)',
      registers,
    });
    this.ingestToWeight = new Histogram({
      name: 'loadfeed_ingest_to_weight_seconds',
      help: 'from an accepted sample (or liveness change) to the engines holding the weights computed from it',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.applySeconds = new Histogram({
      name: 'loadfeed_engine_apply_seconds',
      help: 'duration of one batch of engine operations',
      labelNames: ['engine'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.applyFailures = new Counter({ name: 'loadfeed_engine_apply_failures_total', help: 'engine batches that failed', labelNames: ['engine'], registers });
    this.weightChanges = new Counter({ name: 'loadfeed_weight_changes_total', help: 'weights changed, by service', labelNames: ['service'], registers });
    this.reloads = new Counter({
      name: 'loadfeed_policy_reloads_total',
      help: 'policy file reloads by result: ok (in force) or refused (the last good policy stays)',
      labelNames: ['result'],
      registers,
    });
    this.reloads.inc({ result: 'ok' }, 0);
    this.reloads.inc({ result: 'refused' }, 0);
    collectDefaultMetrics({ register: this.registry });
  }

  weightChanged(change: WeightChangeEvent): void {
    this.weightChanges.inc({ service: change.service });
  }

  weightsApplied(ms: number): void {
    this.ingestToWeight.observe(ms / 1000);
  }

  engineApplied(engine: string, _ops: number, ms: number, ok: boolean): void {
    this.applySeconds.observe({ engine }, ms / 1000);
    if (!ok) this.applyFailures.inc({ engine });
  }

  policyReloaded(ok: boolean): void {
    this.reloads.inc({ result: ok ? 'ok' : 'refused' });
  }

  /** The exposition text for `doc` (content type: `registry.contentType`). */
  async render(doc: StatusDocument): Promise<string> {
    this.refresh(doc);
    return this.registry.metrics();
  }

  private refresh(doc: StatusDocument): void {
    const g = this.g;
    for (const gauge of [...Object.values(g), ...this.sampleGauges.values()]) gauge.reset();
    const byState = new Map<string, number>([['live', 0], ['stale', 0]]);
    const nodes = [...doc.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const n of nodes) byState.set(n.state, (byState.get(n.state) ?? 0) + 1);
    for (const [state, count] of byState) g.nodes.set({ state }, count);
    for (const n of nodes.slice(0, this.maxNodes)) {
      const node = n.id;
      g.up.set({ node }, n.state === 'live' ? 1 : 0);
      g.cores.set({ node }, n.cores);
      for (const m of METRICS) {
        const v = n[m.field];
        if (m.prometheus === null || v === null) continue;
        this.sampleGauges.get(m.prometheus.name)?.set({ node, ...('labels' in m.prometheus ? m.prometheus.labels : {}) }, v);
      }
      if (n.sampleAgeMs !== null) g.age.set({ node }, n.sampleAgeMs / 1000);
    }
    let servers = 0;
    let serversOmitted = 0;
    for (const service of doc.services) {
      for (const s of service.servers) {
        if (servers >= this.maxNodes) {
          serversOmitted += 1;
          continue;
        }
        servers += 1;
        g.weight.set({ service: service.name, server: s.address, node: s.node ?? '' }, s.weight);
        g.state.set({ service: service.name, server: s.address, state: s.state }, 1);
        if (s.connections !== null) g.connections.set({ service: service.name, server: s.address }, s.connections);
        for (const [metric, v] of Object.entries(s.app)) if (v !== null) g.app.set({ service: service.name, server: s.address, metric }, v);
      }
    }
    g.omitted.set({ kind: 'node' }, Math.max(0, nodes.length - this.maxNodes));
    g.omitted.set({ kind: 'server' }, serversOmitted);
    g.degraded.set(doc.health.status === 'degraded' ? 1 : 0);
    g.refused.set(doc.policy.refused.length > 0 ? 1 : 0);
    g.pending.set(doc.ingest.pendingConnections);

    if (doc.xds !== null) {
      g.xdsClients.set(doc.xds.clients.length);
      g.xdsVersion.set(doc.xds.version);
      for (const client of doc.xds.clients.slice(0, this.maxNodes)) {
        for (const t of client.types) {
          const labels = { node: client.node, type: t.typeUrl.slice(t.typeUrl.lastIndexOf('.') + 1) };
          if (t.ackedVersion !== null && /^\d+$/.test(t.ackedVersion)) g.xdsAcked.set(labels, Number(t.ackedVersion));
          g.xdsClientNacks.set(labels, t.nacks);
        }
      }
      this.xdsNacks.reset();
      this.xdsNacks.inc(doc.xds.nacks);
      this.xdsResponses.reset();
      this.xdsResponses.inc(doc.xds.responses);
    }

    // Ingest counts live in the poller; mirror them (they only grow).
    this.accepted.reset();
    this.accepted.inc(doc.ingest.accepted);
    this.drift.reset();
    this.drift.inc(doc.driftEvents);
    this.cycleFailures.reset();
    this.cycleFailures.inc(doc.cycleFailures);
    this.rejected.reset();
    const reasons = Object.entries(doc.ingest.rejected).sort((a, b) => b[1] - a[1]);
    for (const [i, [reason, count]] of reasons.entries()) {
      this.rejected.inc({ reason: i < METRICS_MAX_REASONS ? reason : 'other' }, count);
    }
  }
}
