// The composition root's registries: every engine and strategy the poller
// knows, registered by the name policy files use.
import {
  createFastpathEngine,
  createHaproxyEngine,
  createIpvsEngine,
  createMemoryEngine,
  createNftablesEngine,
  FASTPATH_SCHEDULERS,
  FASTPATH_WEIGHT_RANGE,
  HAPROXY_WEIGHT_RANGE,
  IPVS_WEIGHT_RANGE,
  NFTABLES_WEIGHT_RANGE,
  systemNft,
} from '@loadfeed/kernel-bridge';
import { deferredEngine, EngineRegistry } from './cycle/engines.js';
import { StrategyRegistry } from './policy/strategy.js';
import { connectionsStrategy } from './policy/strategy-connections.js';
import { expressionStrategy } from './policy/strategy-expression.js';
import { headroomStrategy } from './policy/strategy-headroom.js';
import { orcaStrategy } from './policy/strategy-orca.js';
import { pidStrategy } from './policy/strategy-pid.js';

const FASTPATH_NAMES = [...FASTPATH_SCHEDULERS.keys()].join(', ');
/** Fast-path schedulers no kernel scheduler matches, with what IPVS has nearest. */
const FASTPATH_ONLY: ReadonlyMap<string, string> = new Map([
  ['swrr', 'wrr (which restarts its cycle on every weight update)'],
  ['swrr-lc', 'sed or wlc'],
  ['swrr-sed', 'sed or wlc'],
]);

export function defaultEngines(): EngineRegistry {
  return new EngineRegistry()
    .register('fastpath', {
      create: (c) => createFastpathEngine({ connectTimeoutMs: c.fastpath.connectTimeout, downPeriodMs: c.fastpath.downPeriod }),
      maxWeight: FASTPATH_WEIGHT_RANGE.max,
      ownsServicesByDefault: true,
      canCreateServices: true,
      // maxConnections: a full destination is skipped, as IPVS's upper threshold.
      connectionLimits: true,
      checkScheduler: (name) => (FASTPATH_SCHEDULERS.has(name) ? null : `not a fast path scheduler (${FASTPATH_NAMES})`),
    })
    .register('memory', {
      create: () => createMemoryEngine(),
      maxWeight: 65_535,
      ownsServicesByDefault: true,
      canCreateServices: true,
      connectionLimits: false,
    })
    .register('ipvs', {
      create: (c) => deferredEngine('ipvs', IPVS_WEIGHT_RANGE, createIpvsEngine({ driver: c.ipvs.driver, forward: c.ipvs.forward })),
      maxWeight: IPVS_WEIGHT_RANGE.max,
      // wrr restarts its cycle on every weight update: coarse steps (and the deadband) matter.
      coarseSchedulers: ['wrr'],
      ownsServicesByDefault: false,
      canCreateServices: true,
      // maxConnections is IPVS's upper threshold.
      connectionLimits: true,
      checkScheduler: (name) => {
        const nearest = FASTPATH_ONLY.get(name);
        if (nearest !== undefined) return `a fast path scheduler IPVS does not have; the nearest IPVS ones: ${nearest}`;
        return /^[a-z][a-z0-9_]{0,14}$/.test(name) ? null : 'not an IPVS scheduler name (rr, wrr, lc, wlc, sed, nq, sh, mh…)';
      },
    })
    .register('nftables', {
      create: (c) =>
        createNftablesEngine({
          table: c.nftables.table,
          ...(c.nftables.netns === null ? {} : { command: ['ip', 'netns', 'exec', c.nftables.netns, systemNft()] }),
        }),
      maxWeight: NFTABLES_WEIGHT_RANGE.max,
      ownsServicesByDefault: true,
      canCreateServices: true,
      connectionLimits: false,
      checkScheduler: (name) => (name === 'random' ? null : 'the nftables engine\'s only scheduler is "random" (numgen random, by weight)'),
    })
    .register('haproxy', {
      create: (c) => createHaproxyEngine({ socket: c.haproxy.socket ?? '', timeoutMs: c.haproxy.timeout }),
      maxWeight: HAPROXY_WEIGHT_RANGE.max,
      ownsServicesByDefault: false,
      canCreateServices: false,
      connectionLimits: true,
      checkScheduler: () =>
        'HAProxy\'s algorithm is "balance" in haproxy.cfg (roundrobin and leastconn follow weights; it has no shortest expected delay): remove scheduler here',
    });
}

export function defaultStrategies(): StrategyRegistry {
  return new StrategyRegistry()
    .register(headroomStrategy)
    .register(orcaStrategy)
    .register(pidStrategy)
    .register(connectionsStrategy)
    .register(expressionStrategy);
}
