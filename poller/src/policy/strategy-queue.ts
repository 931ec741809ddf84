// queue: balances on what each server's own request queue says, for services
// whose bottleneck the kernel cannot see (a connection pool, a lock, a slow
// dependency: CPU stays low while requests wait). Inputs are application
// metrics (defaults: app.in_flight, app.latency_seconds, app.concurrency).
//   rate  = concurrency / latency      Little's law: c workers that each hold a
//                                      request for `latency` complete c/latency
//                                      requests per second
//   score = rate × min(1, concurrency / (in_flight + 1))
// A server with a free worker ("cold", in Prequal's terms) scores its full
// rate; one whose requests in flight exceed its workers ("hot": a queue is
// forming) loses share in proportion to the queue. `latency` is best the time
// a request holds a worker; end-to-end latency (queueing included) also works
// and reacts more strongly. With `concurrency: null` every server counts as one
// worker: score = 1 / (latency × (in_flight + 1)), shortest expected delay.
// A missing input gives the server the service mean.
// For: pool-, lock- or dependency-bound services that report their own queue.
import type { z } from 'zod';
import type { Expression } from './expression.js';
import type { queueSchema } from './schema.js';
import { fmt, variablesOf, type Score, type Strategy } from './strategy.js';

type QueueConfig = z.output<typeof queueSchema>;

export const queueStrategy: Strategy<QueueConfig, null> = {
  name: 'queue',
  perServer: true,
  createState: () => null,
  weigh(c, servers) {
    return servers.map(({ metrics }): Score => {
      const vars = variablesOf(metrics);
      const read = (e: Expression): number | null => {
        const v = e.evaluate(vars);
        return v !== null && Number.isFinite(v) ? v : null;
      };
      const inFlight = read(c.inFlight);
      const latency = read(c.latency);
      const workers = c.concurrency === null ? 1 : read(c.concurrency);
      if (inFlight === null || latency === null || workers === null) {
        const missing = [inFlight === null ? c.inFlight : null, latency === null ? c.latency : null, workers === null ? c.concurrency : null];
        return { score: null, reason: `no ${missing.flatMap((e) => (e === null ? [] : [e.source])).join(', ')}` };
      }
      if (latency <= 0 || workers <= 0) return { score: null, reason: `latency ${fmt(latency)} s, concurrency ${fmt(workers)}: not positive` };
      const rate = workers / latency;
      const free = Math.min(1, workers / (Math.max(0, inFlight) + 1));
      const what = c.concurrency === null ? `in flight ${fmt(inFlight)}` : `in flight ${fmt(inFlight)} of ${fmt(workers)} workers`;
      return { score: rate * free, reason: `${what}, latency ${fmt(latency)} s: ${fmt(rate)}/s × ${fmt(free)}` };
    });
  },
};
