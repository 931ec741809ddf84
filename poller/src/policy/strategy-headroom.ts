// headroom: weight ∝ cores × spare CPU. A 4-core server at 50 % gets twice
// the weight of a 2-core server at 50 %, and as a server fills up its share
// shrinks towards zero. Load is the worse of CPU utilisation and CPU pressure
// (PSI some avg10): pressure sees contention that utilisation hides, e.g. a
// noisy neighbour stealing the cores or a run queue building up.
import type { Strategy } from './strategy.js';
import type { headroomSchema } from './schema.js';
import type { z } from 'zod';

type HeadroomConfig = z.output<typeof headroomSchema>;

export const headroomStrategy: Strategy<HeadroomConfig> = {
  name: 'headroom',
  score(config, m) {
    const pressure = config.usePressure ? m.psiCpuSome : null;
    const byPressure = pressure !== null && pressure > m.cpuUtilization;
    const load = Math.min(1, Math.max(0, byPressure ? (pressure ?? 0) : m.cpuUtilization));
    const score = m.cores * (1 - load);
    const what = byPressure ? `cpu pressure ${fmt(load)}` : `cpu ${fmt(load)}`;
    return { score, reason: `${what} of ${fmt(m.cores)} cores` };
  },
};

function fmt(x: number): string {
  return Number(x.toFixed(2)).toString();
}
