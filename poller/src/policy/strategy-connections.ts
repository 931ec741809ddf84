// connections: a least-connection hint with capacity. Score = cores divided by
// (1 + established connections per core), so a server holding many
// long-lived connections (websockets, database pools) gets fewer new ones.
// For: services whose cost is connections, not CPU. A server whose agent
// cannot count connections (no SOCK_DIAG) gets the service mean.
import type { z } from 'zod';
import type { connectionsSchema } from './schema.js';
import { fmt, type Strategy } from './strategy.js';

type ConnectionsConfig = z.output<typeof connectionsSchema>;

export const connectionsStrategy: Strategy<ConnectionsConfig, null> = {
  name: 'connections',
  perServer: true,
  createState: () => null,
  weigh(_config, servers) {
    return servers.map(({ metrics: m }) =>
      m.connections === null
        ? { score: null, reason: 'connections unknown' }
        : { score: m.cores / (1 + m.connections / m.cores), reason: `${m.connections} connections on ${fmt(m.cores)} cores` },
    );
  },
};
