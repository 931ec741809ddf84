// Ingest: the gRPC Telemetry service. It checks every agent message against
// the contract before anything reaches the node table, so a malformed or
// hostile message is refused (with a gRPC status, on that stream only) and
// never touches a weight. gRPC status mapping happens here and nowhere else.
import { isIP, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { APP_METRIC_NAME, isOrcaNodeId, MAX_APP_METRIC_NAME_LENGTH, MAX_NAMED_METRICS, METRICS, ORCA_NODE_PREFIX } from '@loadfeed/proto';
import type {
  AgentMessage,
  Hello,
  PollerMessage,
  Sample,
  ServiceInfo,
  ServiceLoad,
  TelemetryReportCall,
  TelemetryServer,
} from '@loadfeed/proto';
import { authorize, type AuthOptions } from './auth.js';
import { ConnectionGuard, type ConnectionLimits } from './connection-guard.js';
import { partialMessage } from './grpc-decoder.js';
import { excerpt, IngestError } from '../errors.js';
import { RateLimitedLog } from '../util/log-limit.js';
import type { NodeRecord, NodeTable } from '../cycle/node-table.js';
import type { TraceRecord } from './trace.js';

export const MAX_CORES = 4096;
export const MAX_SERVICES_PER_AGENT = 64;
// Hello fields are kept for as long as the node is known (and shown in
// /status): each is bounded, so a Hello is at most ~12 KB.
export const MAX_HOSTNAME_CHARS = 253;
export const MAX_ADDRESSES = 64;
export const MAX_LABELS = 32;
/** Label names and values: Kubernetes' limits (a prefix may make names longer). */
export const MAX_LABEL_NAME_CHARS = 127;
export const MAX_LABEL_VALUE_CHARS = 63;
export const MAX_SERVICE_NAME_CHARS = 63;
export const MAX_CPU_MODEL_CHARS = 128;
export const MAX_AGENT_VERSION_CHARS = 64;
export const DEFAULT_MAX_AGENTS = 20_000;
/** Largest agent message; a Hello with every field at its bound is ~12 KB, a sample ~3 KB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024;
/**
 * Connections without an accepted Hello, in all. Each costs ~40 KB (its
 * HTTP/2 session and an unfinished message; measured in docs/RELIABILITY.md),
 * so ~50 MB at most; an agent's connection is pending only until its Hello.
 */
export const DEFAULT_MAX_PENDING_CONNECTIONS = 1024;
export const DEFAULT_MAX_PENDING_PER_PEER = 64;
/** Agents Hello at once; this leaves room for a TLS handshake on a loaded poller. */
export const DEFAULT_HELLO_TIMEOUT_MS = 20_000;
/** An agent uses one stream; a reconnect may briefly overlap the old one. */
export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 4;
/** Agents sample at most every 100 ms; twice that rate leaves room for bursts after a stall. */
export const DEFAULT_MAX_SAMPLES_PER_SECOND = 20;
/**
 * A stream may send this many seconds' worth of the rate at once: samples
 * queued while the poller itself was busy (a long cycle, a GC pause, a burst
 * of reconnects) arrive together, and cutting those streams would add
 * reconnects to an overloaded poller.
 */
export const SAMPLE_BURST_SECONDS = 5;
/**
 * After the first sample of a stream (which tells the agent it was accepted:
 * its reconnect backoff starts over), samples are acknowledged at most this
 * often. The agent needs no later Ack; each costs the poller more than
 * reading a sample (at 10,000 agents, one every 10 s was 4 % of its core).
 */
export const ACK_INTERVAL_MS = 60_000;
/** A sample stamped further than this from the poller's clock is refused. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60_000;

export interface IngestLimits extends ConnectionLimits {
  readonly maxAgents: number;
  readonly maxSamplesPerSecond: number;
  readonly maxClockSkewMs: number;
  /** Largest message grpc-js takes (it refuses a larger one from its length prefix). */
  readonly maxMessageBytes: number;
}

export const DEFAULT_LIMITS: IngestLimits = {
  maxAgents: DEFAULT_MAX_AGENTS,
  maxSamplesPerSecond: DEFAULT_MAX_SAMPLES_PER_SECOND,
  maxClockSkewMs: DEFAULT_MAX_CLOCK_SKEW_MS,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  maxPendingConnections: DEFAULT_MAX_PENDING_CONNECTIONS,
  maxPendingPerPeer: DEFAULT_MAX_PENDING_PER_PEER,
  helloTimeoutMs: DEFAULT_HELLO_TIMEOUT_MS,
  maxStreamsPerConnection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
};

export interface IngestCounters {
  accepted: number;
  rejected: Map<string, number>;
}

export interface IngestOptions {
  readonly table: NodeTable;
  readonly auth: AuthOptions;
  readonly limits: IngestLimits;
  /** Every accepted message, for `--record` traces. */
  readonly record?: (event: TraceRecord) => void;
  /** Sampling interval to push to agents on connect, ms. */
  intervalMs(): number;
  readonly log: (event: Record<string, unknown>, msg: string) => void;
}

const STATUS = {
  'invalid-argument': grpc.status.INVALID_ARGUMENT,
  'failed-precondition': grpc.status.FAILED_PRECONDITION,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  'permission-denied': grpc.status.PERMISSION_DENIED,
  'resource-exhausted': grpc.status.RESOURCE_EXHAUSTED,
} as const;

export class Ingest {
  readonly counters: IngestCounters = { accepted: 0, rejected: new Map() };
  private readonly streams = new Map<string, TelemetryReportCall>();
  private readonly guard: ConnectionGuard;
  private readonly refusals: RateLimitedLog;

  constructor(private readonly options: IngestOptions) {
    this.refusals = new RateLimitedLog(options.log);
    this.guard = new ConnectionGuard(options.limits, (reason, peer, detail) => this.refused(reason, { peer, error: `${reason}: ${detail}` }));
  }

  get limits(): IngestLimits {
    return this.options.limits;
  }

  /** A connection was accepted for the gRPC server: true to hand it on, false when a limit closed it. */
  admit(socket: Socket): boolean {
    return this.guard.admit(socket);
  }

  /** Connections without an accepted Hello, now. */
  pendingConnections(): number {
    return this.guard.pendingConnections();
  }

  close(): void {
    this.guard.close();
  }

  /** Count a refusal by reason and log it (at a bounded rate per reason). */
  private refused(reason: string, event: Record<string, unknown>): void {
    this.counters.rejected.set(reason, (this.counters.rejected.get(reason) ?? 0) + 1);
    this.refusals.log(reason, event, 'agent refused');
  }

  readonly service: TelemetryServer = {
    report: (call: TelemetryReportCall) => this.onStream(call),
  };

  /** Counts and logs a report refused outside an agent stream (an agentless ORCA backend's), with the agents' refusals. */
  countRefusal(err: IngestError, event: Record<string, unknown>): void {
    this.refused(err.rejection, { ...event, error: err.message });
  }

  /** Push a new sampling interval to every connected agent. */
  broadcastInterval(intervalMs: number): void {
    for (const call of this.streams.values()) call.write({ config: { intervalMs } });
  }

  private onStream(call: TelemetryReportCall): void {
    const peer = call.getPeer();
    const connection = this.guard.streamOpened(peer);
    if (typeof connection === 'string') {
      this.refused('streams-per-connection', { peer, error: `streams-per-connection: ${connection}` });
      call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `streams: ${connection}` });
      return;
    }
    let node: NodeRecord | null = null;
    /** The service names the Hello announced: what a sample may report on. */
    let announced: ReadonlySet<string> = new Set();
    let lastSeq = 0;
    let ackedAt: number | null = null;
    const bucket = new TokenBucket(this.options.limits.maxSamplesPerSecond, SAMPLE_BURST_SECONDS);
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      this.guard.streamClosed(peer, node !== null);
      if (node) {
        // A stream replaced by a newer one of the same node ends quietly.
        if (this.streams.get(node.id) === call) {
          this.streams.delete(node.id);
          this.options.record?.({ type: 'end', node: node.id });
        }
        this.options.table.disconnect(node);
      }
    };

    call.on('data', (msg: AgentMessage) => {
      if (finished) return;
      try {
        if (msg.body === 'hello') {
          if (node) throw new IngestError('failed-precondition', 'hello.repeated', 'Hello may be sent only once per stream');
          // Decoded messages are instances with every field set; pbts types
          // nested messages by their optional init shape, hence the casts.
          const hello = checkHello(msg.hello as Hello | null);
          const verdict = authorize(call, hello.nodeId, this.options.auth);
          if (!verdict.ok) throw new IngestError(verdict.code, 'auth', `auth: ${verdict.reason}`);
          const previous = this.streams.get(hello.nodeId);
          if (!previous && this.streams.size >= this.options.limits.maxAgents) {
            throw new IngestError('resource-exhausted', 'agents', `agents: this poller takes at most ${this.options.limits.maxAgents} agents`);
          }
          if (previous) {
            // The same server reconnected before its old stream was noticed
            // dead: the newest stream wins.
            previous.end();
          }
          this.streams.set(hello.nodeId, call);
          this.guard.helloAccepted(peer);
          announced = new Set((hello.services as ServiceInfo[]).map((s) => s.name));
          node = this.options.table.connect(hello);
          this.options.record?.({ type: 'hello', node: hello.nodeId, hello });
          this.options.log({ node: hello.nodeId, scope: hello.scope, cores: hello.cores, peer: call.getPeer(), auth: verdict.via }, 'agent connected');
          call.write({ config: { intervalMs: this.options.intervalMs() } });
          return;
        }
        if (!node) throw new IngestError('failed-precondition', 'hello.missing', `first message must be Hello, got ${msg.body ?? 'nothing'}`);
        if (msg.body === 'sample') {
          const now = performance.now();
          if (!bucket.take(now)) {
            throw new IngestError('resource-exhausted', 'sample.rate', `sample: more than ${this.options.limits.maxSamplesPerSecond} samples per second`);
          }
          const sample = checkSample(msg.sample as Sample | null, announced, lastSeq, this.options.limits.maxClockSkewMs);
          lastSeq = sample.seq;
          this.options.table.accept(node, sample);
          this.options.record?.({ type: 'sample', node: node.id, sample });
          this.counters.accepted += 1;
          if (ackedAt === null || now - ackedAt >= ACK_INTERVAL_MS) {
            ackedAt = now;
            call.write({ ack: { lastSeq } } satisfies Partial<PollerMessage>);
          }
          return;
        }
        if (msg.body === 'drain' || msg.body === 'undrain') {
          const reason = msg.body === 'drain' ? (msg.drain?.reason ?? '').slice(0, 200) : null;
          this.options.table.setDrain(node, reason);
          this.options.record?.(reason === null ? { type: 'undrain', node: node.id } : { type: 'drain', node: node.id, reason });
          this.options.log({ node: node.id, reason }, msg.body === 'drain' ? 'agent asked to be drained' : 'agent drain cancelled');
          return;
        }
        throw new IngestError('invalid-argument', 'message.unsupported', `unsupported message ${msg.body ?? '(empty)'}`);
      } catch (err) {
        if (!(err instanceof IngestError)) throw err;
        refuse(err);
      }
    });
    const refuse = (err: IngestError): void => {
      this.refused(err.rejection, { node: node?.id ?? null, peer, error: err.message });
      finish();
      call.emit('error', { code: STATUS[err.reason], details: err.message });
    };
    call.on('end', () => {
      // The client half-closed in the middle of a message: its length prefix
      // promised more than came. grpc-js would end the stream with OK. A
      // stream also ends so when the guard closed its connection, counted
      // under that limit already.
      const partial = partialMessage(call);
      if (partial && !finished && connection.closedFor === null) {
        const inside = partial.announced === null ? `${partial.received} of the 5 bytes of a message prefix` : `${partial.received} of the ${partial.announced} bytes its prefix announced`;
        refuse(new IngestError('invalid-argument', 'truncated', `truncated: the stream ended inside a message (${inside})`));
        return;
      }
      finish();
      call.end();
    });
    call.on('cancelled', () => {
      // grpc-js refuses a message over the size limit itself (RESOURCE_EXHAUSTED) and cancels the call.
      const declared = partialMessage(call)?.announced ?? null;
      if (declared !== null && declared > this.options.limits.maxMessageBytes && !finished) {
        this.refused('oversize', { node: node?.id ?? null, peer, error: `oversize: a message of ${declared} bytes, at most ${this.options.limits.maxMessageBytes}` });
      }
      finish();
    });
    call.on('close', finish);
    call.on('error', finish);
  }
}

function checkHello(h: Hello | null | undefined): Hello {
  if (!h) throw new IngestError('invalid-argument', 'hello', 'hello: empty');
  if (!/^[A-Za-z0-9._:-]{1,253}$/.test(h.nodeId)) {
    throw new IngestError('invalid-argument', 'hello.node_id', `hello.node_id: ${excerpt(h.nodeId)} must be 1..253 characters of A-Z a-z 0-9 . _ : -`);
  }
  if (isOrcaNodeId(h.nodeId)) {
    throw new IngestError(
      'invalid-argument',
      'hello.node_id.reserved',
      `hello.node_id: ${excerpt(h.nodeId)} starts with "${ORCA_NODE_PREFIX}", the node ids of the poller's own agentless ORCA backends; an agent must use another id`,
    );
  }
  const text = (field: string, value: string, max: number): void => {
    if (value.length > max) throw new IngestError('invalid-argument', `hello.${field}`, `hello.${field}: ${excerpt(value)} is longer than ${max} characters`);
  };
  text('hostname', h.hostname, MAX_HOSTNAME_CHARS);
  text('cpu_model', h.cpuModel, MAX_CPU_MODEL_CHARS);
  text('agent_version', h.agentVersion, MAX_AGENT_VERSION_CHARS);
  if (h.addresses.length > MAX_ADDRESSES) throw new IngestError('invalid-argument', 'hello.addresses', `hello.addresses: ${h.addresses.length} addresses, at most ${MAX_ADDRESSES}`);
  for (const a of h.addresses) {
    if (isIP(a) === 0) throw new IngestError('invalid-argument', 'hello.addresses', `hello.addresses: ${excerpt(a)} is not an IP address`);
  }
  const labels = Object.entries(h.labels);
  if (labels.length > MAX_LABELS) throw new IngestError('invalid-argument', 'hello.labels', `hello.labels: ${labels.length} labels, at most ${MAX_LABELS}`);
  for (const [k, v] of labels) {
    if (k.length === 0 || k.length > MAX_LABEL_NAME_CHARS || v.length > MAX_LABEL_VALUE_CHARS) {
      throw new IngestError('invalid-argument', 'hello.labels', `hello.labels: ${excerpt(k)}: ${excerpt(v)} must be a name of 1..${MAX_LABEL_NAME_CHARS} characters and a value of at most ${MAX_LABEL_VALUE_CHARS}`);
    }
  }
  if (!Number.isFinite(h.cores) || h.cores <= 0 || h.cores > MAX_CORES) {
    throw new IngestError('invalid-argument', 'hello.cores', `hello.cores: ${h.cores} must be > 0 and <= ${MAX_CORES}`);
  }
  if (!Number.isSafeInteger(h.memoryBytes) || h.memoryBytes <= 0) {
    throw new IngestError('invalid-argument', 'hello.memory_bytes', `hello.memory_bytes: ${h.memoryBytes} must be a positive integer`);
  }
  if (h.services.length > MAX_SERVICES_PER_AGENT) {
    throw new IngestError('invalid-argument', 'hello.services', `hello.services: ${h.services.length} services, at most ${MAX_SERVICES_PER_AGENT}`);
  }
  for (const s of h.services as ServiceInfo[]) {
    if (s.name.length === 0 || s.name.length > MAX_SERVICE_NAME_CHARS) {
      throw new IngestError('invalid-argument', 'hello.services', `hello.services: name ${excerpt(s.name)} must be 1..${MAX_SERVICE_NAME_CHARS} characters`);
    }
    if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
      throw new IngestError('invalid-argument', 'hello.services', `hello.services: port ${s.port} of ${excerpt(s.name)} must be 1..65535`);
    }
  }
  return h;
}

/** Runs for every sample: it allocates nothing unless it refuses one. */
export function checkSample(s: Sample | null | undefined, announced: ReadonlySet<string>, lastSeq: number, maxSkewMs: number): Sample {
  if (!s) throw new IngestError('invalid-argument', 'sample', 'sample: empty');
  if (!Number.isSafeInteger(s.seq) || s.seq <= lastSeq) {
    throw new IngestError('invalid-argument', 'sample.seq', `sample.seq: ${s.seq} must increase (last ${lastSeq})`);
  }
  const skew = s.timestampMs - Date.now();
  if (!Number.isFinite(skew) || Math.abs(skew) > maxSkewMs) {
    throw new IngestError('invalid-argument', 'sample.timestamp_ms', `sample.timestamp_ms: ${s.timestampMs} is ${Math.round(skew / 1000)} s from the poller's clock (at most ${maxSkewMs / 1000} s)`);
  }
  for (const m of METRICS) {
    const v = s[m.field] as number | null | undefined;
    if (m.range === null || (m.nullable && (v === null || v === undefined))) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < m.range.min || v > m.range.max) {
      throw new IngestError('invalid-argument', `sample.${m.wire}`, `sample.${m.wire}: ${v} must be within ${m.range.min}..${m.range.max}`);
    }
  }
  checkNamedMetrics(s);
  if (!Number.isInteger(s.windowMs) || s.windowMs <= 0) throw new IngestError('invalid-argument', 'sample.window_ms', `sample.window_ms: ${s.windowMs} must be > 0`);
  for (const svc of s.services as ServiceLoad[]) {
    if (!announced.has(svc.name)) throw new IngestError('invalid-argument', 'sample.services', `sample.services: ${excerpt(svc.name)} was not announced in Hello`);
  }
  return s;
}

/**
 * Named application metrics: bounded count, names in the contract's
 * alphabet, finite values. Walked with for…in (no entries array per sample:
 * most samples have none).
 */
function checkNamedMetrics(s: Sample): void {
  const named = s.namedMetrics;
  let count = 0;
  for (const name in named) if (Object.hasOwn(named, name)) count += 1;
  if (count > MAX_NAMED_METRICS) refuseNamedMetrics(`${count} entries, at most ${MAX_NAMED_METRICS}`);
  for (const name in named) {
    if (!Object.hasOwn(named, name)) continue;
    const v = named[name];
    if (!APP_METRIC_NAME.test(name)) {
      refuseNamedMetrics(`name ${JSON.stringify(name.slice(0, MAX_APP_METRIC_NAME_LENGTH + 1))} must be 1..${MAX_APP_METRIC_NAME_LENGTH} characters of a-z 0-9 _ starting with a letter`);
    }
    if (!Number.isFinite(v)) refuseNamedMetrics(`${name} = ${v} must be finite`);
  }
}

function refuseNamedMetrics(message: string): never {
  throw new IngestError('invalid-argument', 'sample.named_metrics', `sample.named_metrics: ${message}`);
}

/** Per-stream sample rate limit: `rate` tokens per second, bursts up to `burstSeconds` × `rate`. */
class TokenBucket {
  private tokens: number;
  private readonly capacity: number;
  private at = performance.now();

  constructor(private readonly rate: number, burstSeconds: number) {
    this.capacity = rate * burstSeconds;
    this.tokens = this.capacity;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
