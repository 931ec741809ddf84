// capacity: weight ∝ the requests per second a server could serve now:
//   capacity = max(0, rate + (target − utilisation) / cost)
// with rate the agent's accepted connections per second (one request per
// connection; health checks and other services on the host count too),
// target the utilisation a server is counted at (`targetUtilization`, 0.9),
// and cost the CPU one request/s takes (fraction of the scope's capacity),
// learned per server. Counting at 1 left a saturated server's estimate at
// the rate it accepts, which follows the weight it has: a neighbour that
// saturated a server at half load was shed only as fast as the scheduler's
// queue counting moved traffic (p99 478 ms against headroom's 57 in
// bench:balance (b)). Below 1, a server past the target scores less than it
// accepts, so it sheds at once; the ratios between servers without a
// neighbour are unchanged (target / cost).
//
// cost is the slowly rising minimum of utilisation / rate, taken over a few
// seconds of samples: without a neighbour it is the server's cost per
// request, and capacity ∝ rate / utilisation, ORCA's qps / utilisation.
// With a neighbour (or anything else on the host taking CPU) utilisation
// rises while the cost stays, so capacity is what the server really has
// left; rate / utilisation would count the neighbour's CPU as the server's
// own requests and underrate it further the fewer requests it gets (a
// spiral down to a fraction of its real capacity). A cost measured lower is
// taken at once; a higher one is approached with `costHalfLife`, so
// requests that become costlier for good are learned within a minute or
// two (until then the spare is overrated, but never beyond rate at full
// load), and a neighbour that stays that long is learned as cost.
//
// Unlike headroom it keeps each server's capacity when the whole pool runs
// near its limit, where every server's headroom tends to 0, and it does not
// move with the Poisson noise in the traffic a server gets. Queues are the
// scheduler's part: with these weights, `swrr-sed` and HAProxy's
// `leastconn` pick by connections in flight per unit of capacity.
//
// Utilisation for the spare is the worse of CPU and CPU pressure (PSI), as
// in headroom; the cost is learned from CPU alone. Rate and load in the
// score are averaged over the last SCORE_HALF_LIFE_REQUESTS requests or so
// (a second at most), so a small server's Poisson noise does not bias it;
// two samples in a row whose own capacity lies further the same way from
// that average than their noise explains (CHANGE_SIGMAS; one may be a
// burst that is gone, and the agent reports the windows after an early
// report one by one) are a change: the latest is taken at once, and
// (falling) not smoothed by the poller either. Averaging a neighbour's
// arrival over 15 requests took two of the three seconds bench:reaction's
// load step needed. The second of the two is judged against the noise as
// it was before the first (which widened it), and a falling one needs only
// confirm the direction (CONFIRM_SIGMAS_AT_QUOTA) when the cgroup was
// throttled in most of its periods: at its quota, the leading sign of a
// neighbour. A falling change starts from the pair's worse reading (the
// lower rate, the higher load): while a server is saturated it still
// accepts what its old weight sends and its CPU reads no more than the
// quota, so a single window overrates what is left. It is learned only from
// a few seconds busier than `minUtilization` (an idle server's ratio is
// noise). Until a server's cost is known it gets the service mean; once
// known, an idle server gets its whole capacity, target / cost. The cost is kept
// across agent restarts (the same server); it starts anew with a new policy.
//
// The rate is the requests per second the application reports (`rps`, e.g.
// from ORCA or its Prometheus endpoint) when the sample carries it, else the
// host's accepted connections per second: one request per connection. With
// keep-alive (or any long-lived connections) accepts count connections, not
// requests, and are near 0: the estimate would fall to the service mean for
// every server. A server whose connections live longer than
// LONG_LIVED_CONNECTION_S on average (Little's law: established / accepted
// per second) is scored by its spare cores up to the target instead, as
// headroom scores (cores × (target − load)); a service whose servers all
// hold long-lived connections is then weighted as with headroom. Its reason
// says so. Spare cores and requests/s are different units: a service whose
// servers differ in this should report `rps`.
// For: one request per connection (HTTP/1 without keep-alive, short TCP
// exchanges), or any service that reports its request rate; the default.
import type { z } from 'zod';
import type { capacitySchema } from './schema.js';
import { fmt, type Strategy } from './strategy.js';

type CapacityConfig = z.output<typeof capacitySchema>;

/** Half-life of the averages the cost is taken from: long enough to smooth Poisson noise, short next to a neighbour's stint. */
export const CAPACITY_AVERAGE_HALF_LIFE_MS = 2_000;
/**
 * The score's own averages of rate and load move by half every this many
 * requests, or every SCORE_MAX_HALF_LIFE_MS if that is sooner: a quarter
 * second of a small server holds a handful of requests, and its accepts and
 * CPU differ by the queue's Poisson noise (±30 % at 5 requests), which the
 * poller's fast falling half-life would turn into a weight biased low. A busy
 * server's trouble still shows within a quarter second.
 */
export const SCORE_HALF_LIFE_REQUESTS = 15;
/** Averages holding this many requests are full: the half-life alone weighs a new sample. */
const SCORE_FULL_REQUESTS = 4 * SCORE_HALF_LIFE_REQUESTS;
const SCORE_MAX_HALF_LIFE_MS = 1_000;
/**
 * A sample's capacity this many standard deviations of its own request
 * count (Poisson: √n requests over its window) away from the averaged score
 * replaces the average. Accepts and CPU move together with the requests, so
 * the capacity's real noise is well below this bound: in bench:reaction the
 * servers without a neighbour deviated by 0.2–0.3 of it at the median and
 * 1.2–1.5 at p99 in 1 s samples (a few quarter-second ones reached 4); a
 * neighbour taking 60 % of a server at half load showed 2.4–5 in the first
 * quarter second.
 */
export const CHANGE_SIGMAS = 2;
/**
 * The window after one beyond CHANGE_SIGMAS confirms a fall from this many
 * when its cgroup was throttled in at least AT_QUOTA_THROTTLED of its CFS
 * periods (the server ran into its quota). In bench:reaction a neighbour's
 * throttled windows read 1–2 σ below the average while the server still
 * accepted its old share (a traced step waited 3 s for a second one beyond
 * 2 σ); without a neighbour, 7–16 % of a busy server's quarter-second
 * windows were throttled that much, so throttling alone is no change.
 */
export const CONFIRM_SIGMAS_AT_QUOTA = 1;
export const AT_QUOTA_THROTTLED = 0.5;
/** A normal distribution's standard deviation over its mean absolute deviation (√(π/2)). */
const SPREAD_TO_SIGMA = 1.25;
/**
 * Connections that live this long on average carry many requests each, so
 * accepts no longer count requests; a server stops being counted so below
 * half of it (no flapping at the edge). A one-request connection lives as
 * long as its response takes, queueing included: seconds at most.
 */
export const LONG_LIVED_CONNECTION_S = 10;
/** A server not heard of for this long is forgotten (checked at most this often). */
const FORGET_AFTER_MS = 10 * 60_000;

interface Learned {
  /** Time-weighted averages of CPU utilisation and the rate, requests or accepted connections/s (for the cost). */
  cpu: number;
  rate: number;
  /** Request-weighted averages of the rate and load (for the score). */
  scoreRate: number;
  scoreLoad: number;
  /** ms of samples in the averages (capped: only its fullness matters). */
  covered: number;
  /** Learned CPU per request/s; null until the averages were once busy enough. */
  cost: number | null;
  at: number;
  /** What the rate counts: the application's requests, or accepted connections. A change starts anew. */
  source: RateSource;
  /**
   * Mean absolute deviation of a sample's capacity from the averaged one,
   * in requests/s × √s (a window's noise falls with the square root of its
   * length), over the last few seconds (a change counted up to the bound).
   */
  spread: number;
  /** The last sample's capacity lay beyond the noise above (1) or below (-1) the average, or not (0). */
  beyond: -1 | 0 | 1;
  /** The score's averages and the spread before that sample: the next one is compared with them. */
  before: Reference;
  /** That sample's own rate and load: a falling change starts from the worse of it and the next. */
  last: { readonly rate: number; readonly load: number };
  /** The last sample was a change (two in a row beyond the noise, the same way): it replaced the score's averages. */
  changed: boolean;
  /** Requests in the score's averages since they (re)started, up to SCORE_FULL_REQUESTS. */
  scoreRequests: number;
  /** Its connections live longer than LONG_LIVED_CONNECTION_S: accepts are not its requests (no cost is learned from them). */
  longLived: boolean;
}

type RateSource = 'request' | 'connection';

interface Reference {
  readonly rate: number;
  readonly load: number;
  readonly spread: number;
}

interface CapacityState {
  readonly servers: Map<string, Learned>;
  sweptAt: number;
}

export const capacityStrategy: Strategy<CapacityConfig, CapacityState> = {
  name: 'capacity',
  perServer: true,
  createState: () => ({ servers: new Map(), sweptAt: 0 }),
  weigh(config, servers, state, now) {
    if (now - state.sweptAt >= FORGET_AFTER_MS) {
      for (const [key, l] of state.servers) if (now - l.at >= FORGET_AFTER_MS) state.servers.delete(key);
      state.sweptAt = now;
    }
    return servers.map(({ key, metrics: m, sampleAt, windowMs }) => {
      const requests = m.rpsFractional;
      const rate = requests ?? m.tcpAcceptsPerSecond;
      if (rate === null) return { score: null, reason: 'no request or accepted-connection rate: mean' };
      const pressure = config.usePressure ? m.psiCpuSome : null;
      const byPressure = pressure !== null && pressure > m.cpuUtilization;
      // Above 1 a short window is aliasing, not load: a CPU quota is enforced per
      // period (100 ms), and a quarter second read 1.36 of the allowance.
      const load = Math.min(1, byPressure ? (pressure ?? 0) : m.cpuUtilization);
      const source = requests === null ? 'connection' : 'request';
      const l = learn(state.servers, key, { cpu: m.cpuUtilization, load, rate, source, connections: m.connections, throttled: m.cpuThrottled, at: sampleAt, windowMs }, config);
      const what = `${byPressure ? 'cpu pressure' : 'cpu'} ${fmt(l.scoreLoad)}`;
      if (l.longLived) {
        const spare = m.cores * Math.max(0, config.targetUtilization - Math.min(1, l.scoreLoad));
        return { score: spare, reason: `long-lived connections (${fmt(m.connections ?? 0)} established, ${fmt(l.rate)} accepted/s): ${what} of ${fmt(m.cores)} cores, ${fmt(spare)} spare to the target` };
      }
      if (l.cost === null) return { score: null, reason: `${fmt(l.scoreRate)} ${source}s/s at ${what}, cost not learned yet: mean` };
      const capacity = Math.max(0, l.scoreRate + (config.targetUtilization - l.scoreLoad) / l.cost);
      return { score: capacity, change: l.changed, reason: `${fmt(l.scoreRate)} ${source}s/s at ${what}, ${fmt(l.cost * 1000)}‰ cpu per ${source}/s: capacity ${fmt(capacity)}/s${l.changed ? ' (a change: taken at once)' : ''}` };
    });
  },
};

interface Reading {
  readonly cpu: number;
  /** The worse of CPU and CPU pressure. */
  readonly load: number;
  readonly rate: number;
  readonly source: RateSource;
  /** Established connections on the service's port, when known. */
  readonly connections: number | null;
  /** Fraction of the cgroup's CFS periods throttled over the window (null: not a cgroup scope). */
  readonly throttled: number | null;
  readonly at: number;
  readonly windowMs: number;
}

function learn(servers: Map<string, Learned>, key: string, r: Reading, config: CapacityConfig): Learned {
  const { cpu, load, rate, source, at } = r;
  let l = servers.get(key);
  if (l === undefined || l.source !== source) {
    l = { cpu, rate, scoreRate: rate, scoreLoad: load, covered: 0, cost: null, at, source, spread: 0, beyond: 0, before: { rate, load, spread: 0 }, last: { rate, load }, changed: false, scoreRequests: (rate * r.windowMs) / 1000, longLived: false };
    servers.set(key, l);
    return l;
  }
  const dt = at - l.at;
  if (dt <= 0) return l; // the sample already learned from
  const reference = l.beyond === 0 ? { rate: l.scoreRate, load: l.scoreLoad, spread: l.spread } : l.before;
  const sigmas = noiseSigmas(l, r, dt, reference);
  const atQuota = (r.throttled ?? 0) >= AT_QUOTA_THROTTLED;
  const confirm = l.beyond < 0 && atQuota ? CONFIRM_SIGMAS_AT_QUOTA : CHANGE_SIGMAS;
  l.changed = l.beyond !== 0 && sigmas * l.beyond > confirm;
  const falling = l.changed && l.beyond < 0;
  const newRate = falling ? Math.min(rate, l.last.rate) : rate;
  const newLoad = falling ? Math.max(load, l.last.load) : load;
  l.beyond = l.changed ? 0 : sigmas > CHANGE_SIGMAS ? 1 : sigmas < -CHANGE_SIGMAS ? -1 : 0;
  l.before = reference;
  l.last = { rate, load };
  // After a change the averages restart from its sample: until they hold
  // SCORE_FULL_REQUESTS, a sample counts by its share of the requests (the
  // second after a change half, where the half-life would give it a third).
  // Averages that hold no request yet (a server that accepted none since it
  // came or since a change) are replaced by the sample: 0 / 0 would make
  // them NaN for good, and the server would be scored as the mean.
  const requests = (rate * dt) / 1000;
  const held = l.scoreRequests + requests > 0 ? l.scoreRequests / (l.scoreRequests + requests) : 0;
  const keepScore = l.changed ? 0 : Math.min(2 ** -Math.max(requests / SCORE_HALF_LIFE_REQUESTS, dt / SCORE_MAX_HALF_LIFE_MS), held);
  l.scoreRequests = l.changed ? requests : Math.min(SCORE_FULL_REQUESTS, l.scoreRequests + requests);
  l.scoreRate = keepScore * l.scoreRate + (1 - keepScore) * newRate;
  l.scoreLoad = keepScore * l.scoreLoad + (1 - keepScore) * newLoad;
  const keep = 2 ** (-dt / CAPACITY_AVERAGE_HALF_LIFE_MS);
  l.cpu = keep * l.cpu + (1 - keep) * cpu;
  l.rate = keep * l.rate + (1 - keep) * rate;
  l.covered = Math.min(l.covered + dt, CAPACITY_AVERAGE_HALF_LIFE_MS);
  l.at = at;
  const wasLongLived = l.longLived;
  l.longLived = source === 'connection' && longLived(l, r.connections);
  if (wasLongLived && !l.longLived) {
    // Accepts count requests again: the cost is learned from them alone.
    l.cpu = cpu;
    l.rate = rate;
    l.covered = 0;
  }
  if (l.longLived || l.covered < CAPACITY_AVERAGE_HALF_LIFE_MS || l.cpu < config.minUtilization || l.rate <= 0) return l;
  const measured = l.cpu / l.rate;
  if (l.cost === null || measured <= l.cost) l.cost = measured;
  else l.cost *= (measured / l.cost) ** (1 - 2 ** (-dt / config.costHalfLife));
  return l;
}

/**
 * How far the reading's own capacity lies above (+) or below (−) the
 * averaged one (`reference`: as it was before the previous sample, when that
 * one lay beyond), in standard deviations of its noise: its requests'
 * Poisson noise, or what this server's samples have shown lately
 * (SPREAD_TO_SIGMA × their mean absolute deviation, as it was before the
 * previous sample if that one lay beyond), whichever is larger. The latter
 * covers what Poisson does not: CPU read in short windows under a quota, a
 * neighbour that itself comes and goes. 0 until the cost is learned.
 */
function noiseSigmas(l: Learned, r: Reading, dt: number, reference: Reference): number {
  if (l.cost === null || r.windowMs <= 0) return 0;
  const root = Math.sqrt(r.windowMs / 1000);
  const signed = r.rate - reference.rate + (reference.load - r.load) / l.cost;
  // The rate's Poisson noise, √n / window, times √window: the spread's unit.
  const poisson = Math.sqrt(Math.max(1, r.rate * root * root)) / root;
  const sigma = Math.max(poisson, SPREAD_TO_SIGMA * reference.spread);
  // Every sample counts, a change only up to the bound: a server whose every
  // sample scatters beyond it widens the bound until they fit, and one real
  // change widens it by little.
  l.spread += (1 - 2 ** (-dt / CAPACITY_AVERAGE_HALF_LIFE_MS)) * (Math.min(Math.abs(signed) * root, CHANGE_SIGMAS * sigma) - l.spread);
  return (signed * root) / sigma;
}

/** Little's law: established connections over accepted ones per second is how long they live. */
function longLived(l: Learned, connections: number | null): boolean {
  if (connections === null || connections <= 0) return false;
  return connections > l.rate * (l.longLived ? LONG_LIVED_CONNECTION_S / 2 : LONG_LIVED_CONNECTION_S);
}
