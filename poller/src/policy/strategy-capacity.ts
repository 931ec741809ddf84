// capacity: weight ∝ what a server can serve, estimated as ORCA's weighted
// round robin does, requests per second over utilisation, with the agent's
// accepted connections per second as the request rate (one request per
// connection; health checks and other services on the host count too).
// Unlike headroom it keeps each server's capacity when the whole pool runs
// near its limit, where every server's headroom tends to 0 and weights
// would be decided by noise; and it does not move with the traffic a server
// happens to get (twice the requests, twice the CPU: the same estimate),
// only with what changes the server itself: a noisy neighbour taking its
// CPU, requests becoming costlier. Queues are the scheduler's part: with
// these weights, `swrr-sed` and HAProxy's `leastconn` pick by connections
// in flight per unit of capacity.
//
// Utilisation is the worse of CPU and CPU pressure (PSI), as in headroom.
// Below `minUtilization` the ratio is noise (an idle server): no score, so
// the server gets the service's mean.
// For: one request per connection (HTTP/1 without keep-alive, short TCP
// exchanges); the default.
import type { z } from 'zod';
import type { capacitySchema } from './schema.js';
import { fmt, type Strategy } from './strategy.js';

type CapacityConfig = z.output<typeof capacitySchema>;

export const capacityStrategy: Strategy<CapacityConfig, null> = {
  name: 'capacity',
  perServer: true,
  createState: () => null,
  weigh(config, servers) {
    return servers.map(({ metrics: m }) => {
      const pressure = config.usePressure ? m.psiCpuSome : null;
      const byPressure = pressure !== null && pressure > m.cpuUtilization;
      const load = byPressure ? (pressure ?? 0) : m.cpuUtilization;
      const what = `${byPressure ? 'cpu pressure' : 'cpu'} ${fmt(load)}`;
      const rate = m.tcpAcceptsPerSecond;
      if (rate === null) return { score: null, reason: 'no accepted-connection rate: mean' };
      if (load < config.minUtilization || rate <= 0) return { score: null, reason: `${what}, too idle to estimate: mean` };
      return { score: rate / load, reason: `${fmt(rate)} connections/s at ${what}: capacity ${fmt(rate / load)}/s` };
    });
  },
};
