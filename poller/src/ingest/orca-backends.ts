// Agentless gRPC backends: a policy server entry with `orca: HOST:PORT` is
// read by the poller itself through the backend's ORCA out-of-band stream
// (xds.service.orca.v3.OpenRcaService/StreamCoreMetrics), over plaintext or
// the `--orca-tls-*` channel, as node `orca:HOST:PORT`. The liveness rules are an agent's: the stream's first
// report connects the node, every report is a sample (checked like an
// agent's), the stream ending disconnects it at once (quiesce), and a stream
// that stays open but stops reporting goes stale after `liveness.staleAfter`
// through the node table's own sweep. A gRPC fleet that serves ORCA needs no
// agent; it reports no capacity, so it counts as one core, and its CPU and
// memory are the ORCA report's.
import { Hello, MAX_NAMED_METRICS, orcaEndReason, orcaReportValues, OrcaSubscription, PLAINTEXT_CHANNEL, Sample, Scope, type ClientChannel, type OrcaLoadReport } from '@loadfeed/proto';
import { parseHostPort } from '@loadfeed/kernel-bridge';
import { IngestError } from '../errors.js';
import { checkSample } from './ingest.js';
import type { NodeRecord, NodeTable } from '../cycle/node-table.js';
import type { CompiledPolicy } from '../policy/compile.js';
import type { TraceRecord } from './trace.js';

/** Ask for reports no faster than this: other gRPC servers refuse shorter intervals (grpc-go's minimum is 30 s unless configured). */
export const MIN_ORCA_REPORT_MS = 100;

/** An ORCA backend announces no services: its samples carry none. */
const NO_SERVICES: ReadonlySet<string> = new Set();

export interface OrcaBackendsOptions {
  readonly table: NodeTable;
  /** Report interval to ask for, ms (the policy's agents.interval). */
  intervalMs(): number;
  /** A report that fails the sample checks, counted (and logged) with the agents' refusals. */
  refused(err: IngestError, event: Record<string, unknown>): void;
  /** Plaintext, or TLS with the operator's CA (and client certificate). */
  readonly channel: ClientChannel;
  readonly record?: (event: TraceRecord) => void;
  readonly log: (event: Record<string, unknown>, msg: string) => void;
}

export class OrcaBackends {
  private readonly backends = new Map<string, OrcaBackend>();

  constructor(private readonly options: OrcaBackendsOptions) {}

  /** Subscribe to every ORCA endpoint the policy names, and only those. */
  sync(policy: CompiledPolicy): void {
    const wanted = new Map<string, string>();
    for (const s of policy.services) for (const m of s.servers) if (m.by === 'orca') wanted.set(m.target, m.node);
    for (const [target, b] of this.backends) {
      if (!wanted.has(target)) {
        b.close();
        this.backends.delete(target);
      }
    }
    for (const [target, node] of wanted) {
      if (this.backends.has(target)) continue;
      const b = new OrcaBackend(target, node, this.options);
      this.backends.set(target, b);
      b.start();
    }
  }

  close(): void {
    for (const b of this.backends.values()) b.close();
    this.backends.clear();
  }
}

class OrcaBackend {
  private readonly subscription: OrcaSubscription;
  private readonly hello: Hello;
  private node: NodeRecord | null = null;
  private seq = 0;
  private lastAt = 0;

  constructor(
    readonly target: string,
    readonly nodeId: string,
    private readonly options: OrcaBackendsOptions,
  ) {
    const host = parseHostPort(target).host;
    this.hello = Hello.create({ nodeId, hostname: host, addresses: [host], cores: 1, memoryBytes: 1, scope: Scope.SCOPE_PROCESS, agentVersion: 'orca' });
    this.subscription = new OrcaSubscription(target, () => this.intervalMs(), {
      onReport: (report) => this.onReport(report),
      onEnd: (s, retryMs) => {
        this.end();
        options.log({ node: nodeId, orca: target, reason: orcaEndReason(s, options.channel !== PLAINTEXT_CHANNEL), retryMs }, 'orca stream ended');
      },
    }, options.channel);
  }

  start(): void {
    this.subscription.start();
  }

  close(): void {
    this.subscription.close();
    this.end();
  }

  private intervalMs(): number {
    return Math.max(MIN_ORCA_REPORT_MS, this.options.intervalMs());
  }

  private onReport(report: OrcaLoadReport): void {
    const now = Date.now();
    if (this.node === null) {
      this.node = this.options.table.connect(this.hello);
      this.seq = 0;
      this.lastAt = now - this.intervalMs();
      this.options.record?.({ type: 'hello', node: this.nodeId, hello: this.hello });
      this.options.log({ node: this.nodeId, orca: this.target }, 'orca backend connected');
    }
    let sample: Sample;
    try {
      sample = checkSample(orcaSample(report, this.seq + 1, now, Math.max(1, now - this.lastAt)), NO_SERVICES, this.seq, Infinity);
    } catch (err) {
      if (!(err instanceof IngestError)) throw err;
      this.options.refused(err, { node: this.nodeId, orca: this.target });
      return;
    }
    this.seq = sample.seq;
    this.lastAt = now;
    this.options.table.accept(this.node, sample);
    this.options.record?.({ type: 'sample', node: this.nodeId, sample });
  }

  private end(): void {
    if (this.node === null) return;
    this.options.table.disconnect(this.node);
    this.options.record?.({ type: 'end', node: this.nodeId });
    this.node = null;
  }
}

/** An ORCA report as the sample an agent would send: its CPU and memory are the report's, the rest application metrics. */
export function orcaSample(report: OrcaLoadReport, seq: number, timestampMs: number, windowMs: number): Sample {
  const { values } = orcaReportValues(report);
  const take = (name: string): number | null => {
    const v = values.get(name);
    values.delete(name);
    return v ?? null;
  };
  const cpu = take('orca_cpu_utilization');
  const mem = take('orca_mem_utilization');
  const applicationUtilization = take('application_utilization');
  const rpsFractional = take('rps');
  const eps = take('eps');
  const named = [...values].sort(([a], [b]) => (a < b ? -1 : 1)).slice(0, MAX_NAMED_METRICS);
  return Sample.create({
    seq,
    timestampMs,
    windowMs: Math.round(windowMs),
    cpuUtilization: cpu ?? 0,
    memUtilization: mem ?? 0,
    applicationUtilization,
    rpsFractional,
    eps,
    namedMetrics: Object.fromEntries(named),
  });
}
