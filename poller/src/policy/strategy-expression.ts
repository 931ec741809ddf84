// expression: the operator's own formula over the metrics, e.g.
// "cores * (1 - max(cpu, psi_cpu)) * (mem < 0.9)". Parsed once, at compile, evaluated
// safely (see expression.ts); a negative result counts as 0, a missing
// metric gives the server the service mean.
// For: anything the built-in strategies do not express.
import type { z } from 'zod';
import type { Expression } from './expression.js';
import type { expressionStrategySchema } from './schema.js';
import { fmt, variablesOf, type Strategy } from './strategy.js';

type ExpressionConfig = z.output<typeof expressionStrategySchema>;

export const expressionStrategy: Strategy<ExpressionConfig, Expression> = {
  name: 'expression',
  perServer: true,
  createState: (config) => config.score,
  weigh(_config, servers, expr) {
    return servers.map(({ metrics }) => {
      const v = expr.evaluate(variablesOf(metrics));
      if (v === null || !Number.isFinite(v)) return { score: null, reason: `${expr.source}: no value (a metric is missing)` };
      return { score: Math.max(0, v), reason: `${expr.source} = ${fmt(v)}` };
    });
  },
};
