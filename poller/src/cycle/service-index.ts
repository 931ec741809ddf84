import type { CompiledPolicy } from '../policy/compile.js';
import { getOrCreate } from '../util/maps.js';
import type { NodeRecord } from './node-table.js';

/**
 * Which services a node's news (sample, liveness, drain) concerns: those
 * naming it by node id or by one of its addresses, and every service that
 * selects servers by label (a node's labels can match any of them).
 */
export class ServiceIndex {
  private readonly byNode = new Map<string, Set<string>>();
  private readonly byHost = new Map<string, Set<string>>();
  private readonly bySelector = new Set<string>();
  /**
   * Each node record's services, resolved at its first event (its connect):
   * a record stands for one stream, whose node id and addresses never
   * change, and every policy gets a new index.
   */
  private readonly resolved = new WeakMap<NodeRecord, readonly string[]>();

  constructor(policy: CompiledPolicy) {
    for (const service of policy.services) {
      for (const m of service.servers) {
        if (m.by === 'selector') this.bySelector.add(service.name);
        else if (m.by === 'node' || m.by === 'orca') getOrCreate(this.byNode, m.node, () => new Set<string>()).add(service.name);
        else getOrCreate(this.byHost, m.host, () => new Set<string>()).add(service.name);
      }
    }
  }

  concerning(node: NodeRecord): readonly string[] {
    let names = this.resolved.get(node);
    if (!names) {
      const found = new Set<string>(this.byNode.get(node.id));
      for (const host of node.hello.addresses) for (const name of this.byHost.get(host) ?? []) found.add(name);
      for (const name of this.bySelector) found.add(name);
      names = [...found];
      this.resolved.set(node, names);
    }
    return names;
  }
}
