// `--orca HOST:PORT`: the application's ORCA out-of-band load reports
// (xds.service.orca.v3.OpenRcaService/StreamCoreMetrics), through grpc-js's
// own ORCA client. One stream, reopened with backoff when it ends; its values
// are dropped the moment it ends and expire when reports stop coming.
import { orcaEndReason, orcaReportValues, OrcaSubscription, PLAINTEXT_CHANNEL, type ClientChannel, type OrcaLoadReport } from '@loadfeed/proto';
import { HeldValues, SourceState, type AppSource, type AppSourceStatus } from './source.js';

/**
 * Shortest report interval asked of the server. The agent asks for one report
 * per watch window (a quarter interval with early reports on), so a move of
 * the application's load reaches the early-report gate within a window;
 * gRPC servers in other languages take nothing below their own minimum (30 s
 * by default in grpc-go and grpc-java) and send at that minimum instead.
 */
export const MIN_ORCA_INTERVAL_MS = 250;

export class OrcaSource implements AppSource {
  readonly kind = 'orca';
  private readonly st = new SourceState();
  private readonly held = new HeldValues(this.st);
  private readonly subscription: OrcaSubscription;
  private lastAt: number | null = null;

  /** `intervalMs` (the watch window) is read at each (re)connect; values expire `ttlMs` after a report, or after two report gaps if the server reports less often. */
  constructor(
    readonly target: string,
    intervalMs: () => number,
    private readonly ttlMs: number,
    channel: ClientChannel = PLAINTEXT_CHANNEL,
  ) {
    this.subscription = new OrcaSubscription(target, () => Math.max(MIN_ORCA_INTERVAL_MS, intervalMs()), {
      onReport: (report) => this.onReport(report),
      onEnd: (s, retryMs) => {
        this.held.drop(); // the stream is the report's liveness: no stream, no values
        this.lastAt = null;
        this.st.set('failing', `${orcaEndReason(s, channel !== PLAINTEXT_CHANNEL)}; retrying in ${retryMs} ms`);
      },
    }, channel);
  }

  start(): void {
    this.subscription.start();
  }

  collect(now: number, into: Map<string, number>): void {
    this.held.collect(now, into);
  }

  status(now: number): AppSourceStatus {
    return this.st.report(this.kind, this.target, this.held.names(now));
  }

  close(): void {
    this.subscription.close();
  }

  private onReport(report: OrcaLoadReport): void {
    const now = Date.now();
    const { values, refused } = orcaReportValues(report);
    const gap = this.lastAt === null ? 0 : now - this.lastAt;
    this.lastAt = now;
    this.held.hold(values, now, Math.max(this.ttlMs, 2 * gap));
    this.st.updates += 1;
    this.st.refused += refused;
    if (this.st.state !== 'ok') this.st.set('ok', '');
  }
}
