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

  constructor(policy: CompiledPolicy) {
    for (const service of policy.services) {
      for (const m of service.servers) {
        if (m.by === 'selector') this.bySelector.add(service.name);
        else if (m.by === 'node') getOrCreate(this.byNode, m.node, () => new Set<string>()).add(service.name);
        else getOrCreate(this.byHost, m.host, () => new Set<string>()).add(service.name);
      }
    }
  }

  concerning(node: NodeRecord, into: Set<string>): void {
    for (const name of this.byNode.get(node.id) ?? []) into.add(name);
    for (const host of node.hello.addresses) for (const name of this.byHost.get(host) ?? []) into.add(name);
    for (const name of this.bySelector) into.add(name);
  }
}
