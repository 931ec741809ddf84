// headroom: weight ∝ cores × spare CPU. A 4-core server at 50 % gets twice
// the weight of a 2-core server at 50 %, and as a server fills up its share
// shrinks towards zero. Load is the worse of CPU utilisation and CPU pressure
// (PSI some avg10): pressure sees contention that utilisation hides, e.g. a
// noisy neighbour stealing the cores or a run queue building up.
// For: heterogeneous servers and changing background load; the default.
import type { z } from 'zod';
import type { headroomSchema } from './schema.js';
import { fmt, type Strategy } from './strategy.js';

type HeadroomConfig = z.output<typeof headroomSchema>;

export const headroomStrategy: Strategy<HeadroomConfig, null> = {
  name: 'headroom',
  perServer: true,
  createState: () => null,
  weigh(config, servers) {
    return servers.map(({ metrics: m }) => {
      const pressure = config.usePressure ? m.psiCpuSome : null;
      const byPressure = pressure !== null && pressure > m.cpuUtilization;
      const load = Math.min(1, Math.max(0, byPressure ? (pressure ?? 0) : m.cpuUtilization));
      const what = byPressure ? `cpu pressure ${fmt(load)}` : `cpu ${fmt(load)}`;
      return { score: m.cores * (1 - load), reason: `${what} of ${fmt(m.cores)} cores` };
    });
  },
};
