// Every agent the poller has heard from, and whether it is alive.
//
// A node is `live` while its stream is open and samples arrive; `stale` when
// no sample came for `staleAfterMs` (host hung, network partition); `gone`
// when its stream ended (agent killed, TCP reset). Stale and gone nodes are
// quiesced by the policy. Gone nodes move to an LRU with a TTL, bounded in
// entries and bytes, so that state for their return (blackout, slow start)
// is kept without letting a flood of invented node ids grow memory.
import { LRUCache } from 'lru-cache';
import { compileMetricValues, copyMetricValues, type Hello, type MetricSource, type MetricValues, type Sample, type ServiceLoad } from '@loadfeed/proto';

export const DEFAULT_STALE_AFTER_MS = 2_000;
/** How often deadlines are checked: a silent node turns stale between staleAfter less this and staleAfter after its last sample. */
export const LIVENESS_SWEEP_MS = 100;
export const DEPARTED_MAX = 10_000;
export const DEPARTED_TTL_MS = 30 * 60_000;
/**
 * Departed state is also bounded in bytes (of heap, as helloBytes counts): a
 * flood of invented node ids with the largest Hellos allowed cannot hold
 * more than this, whatever their count.
 */
export const DEPARTED_MAX_BYTES = 16 * 1024 * 1024;

/**
 * V8 heap bytes a Hello decoded by protobufjs holds, at most (the largest
 * Hello of the ingest-bounds bench: 80.5 KiB of heap, 85.5 KiB counted). Its strings
 * cost far more than their characters: protobufjs builds a string shorter
 * than 64 bytes by appending 8 characters at a time, then single ones, and
 * V8 keeps each append as a rope node. Label names are counted although V8
 * shares equal ones between Hellos (object keys are interned).
 */
export function helloBytes(h: Hello): number {
  let bytes = HELLO_OBJECT_BYTES + stringBytes(h.nodeId) + stringBytes(h.hostname) + stringBytes(h.agentVersion) + stringBytes(h.cpuModel);
  for (const a of h.addresses) bytes += SLOT_BYTES + stringBytes(a);
  for (const [k, v] of Object.entries(h.labels)) bytes += LABEL_ENTRY_BYTES + stringBytes(k) + stringBytes(v);
  for (const s of h.services) bytes += SLOT_BYTES + SERVICE_OBJECT_BYTES + stringBytes(s.name ?? '');
  return bytes;
}

// 64-bit V8 without pointer compression, as Node.js ships it.
const HELLO_OBJECT_BYTES = 200;
const SLOT_BYTES = 8;
const LABEL_ENTRY_BYTES = 48;
const SERVICE_OBJECT_BYTES = 56;
const STRING_HEADER_BYTES = 16;
const ROPE_NODE_BYTES = 32;
/** V8 copies a concatenation shorter than this instead of making a rope node. */
const MIN_ROPE_CHARS = 13;
/** protobufjs decodes strings of at least this many bytes in one piece (TextDecoder). */
const WHOLE_STRING_BYTES = 64;

function stringBytes(s: string): number {
  const flat = (width: number): number => Math.ceil((STRING_HEADER_BYTES + width * s.length) / 8) * 8;
  if (s.length === 0) return 0;
  // Past Latin-1, two bytes a character; protobufjs decodes from the first non-ASCII byte in one piece.
  if (/[\u0100-\uffff]/.test(s)) return flat(2) + ROPE_NODE_BYTES;
  if (s.length < MIN_ROPE_CHARS || s.length >= WHOLE_STRING_BYTES) return flat(1);
  const chunks = Math.floor(s.length / 8);
  return chunks * (STRING_HEADER_BYTES + 8) + (chunks + (s.length % 8) - 1) * ROPE_NODE_BYTES;
}

export type NodeState = 'live' | 'stale' | 'gone';

/** One service's connection count in a node's latest sample. */
export interface ServiceReading {
  readonly name: string;
  established: number | null;
}

/**
 * A node's latest sample: its values copied out of the decoded message into
 * one record per node record, written over by each sample. Keeping the
 * decoded Sample instead (half a kilobyte with its nested objects) made
 * every sample an object that lives a second, outlives young-generation
 * collections and is promoted: at 10,000 agents, most of the poller's
 * garbage-collection time.
 */
export type LatestSample = { -readonly [F in keyof MetricValues]: MetricValues[F] } & {
  seq: number;
  timestampMs: number;
  windowMs: number;
  /** The services the sample reports on, in its order; the same array while their names stay. */
  services: ServiceReading[];
  /** Named application metrics: the decoded map when the sample has any (it holds nothing else of the sample), else one shared empty one. */
  namedMetrics: Readonly<Record<string, number>>;
};

const NO_NAMED_METRICS: Readonly<Record<string, number>> = Object.freeze({});

/** A record for a node's first sample (a Sample): one object literal from the catalog, so every node's has the same shape. */
const newLatestSample = compileMetricValues<(s: MetricSource, services: ServiceReading[], named: Readonly<Record<string, number>>) => LatestSample>(
  ['s', 'services', 'named'],
  'seq: s.seq, timestampMs: s.timestampMs, windowMs: s.windowMs, services, namedMetrics: named',
);

function namedMetricsOf(s: Sample): Readonly<Record<string, number>> {
  for (const name in s.namedMetrics) if (Object.hasOwn(s.namedMetrics, name)) return s.namedMetrics;
  return NO_NAMED_METRICS;
}

function servicesOf(s: Sample): ServiceReading[] {
  // Decoded messages have every field set; pbts types nested ones by their init shape.
  return (s.services as ServiceLoad[]).map((x) => ({ name: x.name, established: x.established ?? null }));
}

/** The same services by name, in the same order: their readings are written over. */
function sameServices(readings: readonly ServiceReading[], s: Sample): boolean {
  if (readings.length !== s.services.length) return false;
  for (let i = 0; i < readings.length; i += 1) if (readings[i]?.name !== s.services[i]?.name) return false;
  return true;
}

/** The node's latest sample record, written over with `s` (allocated at the node's first sample). */
function record(latest: LatestSample | null, s: Sample): LatestSample {
  if (latest === null) return newLatestSample(s, servicesOf(s), namedMetricsOf(s));
  copyMetricValues(latest, s);
  latest.seq = s.seq;
  latest.timestampMs = s.timestampMs;
  latest.windowMs = s.windowMs;
  if (!sameServices(latest.services, s)) latest.services = servicesOf(s);
  else for (let i = 0; i < s.services.length; i += 1) (latest.services[i] as ServiceReading).established = s.services[i]?.established ?? null;
  latest.namedMetrics = namedMetricsOf(s);
  return latest;
}

export interface NodeRecord {
  readonly id: string;
  readonly hello: Hello;
  readonly connectedAt: number;
  state: NodeState;
  /** The latest sample's values (see LatestSample); null before the first. */
  sample: LatestSample | null;
  /** Monotonic ms when the latest sample was accepted (connectedAt before the first). */
  sampleAt: number;
  /** Samples accepted on this stream: what tells one sample from the next, as `sample` stays the same record. */
  samples: number;
  /** Set while the agent asked to be drained (its reason, possibly empty); null otherwise. */
  drained: string | null;
}

export interface Departed {
  readonly hello: Hello;
  readonly goneAt: number;
}

/** How the policy finds the node that reports for a server. */
export interface NodeLookup {
  /** Changes whenever a node record is added, replaced or removed: while it stays, every lookup finds what it found before. */
  readonly membership: number;
  byId(id: string): NodeRecord | undefined;
  byHost(host: string): NodeRecord | undefined;
  all(): Iterable<NodeRecord>;
}

export type NodeEvent = { readonly node: NodeRecord; readonly from: NodeState | null; readonly to: NodeState };

export class NodeTable {
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly departed = new LRUCache<string, Departed>({
    max: DEPARTED_MAX,
    ttl: DEPARTED_TTL_MS,
    maxSize: DEPARTED_MAX_BYTES,
    sizeCalculation: (d, id) => helloBytes(d.hello) + 2 * id.length,
  });
  private sweeper: NodeJS.Timeout | null = null;
  /** Counts connects and disconnects (NodeLookup.membership). */
  private membership = 0;

  constructor(
    private staleAfterMs: number,
    private readonly onChange: (event: NodeEvent) => void,
    private readonly now: () => number = () => performance.now(),
    /**
     * A live node's new sample, which changes no state: no event object (at
     * 10,000 agents this runs 10,000 times a second). By default a live →
     * live change.
     */
    private readonly onSample: (node: NodeRecord) => void = (node) => onChange({ node, from: 'live', to: 'live' }),
  ) {}

  start(): void {
    // The sweep waits for the loop's next I/O phase (setImmediate runs after
    // it): when a long task held the loop (a reload's full cycle over 10,000
    // servers on a busy core), the samples that came meanwhile are read
    // before their nodes are judged silent, not just after.
    this.sweeper ??= setInterval(
      () =>
        setImmediate(() => {
          if (this.sweeper !== null) this.sweep(); // not after stop()
        }),
      LIVENESS_SWEEP_MS,
    );
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  setStaleAfter(ms: number): void {
    this.staleAfterMs = ms;
  }

  /** A consistent view for one policy evaluation (the address index is built at most once). */
  lookup(): NodeLookup {
    let byHost: Map<string, NodeRecord> | null = null;
    return {
      membership: this.membership,
      all: () => this.nodes.values(),
      byId: (id) => this.nodes.get(id),
      byHost: (host) => {
        byHost ??= new Map([...this.nodes.values()].flatMap((n) => n.hello.addresses.map((a) => [a, n] as const)));
        return byHost.get(host);
      },
    };
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  all(): IterableIterator<NodeRecord> {
    return this.nodes.values();
  }

  departedInfo(id: string): Departed | undefined {
    return this.departed.get(id);
  }

  /** A stream said Hello: the node is live (again), with no sample yet. */
  connect(hello: Hello): NodeRecord {
    const at = this.now();
    const previous = this.nodes.get(hello.nodeId);
    const node: NodeRecord = { id: hello.nodeId, hello, connectedAt: at, state: 'live', sample: null, sampleAt: at, samples: 0, drained: null };
    this.nodes.set(node.id, node);
    this.membership += 1;
    this.departed.delete(node.id);
    this.onChange({ node, from: previous?.state ?? null, to: 'live' });
    return node;
  }

  /** A checked sample: its values are copied, the decoded message is not kept. */
  accept(node: NodeRecord, sample: Sample): void {
    node.sample = record(node.sample, sample);
    node.sampleAt = this.now();
    node.samples += 1;
    if (node.state === 'stale') this.transition(node, 'live');
    else this.onSample(node);
  }

  /** The agent asked for weight 0 while its connections finish (reason), or cancelled that (null). */
  setDrain(node: NodeRecord, reason: string | null): void {
    if (node.drained === reason) return;
    node.drained = reason;
    this.onChange({ node, from: node.state, to: node.state });
  }

  /** The node's stream ended: quiesce at once. A newer stream for the same id is left alone. */
  disconnect(node: NodeRecord): void {
    if (this.nodes.get(node.id) !== node) return;
    this.nodes.delete(node.id);
    this.membership += 1;
    this.departed.set(node.id, { hello: node.hello, goneAt: this.now() });
    this.transition(node, 'gone');
  }

  /**
   * Turn nodes stale whose last sample is older than staleAfter less one
   * sweep interval (run every LIVENESS_SWEEP_MS): so a silent node is stale
   * no later than staleAfter after its last sample, as the liveness setting
   * promises, rather than up to one sweep later.
   */
  sweep(): void {
    const deadline = this.now() - this.staleAfterMs + LIVENESS_SWEEP_MS;
    for (const node of this.nodes.values()) {
      if (node.state === 'live' && node.sampleAt < deadline) this.transition(node, 'stale');
    }
  }

  private transition(node: NodeRecord, to: NodeState): void {
    const from = node.state;
    node.state = to;
    this.onChange({ node, from, to });
  }
}
