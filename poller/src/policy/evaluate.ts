// From the node table to desired weights, one service at a time:
//   strategy score → EWMA smoothing (half-life, on the poller's clock) →
//   scale so the best server gets weights.max → clamp to [min, max] → integer.
// A server with no live agent (never seen, its stream ended, or silent) is
// quiesced to 0: it takes no new connections, existing ones finish.
import type { NodeRecord } from '../node-table.js';
import type { CompiledService } from './compile.js';
import type { StrategyRegistry } from './strategy.js';

export interface WeightDecision {
  readonly address: string;
  /** Node id of the agent that reports for this server, when one is known. */
  readonly node: string | null;
  readonly weight: number;
  /** Smoothed strategy score, or null when quiesced. */
  readonly score: number | null;
  readonly reason: string;
}

export interface NodeLookup {
  byId(id: string): NodeRecord | undefined;
  byHost(host: string): NodeRecord | undefined;
}

interface Smoothed {
  value: number;
  /** Sequence number and stream start of the sample last folded in. */
  seq: number;
  connectedAt: number;
  at: number;
}

export class WeightEvaluator {
  private readonly smoothed = new Map<string, Smoothed>();

  constructor(private readonly strategies: StrategyRegistry) {}

  evaluate(service: CompiledService, nodes: NodeLookup): WeightDecision[] {
    const strategy = this.strategies.get(service.strategy.name);
    const live: { address: string; node: NodeRecord; score: number; reason: string }[] = [];
    const decisions = new Map<string, WeightDecision>();

    for (const server of service.servers) {
      const node = server.node !== null ? nodes.byId(server.node) : nodes.byHost(server.host);
      const key = `${service.name}\u0000${server.address}`;
      const quiesce = (reason: string): void => {
        this.smoothed.delete(key);
        decisions.set(server.address, { address: server.address, node: node?.id ?? server.node, weight: 0, score: null, reason });
      };
      if (!node) {
        quiesce('no agent connected');
        continue;
      }
      if (node.state === 'stale') {
        quiesce('agent silent: no sample within the stale deadline');
        continue;
      }
      const sample = node.sample;
      if (!sample) {
        quiesce('agent connected, no sample yet');
        continue;
      }
      const { score, reason } = strategy.score(service.strategy, {
        cores: node.hello.cores,
        memoryBytes: node.hello.memoryBytes,
        cpuUtilization: sample.cpuUtilization,
        memUtilization: sample.memUtilization,
        psiCpuSome: sample.psiCpuSome ?? null,
        psiMemorySome: sample.psiMemorySome ?? null,
        psiIoSome: sample.psiIoSome ?? null,
        load1: sample.load1 ?? null,
        runnable: sample.runnable ?? null,
      });
      const smooth = this.fold(key, score, node, service.smoothing.halfLifeMs);
      live.push({ address: server.address, node, score: smooth, reason });
    }

    const best = Math.max(0, ...live.map((l) => l.score));
    const { min, max } = service.weights;
    for (const l of live) {
      const scaled = best > 0 ? (max * l.score) / best : min;
      const weight = Math.round(Math.min(max, Math.max(min, scaled)));
      decisions.set(l.address, { address: l.address, node: l.node.id, weight, score: l.score, reason: l.reason });
    }
    return service.servers.map((s) => decisions.get(s.address) as WeightDecision);
  }

  /** EWMA on the poller's clock: after one half-life a step is half absorbed. */
  private fold(key: string, score: number, node: NodeRecord, halfLifeMs: number): number {
    const sample = node.sample;
    const seq = sample?.seq ?? 0;
    const prev = this.smoothed.get(key);
    if (prev && prev.seq === seq && prev.connectedAt === node.connectedAt) return prev.value;
    let value = score;
    if (prev && halfLifeMs > 0) {
      const alpha = 1 - 2 ** (-(node.sampleAt - prev.at) / halfLifeMs);
      value = prev.value + alpha * (score - prev.value);
    }
    this.smoothed.set(key, { value, seq, connectedAt: node.connectedAt, at: node.sampleAt });
    return value;
  }

  /** Drop smoothing state of services no longer in the policy. */
  retain(serviceNames: ReadonlySet<string>): void {
    for (const key of this.smoothed.keys()) {
      if (!serviceNames.has(key.slice(0, key.indexOf('\u0000')))) this.smoothed.delete(key);
    }
  }
}
