/**
 * bench:balance — balancing quality against the alternatives, in one run.
 *
 * Real backends (HTTP, `--work-ms` of CPU per request, one worker each),
 * each in its own network namespace with a cgroup CPU quota as its capacity
 * and its own agent in cgroup scope; traffic through the fast path or
 * Debian's HAProxy (`mode tcp`, static weights or weights from loadfeed's
 * `haproxy` engine); an open-loop Poisson load generator in its own process
 * measuring latency from each request's intended start. Every contender runs
 * every scenario with fresh backends, in an order rotated every repetition;
 * results are medians over `--reps` repetitions, with the spread.
 *
 * It must never leave a process, cgroup or namespace behind (see lib/).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { calibrate } from './lib/calibrate.js';
import { CpuCgroup, DEFAULT_CFS_PERIOD_US } from './lib/cgroup.js';
import { Children, firstLine, sleep, withCleanup } from './lib/children.js';
import { Cluster, HAPROXY_BACKEND, type Balancer, type BackendProgram, type BackendSpec, type HaproxyBalance } from './lib/cluster.js';
import { Histogram } from './lib/histogram.js';
import { benchLog, fmt, loadAverage1, machineLine, mean, median, quantile, QUICK, table, waitForQuietMachine } from './lib/measure.js';
import { NetNs } from './lib/netns.js';
import { plotSeries, plotShares } from './lib/plot.js';
import { LOADGEN_SCRIPT, parseRecords, type RequestRecord } from './lib/records.js';

const WORK_MS = 2;
/** Seconds per step of the load ramp (e). */
const DEFAULT_RAMP_STEP_S = 20;
/** A failed request counts as this latency in the percentiles (it is also counted as an error). */
const TIMEOUT_MS = 5_000;

// ---- policies ------------------------------------------------------------------------

const policyHead = (extra: string, top = ''): string => `apiVersion: loadfeed/v1
${top}services:
  - name: bench
    engine: fastpath
    address: tcp 127.0.0.1:0
${extra}    servers:
`;

const haproxyPolicyHead = (socket: string | null, extra: string): string => `apiVersion: loadfeed/v1
engines:
  haproxy: { socket: "${socket ?? ''}" }
services:
  - name: bench
    engine: haproxy
    address: ${HAPROXY_BACKEND}
${extra}    servers:
`;

/** HAProxy alone: `balance`, weights equal or by capacity (cores), health checks every second. */
const haproxyStatic = (balance: HaproxyBalance, byCapacity: boolean): Balancer & { readonly what: string } => ({
  what: `HAProxy ${balance}, static ${byCapacity ? 'weights by capacity' : 'equal weights'}, no agents`,
  kind: 'haproxy',
  balance,
  weight: (b) => (byCapacity ? Math.round(b.cores * 100) : 100),
});

/** HAProxy with `balance`, its weights written by loadfeed's defaults through the haproxy engine. */
const haproxyLoadfeed = (balance: HaproxyBalance, extra = ''): Balancer & { readonly what: string } => ({
  what: `HAProxy ${balance}, weights from loadfeed's defaults (haproxy engine)${extra ? `, ${extra.trim()}` : ''}`,
  kind: 'poller',
  haproxy: balance,
  policy: (s, socket) => haproxyPolicyHead(socket, extra) + s,
});

export const POLICIES: Readonly<Record<string, Balancer & { readonly what: string }>> = {
  'haproxy-leastconn': haproxyStatic('leastconn', false),
  'haproxy-leastconn-capacity': haproxyStatic('leastconn', true),
  'haproxy-roundrobin': haproxyStatic('roundrobin', false),
  'haproxy-roundrobin-capacity': haproxyStatic('roundrobin', true),
  'haproxy-loadfeed': haproxyLoadfeed('leastconn'),
  'haproxy-roundrobin-loadfeed': haproxyLoadfeed('roundrobin'),
  // Not in the default set: weights paced to 25 % of the range per second, so
  // trouble shorter than a few seconds is left to HAProxy's own leastconn.
  'haproxy-loadfeed-paced': haproxyLoadfeed('leastconn', '    maxChangePerSecond: 0.25\n'),
  'round-robin': { what: 'fast path swrr, equal fixed weights, no agents', kind: 'engine', scheduler: 'swrr', weight: () => 100 },
  'static-equal': {
    what: 'loadfeed poller, constant score (equal weights), swrr; quiesces dead agents',
    kind: 'poller',
    policy: (s) => policyHead('    scheduler: swrr\n    strategy: { name: expression, score: "1" }\n    slowStart: null\n') + s,
  },
  'static-capacity': {
    what: 'loadfeed poller, score = cores (the quota), swrr',
    kind: 'poller',
    policy: (s) => policyHead('    scheduler: swrr\n    strategy: { name: expression, score: "cores" }\n    slowStart: null\n') + s,
  },
  'least-connection': { what: 'fast path wlc, equal fixed weights, no agents', kind: 'engine', scheduler: 'wlc', weight: () => 100 },
  orca: {
    what: 'gRPC A58 weighted round robin (deploy/examples/policies/grpc-orca-baseline.yaml), swrr',
    kind: 'poller',
    policy: (s) =>
      policyHead(
        '    scheduler: swrr\n    strategy: { name: orca, blackoutPeriod: 10s, weightExpirationPeriod: 3m, errorUtilizationPenalty: 1.0 }\n' +
          '    smoothing: { halfLife: 0s }\n    deadband: 0\n    slowStart: null\n    meanBand: { min: 0.01, max: 10 }\n    weights: { min: 1, max: 1000 }\n',
      ) + s,
  },
  pid: { what: 'loadfeed pid strategy, defaults (swrr-sed)', kind: 'poller', policy: (s) => policyHead('    strategy: { name: pid }\n') + s },
  queue: {
    what: 'loadfeed queue strategy on the application\'s in_flight, latency_seconds and concurrency (swrr-sed)',
    kind: 'poller',
    policy: (s) => policyHead('    strategy: { name: queue }\n') + s,
  },
  // Not in the default set: queue without the agents' early reports on application metrics (what they bought), with agents
  // sampling 4 times a second (docs/policy.md's advice), and on other fast-path schedulers.
  'queue-no-early-app': {
    what: 'loadfeed queue strategy, agents reporting application metrics only every interval (--early-app-change 0)',
    kind: 'poller',
    policy: (s) => policyHead('    strategy: { name: queue }\n') + s,
    agentArgs: ['--early-app-change', '0'],
  },
  'queue-250ms': {
    what: 'loadfeed queue strategy, agents.interval 250ms',
    kind: 'poller',
    policy: (s) => policyHead('    strategy: { name: queue }\n', 'agents: { interval: 250ms }\n') + s,
  },
  'queue-wlc': {
    what: 'loadfeed queue strategy, scheduler wlc',
    kind: 'poller',
    policy: (s) => policyHead('    scheduler: wlc\n    strategy: { name: queue }\n') + s,
  },
  'queue-sed': {
    what: 'loadfeed queue strategy, scheduler sed',
    kind: 'poller',
    policy: (s) => policyHead('    scheduler: sed\n    strategy: { name: queue }\n') + s,
  },
  loadfeed: { what: "loadfeed's defaults: capacity, swrr-sed, half-life 2s (falling 250ms), deadband 5%, agents' early reports", kind: 'poller', policy: (s) => policyHead('') + s },
  // The defaults before the moving-trouble work (issue 18), pinned, to measure against in the same run.
  'loadfeed-before': {
    what: "loadfeed's defaults until 2026-12-07: headroom, swrr-sed, half-life 2s both ways, deadband 5%, no early reports",
    kind: 'poller',
    policy: (s) => policyHead('    strategy: { name: headroom }\n    smoothing: { halfLife: 2s, halfLifeDown: 2s }\n') + s,
    agentArgs: ['--early-change', '0'],
  },
  'loadfeed-headroom': {
    what: "loadfeed's defaults with the headroom strategy (what the strategy change bought)",
    kind: 'poller',
    policy: (s) => policyHead('    strategy: { name: headroom }\n') + s,
  },
  'loadfeed-no-early': {
    what: "loadfeed's defaults with agents reporting only every interval (what early reports bought)",
    kind: 'poller',
    policy: (s) => policyHead('') + s,
    agentArgs: ['--early-change', '0'],
  },
  // Not in the default set: what slow start costs a returning server ((d)).
  'loadfeed-slow-start-10s': {
    what: "loadfeed's defaults with slowStart { duration: 10s, from: 0.1 } (the default, pinned)",
    kind: 'poller',
    policy: (s) => policyHead('    slowStart: { duration: 10s, from: 0.1 }\n') + s,
  },
  'loadfeed-slow-start-2s': { what: "loadfeed's defaults with slowStart { duration: 2s, from: 0.1 }", kind: 'poller', policy: (s) => policyHead('    slowStart: { duration: 2s, from: 0.1 }\n') + s },
  'loadfeed-no-slow-start': { what: "loadfeed's defaults with slowStart null", kind: 'poller', policy: (s) => policyHead('    slowStart: null\n') + s },
  // Not in the default set: a faster rising half-life ((j): a slow one keeps scores that dip every few seconds near their dips).
  'loadfeed-half-life-500ms': { what: "loadfeed's defaults with smoothing.halfLife 500ms", kind: 'poller', policy: (s) => policyHead('    smoothing: { halfLife: 500ms }\n') + s },
  // Not in the default set: loadfeed's defaults on the other fast-path
  // scheduler, to tell the strategy's part from the scheduler's.
  'loadfeed-swrr': { what: "loadfeed's defaults with scheduler swrr", kind: 'poller', policy: (s) => policyHead('    scheduler: swrr\n') + s },
  'loadfeed-wlc': { what: "loadfeed's defaults with scheduler wlc", kind: 'poller', policy: (s) => policyHead('    scheduler: wlc\n') + s },
  'loadfeed-sed': { what: "loadfeed's defaults with scheduler sed", kind: 'poller', policy: (s) => policyHead('    scheduler: sed\n') + s },
  'loadfeed-swrr-sed': { what: "loadfeed's defaults with scheduler swrr-sed", kind: 'poller', policy: (s) => policyHead('    scheduler: swrr-sed\n') + s },
  'loadfeed-swrr-lead': { what: "loadfeed's defaults with scheduler swrr-lead", kind: 'poller', policy: (s) => policyHead('    scheduler: swrr-lead\n') + s },
  'loadfeed-peak-ewma': { what: "loadfeed's defaults with scheduler peak-ewma", kind: 'poller', policy: (s) => policyHead('    scheduler: peak-ewma\n') + s },
  'loadfeed-swrr-lc': { what: "loadfeed's defaults with scheduler swrr-lc", kind: 'poller', policy: (s) => policyHead('    scheduler: swrr-lc\n') + s },
  'loadfeed-swrr-lc-1s': {
    what: "loadfeed's defaults with scheduler swrr-lc and half-life 1s",
    kind: 'poller',
    policy: (s) => policyHead('    scheduler: swrr-lc\n    smoothing: { halfLife: 1s }\n') + s,
  },
};
/** Policies run when --policies is not given. */
const DEFAULT_POLICIES = [
  'haproxy-leastconn', 'haproxy-leastconn-capacity', 'haproxy-roundrobin-capacity', 'haproxy-loadfeed',
  'round-robin', 'static-equal', 'static-capacity', 'least-connection', 'orca', 'pid', 'loadfeed', 'loadfeed-before',
];

// ---- scenarios -----------------------------------------------------------------------

/** A part of the run: one or more spans [from, to) of seconds since the load started. */
interface Phase {
  readonly name: string;
  readonly spans: readonly (readonly [number, number])[];
}

const span = (name: string, fromS: number, toS: number): Phase => ({ name, spans: [[fromS, toS]] });

interface Scenario {
  readonly key: string;
  readonly title: string;
  readonly backends: readonly BackendSpec[];
  readonly durationS: number;
  /** [fromSecond, fraction of total capacity]. */
  readonly load: readonly (readonly [number, number])[];
  /** Window whose latency, errors and CPU are the scenario's headline figures. */
  readonly window: Phase;
  readonly phases: readonly Phase[];
  /** Print a row per phase under each contender's. */
  readonly phaseRows: boolean;
  /** Plot weights and per-backend latency over this span (a move of the trouble). */
  readonly zoom: readonly [number, number] | null;
  /** Things that happen during the run, at seconds from the start of the load. */
  readonly events: (cluster: Cluster, at: (s: number, fn: () => Promise<void> | void) => void, startEpoch: number) => Promise<void>;
  /** Requests per second the backends serve together, when their CPU quota is not what limits them. */
  readonly capacityRps?: number;
  /** A backend program other than the CPU-bound one; `tmp` is the run's directory. */
  readonly backend?: (tmp: string) => BackendProgram;
}

const HETERO: BackendSpec[] = [
  { id: 'b1', cores: 0.1 },
  { id: 'b2', cores: 0.2 },
  { id: 'b3', cores: 0.4 },
];
const EQUAL: BackendSpec[] = [
  { id: 'b1', cores: 0.2 },
  { id: 'b2', cores: 0.2 },
  { id: 'b3', cores: 0.2 },
];

// (f): pools of 2, 4 and 8 workers waiting POOL_DELAY_MS on a dependency; CPU is no limit.
const POOL_SIZES: Readonly<Record<string, number>> = { b1: 2, b2: 4, b3: 8 };
const POOL_DELAY_MS = 50;
const POOL: BackendSpec[] = [
  { id: 'b1', cores: 0.2 },
  { id: 'b2', cores: 0.2 },
  { id: 'b3', cores: 0.2 },
];
const POOL_BACKEND_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'balance-pool-backend.js');
/** Where the pool backend serves ORCA inside its own namespace. */
const POOL_ORCA_PORT = 8081;

function poolProgram(tmp: string, latencyWindowMs: number): BackendProgram {
  const socket = (id: string): string => path.join(tmp, `${id}-app.sock`);
  return {
    script: POOL_BACKEND_SCRIPT,
    args: (b) => [
      '--pool', String(POOL_SIZES[b.id] ?? 1), '--delay-ms', String(POOL_DELAY_MS), '--orca-port', String(POOL_ORCA_PORT), '--push', socket(b.id),
      '--latency-window-ms', String(latencyWindowMs),
    ],
    agentArgs: (b) => ['--orca', `127.0.0.1:${POOL_ORCA_PORT}`, '--app-socket', socket(b.id)],
  };
}

/**
 * Trouble that moves: an antagonist takes `fraction` of one backend's
 * allowance for `stintS`, then moves to the next backend, round and round
 * (`gapS` idle between stints). Phases are named after the sick backend and
 * gather all its stints.
 */
interface Moving {
  readonly key: string;
  readonly what: string;
  readonly backends: readonly BackendSpec[];
  readonly load: number;
  readonly fraction: number;
  readonly stintS: number;
  readonly gapS: number;
  /** Seconds of moving trouble, after a warm-up. */
  readonly lengthS: number;
}

const MOVING_WARM_S = 10;
const MOVING: readonly Moving[] = [
  // The issue's scenario: on the large backend the pool runs at its limit (0.49 of the 0.5 core left).
  { key: 'g', what: 'moves every 10 s, 1:2:4 at 0.7x, 50 % of the victim', backends: HETERO, load: 0.7, fraction: 0.5, stintS: 10, gapS: 0, lengthS: 30 },
  { key: 'h', what: 'moves every 3 s, 1:2:4 at 0.7x, 50 % of the victim', backends: HETERO, load: 0.7, fraction: 0.5, stintS: 3, gapS: 0, lengthS: 30 },
  { key: 'i', what: 'moves every 2 s, equal capacity at 0.6x, 60 % of the victim', backends: EQUAL, load: 0.6, fraction: 0.6, stintS: 2, gapS: 0, lengthS: 30 },
  // Bursts shorter than any reaction through weights: 0.5 s of 80 % every second, on the next backend each time.
  { key: 'j', what: 'bursts of 0.5 s every 1 s on the next backend, 1:2:4 at 0.7x, 80 % of the victim', backends: HETERO, load: 0.7, fraction: 0.8, stintS: 0.5, gapS: 0.5, lengthS: 30 },
];

function moving(m: Moving, s: (x: number) => number): Scenario {
  const warm = s(MOVING_WARM_S);
  const stint = s(m.stintS);
  const step = stint + s(m.gapS);
  const end = warm + s(m.lengthS);
  const n = m.backends.length;
  const spansOf = (k: number): [number, number][] => {
    const out: [number, number][] = [];
    for (let from = warm + k * step; from < end; from += n * step) out.push([from, Math.min(end, from + stint)]);
    return out;
  };
  return {
    key: m.key,
    title: `(${m.key}) moving neighbour: ${m.what}`,
    backends: m.backends,
    durationS: end,
    load: [[0, m.load]],
    window: span('moving', warm, end),
    phases: [
      ...m.backends.map((b, k) => ({ name: `${b.id} sick`, spans: spansOf(k) })),
      ...(m.gapS > 0 ? [{ name: 'between', spans: m.backends.flatMap((_, k) => spansOf(k).map(([, to]) => [to, Math.min(end, to + s(m.gapS))] as [number, number])) }] : []),
    ],
    phaseRows: true,
    // From before the antagonist reaches the last backend to after it leaves it.
    zoom: [warm + (n - 1) * step - Math.min(2, step), Math.min(end, warm + n * step + Math.min(4, step))],
    events: async (c, _at, start) => {
      await Promise.all(c.backends.map((b, k) => c.startNoise(b, m.fraction, start + (warm + k * step) * 1000, stint * 1000, (n * step - stint) * 1000)));
    },
  };
}

function scenarios(scale: number, rampStepS: number, poolLatencyWindowMs: number): Scenario[] {
  const s = (x: number): number => Math.round(x * scale * 10) / 10;
  const noiseOn = s(10);
  // Fine steps around full capacity, long enough for an overloaded backend's
  // queue to pass the 5 s timeout: 20 % too much on the 0.1-core backend
  // (~24 requests/s) queues ~5 requests a second, 5 s of them in ~25 s; 20 s steps (and what carries over to the next) bring most of it out.
  const ramp = [0.8, 0.9, 0.95, 1.0, 1.05, 1.1];
  const step = s(rampStepS);
  const warm = s(12);
  return [
    {
      key: 'a',
      title: '(a) heterogeneous capacity 1:2:4, 0.7x load',
      backends: HETERO,
      durationS: s(45),
      load: [[0, 0.7]],
      window: span('steady', s(15), s(45)),
      phases: [],
      phaseRows: false,
      zoom: null,
      events: async () => undefined,
    },
    {
      key: 'b',
      title: '(b) noisy neighbour on b2: 60 % of its allowance, 10 s on / 10 s off',
      backends: EQUAL,
      durationS: s(15) + 3 * 2 * noiseOn,
      load: [[0, 0.6]],
      window: span('noise', s(15), s(15) + 3 * 2 * noiseOn),
      phases: [0, 1, 2].flatMap((k) => [
        span(`on${k + 1}`, s(15) + 2 * k * noiseOn, s(15) + (2 * k + 1) * noiseOn),
        span(`off${k + 1}`, s(15) + (2 * k + 1) * noiseOn, s(15) + (2 * k + 2) * noiseOn),
      ]),
      phaseRows: false,
      zoom: null,
      events: async (c, _at, start) => {
        const victim = c.backends[1];
        if (victim) await c.startNoise(victim, 0.6, start + s(15) * 1000, noiseOn * 1000, noiseOn * 1000);
      },
    },
    {
      key: 'c',
      title: '(c) b3 slows down: 3x CPU per request from 15 s',
      backends: EQUAL,
      durationS: s(50),
      load: [[0, 0.6]],
      window: span('slow', s(15), s(50)),
      phases: [],
      phaseRows: false,
      zoom: null,
      events: async (c, at) => {
        at(s(15), () => {
          const b = c.backends[2];
          if (b) c.setWork(b, 3 * WORK_MS);
        });
      },
    },
    {
      key: 'd',
      title: '(d) b2 dies (backend and agent killed) at 15 s and returns at 30 s',
      backends: EQUAL,
      durationS: s(50),
      load: [[0, 0.6]],
      window: span('dies', s(15), s(50)),
      phases: [span('dead', s(15), s(30)), span('back', s(30), s(50))],
      phaseRows: false,
      zoom: null,
      events: async (c, at) => {
        const b = c.backends[1];
        if (!b) return;
        at(s(15), () => c.killHost(b));
        at(s(30), () => c.reviveHost(b));
      },
    },
    {
      key: 'e',
      title: `(e) load ramp ${ramp[0]}x..${ramp[ramp.length - 1]}x of capacity, 1:2:4`,
      backends: HETERO,
      durationS: warm + ramp.length * step,
      load: [[0, 0.6], ...ramp.map((r, i) => [warm + i * step, r] as const)],
      window: span('ramp', warm, warm + ramp.length * step),
      phases: ramp.map((r, i) => span(`${r}x`, warm + i * step, warm + (i + 1) * step)),
      phaseRows: true,
      zoom: null,
      events: async () => undefined,
    },
    {
      key: 'f',
      title: `(f) worker pools 2:4:8 on a ${POOL_DELAY_MS} ms dependency (CPU stays low), 0.5x load; the dependency of one backend after another turns 3x slower`,
      backends: POOL,
      capacityRps: Object.values(POOL_SIZES).reduce((a, n) => a + (n * 1000) / POOL_DELAY_MS, 0),
      backend: (tmp) => poolProgram(tmp, poolLatencyWindowMs),
      durationS: s(60),
      load: [[0, 0.5]],
      window: span('slowdowns', s(15), s(60)),
      phases: [
        span('b3 slow', s(15), s(30)),
        span('b2 slow', s(30), s(45)),
        span('b1 slow', s(45), s(60)),
      ],
      phaseRows: true,
      zoom: null,
      events: async (c, at) => {
        const [b1, b2, b3] = c.backends;
        if (!b1 || !b2 || !b3) return;
        const slow = (b: typeof b1, on: boolean): void => c.command(b, `delay ${on ? 3 * POOL_DELAY_MS : POOL_DELAY_MS}`);
        at(s(15), () => slow(b3, true));
        at(s(30), () => {
          slow(b3, false);
          slow(b2, true);
        });
        at(s(45), () => {
          slow(b2, false);
          slow(b1, true);
        });
      },
    },
    ...MOVING.map((m) => moving(m, s)),
  ];
}

// ---- one run ---------------------------------------------------------------------------

interface Second {
  /** Seconds since the load started. */
  readonly t: number;
  /** CPU used over the last second as a fraction of each backend's allowance. */
  readonly cpu: number[];
  readonly weights: number[];
}

/** How often the engine's weights are read for the weight traces. */
const WEIGHT_TRACE_MS = 200;

interface RunResult {
  readonly scenario: string;
  readonly policy: string;
  readonly rep: number;
  readonly seconds: Second[];
  /** The engine's weights every WEIGHT_TRACE_MS: [seconds since the load started, ...weights]. */
  readonly weightTrace: number[][];
  readonly records: RequestRecord[];
  readonly ids: string[];
}

async function runOne(ctx: Ctx, scenario: Scenario, policyName: string, rep: number): Promise<RunResult> {
  const balancer = POLICIES[policyName];
  if (!balancer) throw new Error(`unknown policy ${policyName}`);
  const cluster = new Cluster({
    children: ctx.children,
    root: ctx.root,
    run: `${scenario.key}-${policyName}-${rep}`,
    nets: ctx.nets,
    backends: scenario.backends,
    workMs: WORK_MS,
    periodUs: ctx.periodUs,
    ...(scenario.backend ? { backend: scenario.backend(ctx.tmp) } : {}),
    ...(ctx.keepRecords ? { trace: path.join(ctx.tmp, `${scenario.key}-${policyName}-${rep}.trace`) } : {}),
  });
  ctx.active = cluster;
  const timers: NodeJS.Timeout[] = [];
  try {
    await cluster.startBackends();
    await cluster.startBalancer(balancer);
    const capacity = scenario.capacityRps ?? scenario.backends.reduce((a, b) => a + b.cores * ctx.rpsPerCore, 0);
    const schedule = scenario.load.map(([from, f]) => [from, Math.round(f * capacity * 10) / 10]);
    const out = path.join(ctx.tmp, `${scenario.key}-${policyName}-${rep}.txt`);
    const gen = ctx.children.node('loadgen', LOADGEN_SCRIPT, [
      '--target', `${cluster.target.host}:${cluster.target.port}`,
      '--schedule', JSON.stringify(schedule),
      '--duration', String(scenario.durationS),
      '--out', out,
      '--timeout-ms', String(TIMEOUT_MS),
    ]);
    const startEpoch = Number(await firstLine(gen));
    // The poller's trace stamps samples with the agents' wall clock; this puts the scenario's events on it (bench:app-staleness).
    if (ctx.keepRecords) writeFileSync(path.join(ctx.tmp, `${scenario.key}-${policyName}-${rep}.start`), `${startEpoch}\n`);
    const at = (sec: number, fn: () => Promise<void> | void): void => {
      timers.push(setTimeout(() => void Promise.resolve(fn()).catch((err: unknown) => ctx.log(`event at ${sec}s failed: ${(err as Error).message}`)), Math.max(0, startEpoch + sec * 1000 - Date.now())));
    };
    await scenario.events(cluster, at, startEpoch);

    const weightTrace: number[][] = [];
    const tracer = setInterval(() => {
      void cluster.weights().then((w) => weightTrace.push([(Date.now() - startEpoch) / 1000, ...w]), () => undefined);
    }, WEIGHT_TRACE_MS);
    timers.push(tracer);
    const seconds: Second[] = [];
    let prevUsage = cluster.backends.map((b) => b.cgroup.usageUs());
    let prevAt = performance.now();
    const done = new Promise<void>((resolve) => gen.child.once('exit', () => resolve()));
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    while (!finished) {
      await Promise.race([sleep(1000 - ((Date.now() - startEpoch) % 1000)), done]);
      if (finished) break;
      const now = performance.now();
      const usage = cluster.backends.map((b) => b.cgroup.usageUs());
      const dt = (now - prevAt) * 1000;
      seconds.push({
        t: Math.round((Date.now() - startEpoch) / 100) / 10,
        cpu: cluster.backends.map((b, i) => (usage[i]! - prevUsage[i]!) / dt / b.cores),
        weights: await cluster.weights(),
      });
      prevUsage = usage;
      prevAt = now;
    }
    const records = parseRecords(readFileSync(out, 'utf8'));
    return { scenario: scenario.key, policy: policyName, rep, seconds, weightTrace, records, ids: scenario.backends.map((b) => b.id) };
  } finally {
    for (const t of timers) clearTimeout(t); // clears intervals too
    await cluster.stop();
    ctx.active = null;
  }
}

// ---- figures ---------------------------------------------------------------------------

export interface Figures {
  readonly requests: number;
  readonly errors: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  /** Max over backends of the mean CPU/allowance, over the mean of those. */
  readonly maxAvgCpu: number;
  /** p95 of per-second per-backend CPU/allowance over their mean. */
  readonly p95AvgCpu: number;
  /** Share of the responses served by each backend. */
  readonly shares: number[];
  /** Over repetitions: lowest and highest p99 (a single run's p99 for both). */
  readonly p99Min: number;
  readonly p99Max: number;
}

function figures(run: RunResult, phase: Phase): Figures {
  const h = new Histogram();
  let errors = 0;
  let n = 0;
  const served = run.ids.map(() => 0);
  const inPhase = (ms: number): boolean => phase.spans.some(([from, to]) => ms >= from * 1000 && ms < to * 1000);
  for (const r of run.records) {
    if (!inPhase(r.intendedMs)) continue;
    n++;
    if (r.outcome === 'ok') {
      h.record(r.latencyUs);
      const i = run.ids.indexOf(r.backend);
      if (i >= 0) served[i]!++;
    } else {
      errors++;
      h.record(Math.max(r.latencyUs, TIMEOUT_MS * 1000));
    }
  }
  const secs = run.seconds.filter((s) => phase.spans.some(([from, to]) => s.t > from && s.t <= to));
  const perBackend = run.ids.map((_, i) => mean(secs.map((s) => s.cpu[i] ?? Number.NaN)));
  const all = secs.flatMap((s) => s.cpu);
  const total = served.reduce((a, b) => a + b, 0);
  return {
    requests: n,
    errors,
    p50: h.quantile(0.5) / 1000,
    p99: h.quantile(0.99) / 1000,
    p999: h.quantile(0.999) / 1000,
    maxAvgCpu: Math.max(...perBackend) / mean(perBackend),
    p95AvgCpu: quantile(all, 0.95) / mean(all),
    shares: served.map((x) => (total > 0 ? x / total : 0)),
    p99Min: h.quantile(0.99) / 1000,
    p99Max: h.quantile(0.99) / 1000,
  };
}

function medianFigures(fs: readonly Figures[]): Figures {
  const m = (k: keyof Omit<Figures, 'shares' | 'p99Min' | 'p99Max'>): number => median(fs.map((f) => f[k]));
  return {
    requests: m('requests'),
    errors: m('errors'),
    p50: m('p50'),
    p99: m('p99'),
    p999: m('p999'),
    maxAvgCpu: m('maxAvgCpu'),
    p95AvgCpu: m('p95AvgCpu'),
    shares: (fs[0]?.shares ?? []).map((_, i) => median(fs.map((f) => f.shares[i] ?? Number.NaN))),
    p99Min: Math.min(...fs.map((f) => f.p99Min)),
    p99Max: Math.max(...fs.map((f) => f.p99Max)),
  };
}

/** p99 of each backend's responses per `stepS`, by intended start: [t, ...p99 ms] (NaN where a backend served none). */
function backendP99OverTime(run: RunResult, stepS: number): number[][] {
  const buckets = new Map<number, Histogram[]>();
  for (const r of run.records) {
    const i = run.ids.indexOf(r.backend);
    if (r.outcome !== 'ok' || i < 0) continue;
    const k = Math.floor(r.intendedMs / 1000 / stepS);
    const hs = buckets.get(k) ?? run.ids.map(() => new Histogram());
    hs[i]!.record(r.latencyUs);
    buckets.set(k, hs);
  }
  return [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([k, hs]) => [(k + 0.5) * stepS, ...hs.map((h) => (h.count > 0 ? h.quantile(0.99) / 1000 : Number.NaN))]);
}

/**
 * Steady-state weight wobble over a phase: for each backend, the mean
 * absolute change between consecutive weight readings per second, as a
 * fraction of its mean weight; the largest over backends.
 */
function wobble(run: RunResult, phase: Phase): number {
  const pts = run.weightTrace.filter(([t]) => phase.spans.some(([from, to]) => (t ?? 0) >= from && (t ?? 0) < to));
  if (pts.length < 2) return Number.NaN;
  const perS = run.ids.map((_, i) => {
    let moved = 0;
    for (let k = 1; k < pts.length; k++) moved += Math.abs((pts[k]![i + 1] ?? 0) - (pts[k - 1]![i + 1] ?? 0));
    const seconds = (pts[pts.length - 1]![0]! - pts[0]![0]!) || 1;
    return moved / seconds / (mean(pts.map((p) => p[i + 1] ?? 0)) || 1);
  });
  return Math.max(...perS);
}

/** Weight changes per minute seen in the trace over a phase (all backends together). */
function weightChanges(run: RunResult, phase: Phase): number {
  const pts = run.weightTrace.filter(([t]) => phase.spans.some(([from, to]) => (t ?? 0) >= from && (t ?? 0) < to));
  let n = 0;
  for (let k = 1; k < pts.length; k++) for (let i = 1; i < (pts[k]?.length ?? 0); i++) if (pts[k]![i] !== pts[k - 1]![i]) n++;
  const seconds = pts.length > 1 ? pts[pts.length - 1]![0]! - pts[0]![0]! : 0;
  return seconds > 0 ? (n * 60) / seconds : 0;
}

/** Per second: each backend's share of the responses to requests meant to start in that second. */
function sharesOverTime(run: RunResult): { t: number; shares: number[] }[] {
  const buckets = new Map<number, number[]>();
  for (const r of run.records) {
    const i = run.ids.indexOf(r.backend);
    if (r.outcome !== 'ok' || i < 0) continue;
    const sec = Math.floor(r.intendedMs / 1000);
    const b = buckets.get(sec) ?? run.ids.map(() => 0);
    b[i]!++;
    buckets.set(sec, b);
  }
  return [...buckets.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, c]) => {
      const total = c.reduce((a, b) => a + b, 0);
      return { t: t + 0.5, shares: c.map((x) => x / total) };
    });
}

// ---- main --------------------------------------------------------------------------------

interface Ctx {
  readonly children: Children;
  readonly root: CpuCgroup;
  readonly nets: NetNs[];
  readonly tmp: string;
  readonly periodUs: number;
  readonly keepRecords: boolean;
  rpsPerCore: number;
  active: Cluster | null;
  log(s: string): void;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenarios: { type: 'string', default: QUICK ? 'a,g' : 'a,b,c,d,e,g,h,i,j' },
      policies: { type: 'string', default: QUICK ? 'haproxy-leastconn,haproxy-loadfeed,loadfeed' : DEFAULT_POLICIES.join(',') },
      reps: { type: 'string', default: '1' },
      scale: { type: 'string', default: QUICK ? '0.25' : '1' },
      /** Length of each step of the load ramp (e), before --scale. */
      'ramp-step-s': { type: 'string', default: String(DEFAULT_RAMP_STEP_S) },
      'period-us': { type: 'string', default: String(DEFAULT_CFS_PERIOD_US) },
      /** (f): the span over which the pool backends average the latency they report (docs/policy.md advises a short one). */
      'pool-latency-window-ms': { type: 'string', default: '1000' },
      'out-dir': { type: 'string', default: QUICK ? path.join(tmpdir(), `loadfeed-bench-${process.pid}`) : 'docs/bench' },
      'max-load': { type: 'string', default: QUICK ? '100' : '0.7' },
      json: { type: 'boolean', default: false },
      /** Keep the load generator's per-request records and each poller's trace of its agents (in the system's temporary directory). */
      'keep-records': { type: 'boolean', default: false },
      /** Goes into the output files' names (as the other benches' --label), so runs of one day do not overwrite each other. */
      label: { type: 'string', default: '' },
    },
  });
  const reps = Number(values.reps);
  const wanted = values.scenarios.split(',');
  const policyNames = values.policies.split(',');
  for (const p of policyNames) if (!POLICIES[p]) throw new Error(`--policies: unknown ${p} (known: ${Object.keys(POLICIES).join(', ')})`);
  const list = scenarios(Number(values.scale), Number(values['ramp-step-s']), Number(values['pool-latency-window-ms'])).filter((s) => wanted.includes(s.key));
  const outDir = values['out-dir'];
  mkdirSync(outDir, { recursive: true });
  const log = benchLog('balance');

  const children = new Children();
  const root = CpuCgroup.root('loadfeed-bench');
  const nets: NetNs[] = [];
  const ctx: Ctx = { children, root, nets, tmp: path.join(tmpdir(), `loadfeed-balance-${process.pid}`), periodUs: Number(values['period-us']), keepRecords: values['keep-records'], rpsPerCore: 0, active: null, log };
  mkdirSync(ctx.tmp, { recursive: true });
  await withCleanup(
    async () => {
      await ctx.active?.stop().catch(() => undefined);
      await children.close();
      root.remove();
      for (const n of nets) n.remove();
      if (values['keep-records']) log(`per-request records and poller traces kept in ${ctx.tmp}`);
      else rmSync(ctx.tmp, { recursive: true, force: true });
    },
    async () => {
      const loadBefore = await waitForQuietMachine(Number(values['max-load']), 20 * 60_000, log);
      for (let i = 1; i <= 3; i++) nets.push(NetNs.create(i));
      ctx.rpsPerCore = await calibrate({
        children, root, nets, periodUs: ctx.periodUs, workMs: WORK_MS,
        records: path.join(ctx.tmp, 'calibrate.txt'),
        track: (c) => { ctx.active = c; },
      });
      log(`calibrated: ${ctx.rpsPerCore.toFixed(0)} requests/s per core of backend (nominal ${1000 / WORK_MS}); load average ${loadBefore}`);
      const started = new Date();
      const results: RunResult[] = [];
      for (let rep = 0; rep < reps; rep++) {
        for (const sc of list) {
          // Rotate the order every repetition so no policy always runs first or last.
          const order = policyNames.map((_, i) => policyNames[(i + rep) % policyNames.length] as string);
          for (const p of order) {
            log(`rep ${rep + 1}/${reps} ${sc.title}: ${p}`);
            results.push(await runOne(ctx, sc, p, rep));
          }
        }
      }
      const loadAfter = loadAverage1();
      report({ results, list, policyNames, outDir, label: values.label, started, loadBefore, loadAfter, reps, ctx, json: values.json, log });
    },
  );
}

interface ReportInput {
  readonly results: RunResult[];
  readonly list: Scenario[];
  readonly policyNames: string[];
  readonly outDir: string;
  readonly label: string;
  readonly started: Date;
  readonly loadBefore: number;
  readonly loadAfter: number;
  readonly reps: number;
  readonly ctx: Ctx;
  readonly json: boolean;
  log(s: string): void;
}

function report(r: ReportInput): void {
  const out: Record<string, unknown> = {
    bench: 'balance',
    date: r.started.toISOString(),
    machine: machineLine(),
    loadAverage: { before: r.loadBefore, after: r.loadAfter },
    quick: QUICK,
    reps: r.reps,
    workMs: WORK_MS,
    cfsPeriodUs: r.ctx.periodUs,
    rpsPerCore: Math.round(r.ctx.rpsPerCore),
    policies: Object.fromEntries(r.policyNames.map((p) => [p, POLICIES[p]?.what])),
    scenarios: {} as Record<string, unknown>,
  };
  const lines: string[] = [
    `bench:balance  ${r.started.toISOString()}  ${machineLine()}`,
    `load average ${r.loadBefore} before, ${r.loadAfter} after; ${r.reps} repetition(s), medians; backend ${WORK_MS} ms CPU/request, ${Math.round(r.ctx.rpsPerCore)} req/s per core measured; failures count as ${TIMEOUT_MS / 1000} s`,
  ];
  for (const sc of r.list) {
    const rows: string[][] = [];
    const perPolicy: Record<string, unknown> = {};
    for (const p of r.policyNames) {
      const runs = r.results.filter((x) => x.scenario === sc.key && x.policy === p);
      if (runs.length === 0) continue;
      const f = medianFigures(runs.map((x) => figures(x, sc.window)));
      const phases = Object.fromEntries(sc.phases.map((ph) => [ph.name, medianFigures(runs.map((x) => figures(x, ph)))]));
      const changes = median(runs.map((x) => weightChanges(x, sc.window)));
      const wob = median(runs.map((x) => wobble(x, sc.window)));
      perPolicy[p] = { ...f, phases, weightChangesPerMinute: changes, wobblePerSecond: wob };
      const row = (name: string, g: Figures): string[] => [
        name, String(g.requests), String(g.errors), fmt(g.p50), fmt(g.p99), r.reps > 1 ? `${fmt(g.p99Min)}–${fmt(g.p99Max)}` : '', fmt(g.p999), fmt(g.maxAvgCpu, 2), fmt(g.p95AvgCpu, 2), g.shares.map((x) => fmt(x * 100, 0)).join('/'),
      ];
      rows.push([...row(p, f), fmt(changes, 0), fmt(wob * 100, 1)]);
      if (sc.phaseRows) rows.push(...sc.phases.map((ph) => [...row(`  ${ph.name}`, phases[ph.name] as Figures), '', '']));
      const first = runs[0];
      if (first) perPolicy[p] = { ...(perPolicy[p] as object), sharesOverTime: sharesOverTime(first), seconds: first.seconds, weightTrace: first.weightTrace };
    }
    (out['scenarios'] as Record<string, unknown>)[sc.key] = { title: sc.title, window: sc.window, phases: sc.phases, backends: sc.backends, policies: perPolicy };
    lines.push('', `${sc.title}  [window ${sc.window.spans.map(([a, b]) => `${a}-${b}`).join(', ')} s]`);
    lines.push(table(['policy', 'requests', 'errors', 'p50 ms', 'p99 ms', 'p99 range', 'p99.9 ms', 'max/avg cpu', 'p95/avg cpu', 'share % ' + sc.backends.map((b) => b.id).join('/'), 'weight changes/min', 'wobble %/s'], rows));
  }
  lines.push('', ...verdicts(out['scenarios'] as Record<string, { policies: Record<string, Figures & { phases: Record<string, Figures> }> }>));
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  const stamp = QUICK ? 'quick' : `${r.started.toISOString().slice(0, 10)}${r.label ? `-${r.label}` : ''}`;
  const suffix = QUICK ? '-quick' : r.label ? `-${r.label}` : '';
  writeFileSync(path.join(r.outDir, `balance-${stamp}.json`), JSON.stringify(out, null, 1));
  writeFileSync(path.join(r.outDir, `balance-${stamp}.txt`), `${text}\n`);
  for (const sc of r.list) {
    const runs = r.policyNames.map((p) => r.results.find((x) => x.scenario === sc.key && x.policy === p)).filter((x): x is RunResult => x !== undefined);
    const png = plotShares(
      path.join(r.outDir, `balance-${sc.key}${suffix}.png`),
      sc.title,
      sc.backends.map((b) => `${b.id} (${b.cores} core)`),
      runs.map((run) => ({ name: run.policy, series: sharesOverTime(run) })),
    );
    if (png) r.log(`plot: ${png}`);
    if (sc.zoom === null) continue;
    const [from, to] = sc.zoom;
    const within = (pts: number[][]): { t: number; values: number[] }[] => pts.filter(([t]) => (t ?? 0) >= from && (t ?? 0) <= to).map(([t, ...v]) => ({ t: t ?? 0, values: v }));
    const names = sc.backends.map((b) => `${b.id} (${b.cores} core)`);
    for (const [kind, label, series] of [
      ['weights', 'weight in the engine', (run: RunResult) => within(run.weightTrace)],
      ['p99', 'p99 latency per backend, ms (1 s buckets, log scale)', (run: RunResult) => within(backendP99OverTime(run, 1))],
    ] as const) {
      const plot = plotSeries(
        path.join(r.outDir, `balance-${sc.key}-${kind}${suffix}.png`),
        `${sc.title}, ${from}-${to} s`,
        label,
        names,
        runs.map((run) => ({ name: run.policy, series: series(run) })),
        kind === 'p99',
      );
      if (plot) r.log(`plot: ${plot}`);
    }
  }
}

/** The issue's targets for loadfeed's default, as ratios in this run. */
function verdicts(sc: Record<string, { policies: Record<string, Figures & { phases: Record<string, Figures> }> }>): string[] {
  const out = ['targets (loadfeed default):'];
  const get = (s: string, p: string): (Figures & { phases: Record<string, Figures> }) | undefined => sc[s]?.policies[p];
  const lf = get('b', 'loadfeed');
  if (lf) {
    for (const [other, factor] of [['static-equal', 2], ['round-robin', 2], ['orca', 1], ['least-connection', 1]] as const) {
      const o = get('b', other);
      if (!o) continue;
      const ratio = o.p99 / lf.p99;
      out.push(`  (b) p99 ${other} / loadfeed = ${fmt(ratio, 2)} (target > ${factor === 2 ? '>= 2' : '1'}): ${ratio >= factor && (factor === 2 || ratio > 1) ? 'MET' : 'MISSED'}`);
    }
  }
  const q = get('f', 'queue');
  if (q) {
    // The issue's goal is against least-connection and headroom (CPU); loadfeed's default (capacity) and orca for comparison.
    for (const other of ['least-connection', 'loadfeed-headroom', 'orca', 'loadfeed']) {
      const o = get('f', other);
      if (!o) continue;
      const ratio = o.p99 / q.p99;
      const target = other === 'least-connection' || other === 'loadfeed-headroom' ? 2 : null;
      out.push(`  (f) p99 ${other} / queue = ${fmt(ratio, 2)}${target === null ? ' (for comparison)' : ` (target >= ${target}): ${ratio >= target ? 'MET' : 'MISSED'}`}`);
    }
  }
  for (const m of MOVING) {
    const lf = get(m.key, 'loadfeed');
    const lc = get(m.key, 'haproxy-leastconn');
    if (!lf || !lc) continue;
    const phases = Object.keys(lf.phases);
    const ratios = [['all', lf.p99 / lc.p99] as const, ...phases.map((ph) => [ph, (lf.phases[ph]?.p99 ?? Number.NaN) / (lc.phases[ph]?.p99 ?? Number.NaN)] as const)];
    const worst = Math.max(...ratios.map(([, x]) => x));
    out.push(`  (${m.key}) p99 loadfeed / HAProxy leastconn: ${ratios.map(([ph, x]) => `${ph} ${fmt(x, 2)}`).join(', ')}: better ${worst < 1 ? 'MET' : 'MISSED'}, at most half ${worst <= 0.5 ? 'MET' : 'MISSED'}`);
    const hl = get(m.key, 'haproxy-loadfeed');
    if (hl) out.push(`  (${m.key}) p99 HAProxy leastconn with loadfeed's weights / without: ${fmt(hl.p99 / lc.p99, 2)}: ${hl.p99 <= lc.p99 ? 'MET' : 'MISSED'}`);
  }
  const a = get('a', 'loadfeed');
  if (a) out.push(`  (a) max/avg CPU = ${fmt(a.maxAvgCpu, 3)} (target <= 1.05): ${a.maxAvgCpu <= 1.05 ? 'MET' : 'MISSED'}`);
  const e = sc['e'];
  if (e) {
    const steps = Object.keys(get('e', 'loadfeed')?.phases ?? {});
    const cleanUpTo = (p: string): number => {
      let k = -1;
      steps.forEach((s, i) => {
        if ((e.policies[p]?.phases[s]?.errors ?? 1) === 0 && k === i - 1) k = i;
      });
      return k;
    };
    const best = Math.max(...Object.keys(e.policies).filter((p) => !p.startsWith('loadfeed')).map(cleanUpTo));
    const mine = cleanUpTo('loadfeed');
    if (steps.length > 0) out.push(`  (e) error-free up to ${steps[mine] ?? 'none'}; best other policy up to ${steps[best] ?? 'none'}: ${mine >= best ? 'MET' : 'MISSED'}`);
  }
  return out;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:balance failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
