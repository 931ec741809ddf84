// The composition root's registries: every engine and strategy the poller
// knows, registered by the name policy files use. Each engine describes
// itself (kernel-bridge's EngineDescriptor); here only the policy's
// `engines:` settings are mapped to its options.
import { FASTPATH_ENGINE, HAPROXY_ENGINE, IPVS_ENGINE, MEMORY_ENGINE, NFTABLES_ENGINE, XDS_ENGINE, type XdsEngineOptions } from '@loadfeed/kernel-bridge';
import { OptionError } from './errors.js';
import { EngineRegistry } from './cycle/engines.js';
import { StrategyRegistry } from './policy/strategy.js';
import { connectionsStrategy } from './policy/strategy-connections.js';
import { expressionStrategy } from './policy/strategy-expression.js';
import { capacityStrategy } from './policy/strategy-capacity.js';
import { headroomStrategy } from './policy/strategy-headroom.js';
import { orcaStrategy } from './policy/strategy-orca.js';
import { pidStrategy } from './policy/strategy-pid.js';
import { queueStrategy } from './policy/strategy-queue.js';

/** `xds`: the xds engine's options (xds-options.ts), null when the poller has no --xds-listen. */
export function defaultEngines(xds: XdsEngineOptions | null = null): EngineRegistry {
  return new EngineRegistry()
    .register(FASTPATH_ENGINE, (c) => ({ connectTimeoutMs: c.fastpath.connectTimeout, downPeriodMs: c.fastpath.downPeriod }))
    .register(MEMORY_ENGINE, () => ({}))
    .register(IPVS_ENGINE, (c) => ({ driver: c.ipvs.driver, forward: c.ipvs.forward }))
    .register(NFTABLES_ENGINE, (c) => ({
      table: c.nftables.table,
      ...(c.nftables.netns === null ? {} : { command: ['ip', 'netns', 'exec', c.nftables.netns, 'nft'] }),
    }))
    .register(HAPROXY_ENGINE, (c) => ({ socket: c.haproxy.socket ?? '', timeoutMs: c.haproxy.timeout }))
    .register(XDS_ENGINE, () => {
      if (xds === null) throw new OptionError('engine xds needs the poller started with --xds-listen HOST:PORT (the port xDS clients subscribe on)');
      return xds;
    });
}

export function defaultStrategies(): StrategyRegistry {
  return new StrategyRegistry()
    .register(capacityStrategy)
    .register(headroomStrategy)
    .register(orcaStrategy)
    .register(pidStrategy)
    .register(connectionsStrategy)
    .register(expressionStrategy)
    .register(queueStrategy);
}
