// The composition root's registries: every engine and strategy the poller
// knows, registered by the name policy files use.
import { createFastpathEngine, createMemoryEngine } from '@loadfeed/kernel-bridge';
import { EngineRegistry } from './engines.js';
import { StrategyRegistry } from './policy/strategy.js';
import { connectionsStrategy } from './policy/strategy-connections.js';
import { expressionStrategy } from './policy/strategy-expression.js';
import { headroomStrategy } from './policy/strategy-headroom.js';
import { orcaStrategy } from './policy/strategy-orca.js';
import { pidStrategy } from './policy/strategy-pid.js';

export function defaultEngines(): EngineRegistry {
  return new EngineRegistry()
    .register('fastpath', { create: () => createFastpathEngine(), maxWeight: 65_535, ownsServices: true })
    .register('memory', { create: () => createMemoryEngine(), maxWeight: 65_535, ownsServices: true });
}

export function defaultStrategies(): StrategyRegistry {
  return new StrategyRegistry()
    .register(headroomStrategy)
    .register(orcaStrategy)
    .register(pidStrategy)
    .register(connectionsStrategy)
    .register(expressionStrategy);
}
