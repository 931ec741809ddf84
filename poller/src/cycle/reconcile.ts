// In a cycle after evaluation and before the planner (cycle/run.ts): from
// the desired weights and the engine's observed state, it notices when the
// engine no longer has what the poller last wrote (a weight changed by hand,
// HAProxy restarted and back to its configured weights, the nftables table
// deleted, the fast path restarted) and decides, per the service's `drift`
// setting, whether to correct it (write ours again) or respect it (leave the
// hand-set weight until it changes again). Either way it says so, once per
// drift; the planner then plans against what it decided.
import type { EngineOp, Observation } from '@loadfeed/kernel-bridge';
import { getOrCreate } from '../util/maps.js';
import { destinationsByAddress, type DesiredService } from './planner.js';

export interface DriftEvent {
  readonly service: string;
  /** null when the whole service vanished from the engine. */
  readonly destination: string | null;
  readonly expected: number | null;
  readonly found: number | null;
  /** corrected / respected a weight; the service vanished and is re-created (ours) or reported missing (the engine's config). */
  readonly action: 'corrected' | 'respected' | 're-created' | 'missing';
}

export interface DriftPolicy {
  readonly address: string;
  readonly drift: 'correct' | 'respect';
}

export class Reconciler {
  /** The weight the engine should have, per service and destination: what we wrote or adopted. */
  private readonly expected = new Map<string, Map<string, number>>();
  /** Hand-set weights being respected, and the value they were respected at, per service and destination. */
  private readonly respected = new Map<string, Map<string, number>>();
  /** Services we have seen in the engine. */
  private readonly known = new Set<string>();

  /**
   * Compare the engine with what it should have; return the desired state to
   * plan against (respected weights substituted) and what drifted.
   */
  reconcile(desired: readonly DesiredService[], observed: Observation, policies: ReadonlyMap<string, DriftPolicy>): { desired: DesiredService[]; events: DriftEvent[] } {
    const events: DriftEvent[] = [];
    const byAddress = new Map(observed.services.map((s) => [s.address, s]));
    const out = desired.map((want) => {
      const have = byAddress.get(want.address);
      if (!have) {
        if (this.known.has(want.address)) {
          events.push({ service: want.address, destination: null, expected: null, found: null, action: want.owned ? 're-created' : 'missing' });
          this.known.delete(want.address);
          this.expected.delete(want.address);
        }
        return want;
      }
      this.known.add(want.address);
      const mode = policies.get(want.address)?.drift ?? 'correct';
      const found = destinationsByAddress(have);
      const expected = this.expected.get(want.address);
      const respected = this.respected.get(want.address);
      return {
        ...want,
        destinations: want.destinations.map((d) => {
          const now = found.get(d.address)?.weight;
          if (now === undefined) return d;
          const exp = expected?.get(d.address);
          const held = respected?.get(d.address);
          if (held !== undefined) {
            if (now === held) return { ...d, weight: now }; // still the hand-set value: leave it
            respected?.delete(d.address); // changed again: ours from now on
          } else if (exp !== undefined && now !== exp) {
            if (mode === 'respect') {
              getOrCreate(this.respected, want.address, () => new Map<string, number>()).set(d.address, now);
              events.push({ service: want.address, destination: d.address, expected: exp, found: now, action: 'respected' });
              return { ...d, weight: now };
            }
            events.push({ service: want.address, destination: d.address, expected: exp, found: now, action: 'corrected' });
          }
          return d;
        }),
      };
    });
    return { desired: out, events };
  }

  /** The engine accepted these ops: they are what it should have now. */
  applied(ops: readonly EngineOp[]): void {
    for (const op of ops) {
      if (op.op === 'add-destination' || op.op === 'set-weight') getOrCreate(this.expected, op.service, () => new Map<string, number>()).set(op.destination, op.weight);
      else if (op.op === 'remove-destination') this.expected.get(op.service)?.delete(op.destination);
      else if (op.op === 'add-service') this.known.add(op.service.address);
    }
  }

  /** Weights found in the engine at start are what it should have (adoption). */
  adopt(observed: Observation): void {
    for (const s of observed.services) {
      this.known.add(s.address);
      const expected = getOrCreate(this.expected, s.address, () => new Map<string, number>());
      for (const d of s.destinations) expected.set(d.address, d.weight);
    }
  }
}
