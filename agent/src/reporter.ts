// One long-lived Telemetry.Report stream to one poller. It reconnects by
// itself with jittered exponential backoff and never queues samples: a weight
// is only as good as the newest sample, so while a stream is down (or its
// HTTP/2 window is full) samples for it are dropped, and memory stays bounded
// however long the poller is away.
import {
  Backoff,
  createTelemetryClient,
  grpc,
  metricValues,
  type AgentMessage,
  type HelloInit,
  type PollerMessage,
  type TelemetryClient,
} from '@loadfeed/proto';
import type { Transport } from './transport.js';
import type { Reading } from './reading.js';

/**
 * Ping the poller this often, so a director that vanished without closing
 * the connection is noticed (samples alone would queue in TCP for minutes).
 * Every ping costs the poller about as much as a sample (at 10,000 agents,
 * 10 s was 2 % of its core); an agent losing its director to a crash has
 * nowhere better to go sooner, and a director that restarts or fails over
 * resets the connection, which the agent sees at once.
 */
export const KEEPALIVE_TIME_MS = 30_000;
export const KEEPALIVE_TIMEOUT_MS = 5_000;

export type StreamState = 'connecting' | 'connected' | 'waiting';

export interface ReporterEvents {
  /** The poller asked for another sampling interval. */
  onInterval(intervalMs: number): void;
  /** State changes and errors, for logs and `loadfeed-agent status`. */
  onState(target: string, state: StreamState, detail: string): void;
}

export class PollerStream {
  private readonly client: TelemetryClient;
  private readonly backoff = new Backoff();
  private call: grpc.ClientDuplexStream<AgentMessage, PollerMessage> | null = null;
  private writable = false;
  private seq = 0;
  private lastAcked = 0;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;
  state: StreamState = 'connecting';

  constructor(
    readonly target: string,
    private readonly hello: () => HelloInit,
    private readonly events: ReporterEvents,
    private readonly transport: Transport,
  ) {
    this.client = createTelemetryClient(target, transport.credentials, {
      ...transport.channelOptions,
      'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      'grpc.keepalive_permit_without_calls': 1,
    });
  }

  start(): void {
    this.connect();
  }

  /** Send one reading if the stream is up and has room; otherwise drop it. */
  send(reading: Reading, timestampMs: number): boolean {
    if (!this.call || !this.writable) return false;
    this.seq += 1;
    this.writable = this.call.write({
      sample: {
        seq: this.seq,
        timestampMs,
        ...metricValues(reading),
        services: reading.services.map((s) => ({ name: s.name, established: s.established })),
        windowMs: Math.max(1, Math.round(reading.windowMs)),
        namedMetrics: reading.namedMetrics,
      },
    });
    return true;
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.call?.end();
    this.call = null;
    this.client.close();
  }

  private setState(state: StreamState, detail: string): void {
    this.state = state;
    this.events.onState(this.target, state, detail);
  }

  private connect(): void {
    if (this.closed) return;
    this.setState('connecting', '');
    this.seq = 0;
    this.lastAcked = 0;
    const call = this.client.report(this.transport.metadata());
    this.call = call;
    this.writable = call.write({ hello: this.hello() });
    call.on('drain', () => {
      if (call === this.call) this.writable = true;
    });
    call.on('data', (msg: PollerMessage) => {
      if (msg.ack) {
        // The first acknowledgement proves the poller accepted us: only then
        // does the backoff start again from its base delay.
        if (this.lastAcked === 0) {
          this.backoff.reset();
          this.setState('connected', '');
        }
        this.lastAcked = msg.ack.lastSeq ?? 0;
      } else if (msg.config && msg.config.intervalMs !== null && msg.config.intervalMs !== undefined) {
        this.events.onInterval(msg.config.intervalMs);
      }
    });
    // 'status' arrives exactly once per call, after 'end' or 'error'.
    call.on('status', (status: grpc.StatusObject) => this.ended(call, `${grpc.status[status.code]}: ${status.details}`));
    call.on('error', () => undefined);
  }

  private ended(call: unknown, detail: string): void {
    if (call !== this.call || this.closed) return;
    this.call = null;
    this.writable = false;
    const delay = this.backoff.next();
    this.setState('waiting', `${detail}; retrying in ${delay} ms`);
    this.retry = setTimeout(() => {
      this.retry = null;
      this.connect();
    }, delay);
  }
}
