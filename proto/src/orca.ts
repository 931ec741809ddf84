// The client side of ORCA's out-of-band load reports
// (xds.service.orca.v3.OpenRcaService/StreamCoreMetrics), as grpc-js ships
// it. grpc-js exports only the server side (ServerMetricRecorder) from its
// entry point; its client factory and report type live in build/src/orca, a
// module without an exports map, so this is the one file that reaches there.
// It lives in this package because this package owns the grpc-js copy every
// other loadfeed package uses.
import * as grpc from '@grpc/grpc-js';
import { createOrcaClient } from '@grpc/grpc-js/build/src/orca.js';
import type { OrcaLoadReport__Output } from '@grpc/grpc-js/build/src/generated/xds/data/orca/v3/OrcaLoadReport.js';
import { toAppMetricName } from './metrics.js';
import { Backoff } from './backoff.js';
import { PLAINTEXT_CHANNEL, type ClientChannel } from './tls.js';

export const ORCA_STREAM_PATH = '/xds.service.orca.v3.OpenRcaService/StreamCoreMetrics';

/**
 * Node ids starting with this (in any case) are the poller's agentless ORCA
 * backends (`orca:HOST:PORT`); no agent may claim one, or it could stand in
 * for such a backend.
 */
export const ORCA_NODE_PREFIX = 'orca:';

export function isOrcaNodeId(nodeId: string): boolean {
  return nodeId.slice(0, ORCA_NODE_PREFIX.length).toLowerCase() === ORCA_NODE_PREFIX;
}

/** One report as grpc-js decodes it: unset doubles are 0, unset maps empty, the deprecated `rps` a decimal string. */
export type OrcaLoadReport = OrcaLoadReport__Output;

export interface OrcaClient {
  /** Opens one report stream; the server sends a report every `intervalMs` (servers may enforce a longer minimum). */
  stream(intervalMs: number): grpc.ClientReadableStream<OrcaLoadReport>;
  close(): void;
}

export interface OrcaSubscriptionEvents {
  onReport(report: OrcaLoadReport): void;
  /** The stream ended (the server went away, refused, or does not serve ORCA); it is reopened after `retryMs`. */
  onEnd(status: grpc.StatusObject, retryMs: number): void;
}

/** Keepalive of an ORCA stream: a server gone without a FIN is noticed within 15 s. */
const ORCA_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
};

/**
 * One ORCA report stream to `target` over `channel` (plaintext or TLS), kept
 * open: reopened with jittered backoff whenever it ends, the backoff reset by
 * the first report of each stream. `intervalMs` is read at each (re)open.
 */
export class OrcaSubscription {
  private readonly client: OrcaClient;
  private readonly backoff = new Backoff();
  private call: grpc.ClientReadableStream<OrcaLoadReport> | null = null;
  private retry: NodeJS.Timeout | null = null;
  private reported = false;
  private closed = false;

  constructor(
    readonly target: string,
    private readonly intervalMs: () => number,
    private readonly events: OrcaSubscriptionEvents,
    channel: ClientChannel = PLAINTEXT_CHANNEL,
  ) {
    this.client = createOrcaStreamClient(target, channel.credentials, { ...ORCA_CHANNEL_OPTIONS, ...channel.options });
  }

  start(): void {
    if (this.closed) return;
    const call = this.client.stream(this.intervalMs());
    this.call = call;
    this.reported = false;
    call.on('data', (report: OrcaLoadReport) => {
      if (call !== this.call) return;
      if (!this.reported) this.backoff.reset();
      this.reported = true;
      this.events.onReport(report);
    });
    // 'status' comes exactly once per call, after 'end' or 'error'.
    call.on('status', (status: grpc.StatusObject) => {
      if (call !== this.call || this.closed) return;
      this.call = null;
      const delay = this.backoff.next();
      this.retry = setTimeout(() => {
        this.retry = null;
        this.start();
      }, delay);
      this.events.onEnd(status, delay);
    });
    call.on('error', () => undefined);
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.call?.cancel();
    this.call = null;
    this.client.close();
  }
}

export function createOrcaStreamClient(target: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}): OrcaClient {
  const client = createOrcaClient(new grpc.Channel(target, credentials, options));
  return {
    stream: (intervalMs) =>
      client.streamCoreMetrics({
        report_interval: { seconds: Math.floor(intervalMs / 1000), nanos: (intervalMs % 1000) * 1e6 },
      }),
    close: () => client.close(),
  };
}

/**
 * Why an ORCA stream ended, for an operator: grpc-js reports a failed TLS
 * handshake as UNAVAILABLE with the socket's last error buried in its
 * details; this names the likely fix. `tls` says whether the channel was TLS.
 */
export function orcaEndReason(s: grpc.StatusObject, tls: boolean): string {
  const code = grpc.status[s.code] ?? String(s.code);
  if (s.code === grpc.status.UNIMPLEMENTED) return `${code}: the server does not serve ORCA (OpenRcaService)`;
  const last = /Last error: (?:Error(?: \[\w+\])?: )?(.*?)(?:\s*\(\d{4}-\d\d-\d\dT[^)]*\))?\.?\s*Resolution note:/s.exec(s.details)?.[1]?.trim() ?? s.details;
  const tlsFault = (why: string): string => `${code}: TLS: ${why} (${last.replace(/\s+/g, ' ').slice(0, 200)})`;
  if (/unable to verify|self[- ]signed|unable to get (local )?issuer|certificate has expired|not yet valid|CERT_UNTRUSTED|UNABLE_TO_VERIFY/i.test(last)) {
    return tlsFault('the server\'s certificate is not signed by the CA given (--orca-tls-ca) or is not valid now');
  }
  if (/ALTNAME_INVALID|does not match certificate/i.test(last)) {
    return tlsFault('the server\'s certificate does not name the host dialled: give the name it has (--orca-tls-server-name)');
  }
  if (/alert (certificate required|bad certificate|unknown ca|certificate unknown|handshake failure)/i.test(last)) {
    return tlsFault('the server refused the handshake: it wants a client certificate its CA signed (--orca-tls-cert, --orca-tls-key)');
  }
  if (tls && /wrong version number|packet length too long|unknown protocol/i.test(last)) return tlsFault('the server does not speak TLS on this port');
  return `${code}: ${s.details}`;
}

/**
 * Every field of a report as application metric names. ORCA leaves unset
 * doubles at 0, and A58 reads a 0 utilisation as "not reported": so do we for
 * the utilisations; rps and eps of 0 are an idle server and stay. Keys of its
 * maps are mapped into the contract's alphabet (a key that cannot be is
 * counted in `refused`); request_cost is per request and has no meaning in
 * an out-of-band report.
 */
export function orcaReportValues(r: OrcaLoadReport): { values: Map<string, number>; refused: number } {
  const values = new Map<string, number>();
  let refused = 0;
  const put = (raw: string, v: number, prefix = ''): void => {
    const name = toAppMetricName(prefix + raw);
    if (name === null || !Number.isFinite(v)) refused += 1;
    else values.set(name, v);
  };
  for (const [k, v] of Object.entries(r.named_metrics)) put(k, v);
  for (const [k, v] of Object.entries(r.utilization)) put(k, v, 'utilization_');
  if (r.cpu_utilization > 0) values.set('orca_cpu_utilization', r.cpu_utilization);
  if (r.mem_utilization > 0) values.set('orca_mem_utilization', r.mem_utilization);
  if (r.application_utilization > 0) values.set('application_utilization', r.application_utilization);
  // rps (integer) is deprecated in favour of rps_fractional; older servers send only it.
  const legacyRps = Number(r.rps);
  values.set('rps', r.rps_fractional === 0 && legacyRps > 0 ? legacyRps : r.rps_fractional);
  values.set('eps', r.eps);
  return { values, refused };
}
