// Fuzz the policy compiler: arbitrary text and structurally plausible but
// hostile documents. It either compiles or throws a PolicyError whose every
// problem names the file; nothing else escapes, nothing hangs. And whatever
// compiles is a policy the running poller can live with: durations a timer
// holds, no resync that spins, a stale deadline the agents can meet,
// expressions that evaluate without exhausting the stack, no selector that
// matches every agent.
import test from 'ava';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { compilePolicy, defaultEngines, expressionVariables, PolicyError, type CompiledPolicy, type Expression, type Variables, type VariableName } from '@loadfeed/poller';

const RUNS = Number(process.env['LOADFEED_FUZZ_RUNS'] ?? 10_000);
const limits = defaultEngines().limits();

function compiles(text: string): boolean {
  try {
    const p = compilePolicy(text, 'fuzz.yaml', limits);
    return p.services.length > 0;
  } catch (err) {
    return err instanceof PolicyError && err.problems.length > 0 && err.problems.every((p) => p.file === 'fuzz.yaml' && p.message !== '');
  }
}

test('arbitrary text', (t) => {
  fc.assert(fc.property(fc.string({ maxLength: 400 }), compiles), { numRuns: RUNS });
  t.pass();
});

const scalar = fc.oneof(fc.string({ maxLength: 30 }), fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.constantFrom('2s', '-1s', 'tcp 10.0.0.1:80', '10.0.0.2:80', 'headroom', 'mem > 0.9', '__proto__', 'constructor'));
const service = fc.record(
  {
    name: fc.oneof(fc.constant('web'), fc.string({ maxLength: 70 })),
    engine: fc.constantFrom('fastpath', 'memory', 'haproxy', 'lvs', ''),
    address: fc.oneof(fc.constant('tcp 10.0.0.1:80'), fc.string({ maxLength: 40 })),
    servers: fc.array(fc.dictionary(fc.constantFrom('node', 'address', 'selector', 'port', 'extra'), scalar, { maxKeys: 4 }), { maxLength: 4 }),
    strategy: fc.record({ name: fc.constantFrom('headroom', 'orca', 'pid', 'connections', 'expression', 'bogus'), score: fc.string({ maxLength: 40 }), kp: scalar }, { requiredKeys: [] }),
    weights: fc.dictionary(fc.constantFrom('min', 'max', 'quantum'), scalar, { maxKeys: 3 }),
    guards: fc.array(fc.record({ when: fc.string({ maxLength: 40 }), weight: scalar }), { maxLength: 3 }),
    shareCap: scalar,
    slowStart: fc.oneof(fc.constant(null), fc.dictionary(fc.constantFrom('duration', 'from'), scalar)),
    '__proto__': scalar,
  },
  { requiredKeys: [] },
);

test('hostile documents', (t) => {
  fc.assert(
    fc.property(fc.record({ apiVersion: fc.constantFrom('loadfeed/v1', 'v2', 1), services: fc.array(service, { maxLength: 3 }), liveness: fc.dictionary(fc.string({ maxLength: 10 }), scalar) }, { requiredKeys: [] }), (doc) =>
      compiles(stringify(doc)) && compiles(JSON.stringify(doc)),
    ),
    { numRuns: RUNS },
  );
  t.pass();
});

/** The longest delay a Node timer holds; beyond it Node fires after 1 ms. */
const TIMER_MAX_MS = 2 ** 31 - 1;

/** Why the running poller could not live with `p`, or null. */
function unlivable(p: CompiledPolicy): string | null {
  const durations: [string, number][] = [
    ['liveness.staleAfter', p.liveness.staleAfterMs],
    ['liveness.restartGrace', p.liveness.restartGraceMs],
    ['agents.interval', p.agents.intervalMs],
    ['reconcile.every', p.reconcile.everyMs],
    ['engines.fastpath.connectTimeout', p.engines.fastpath.connectTimeout],
    ['engines.fastpath.downPeriod', p.engines.fastpath.downPeriod],
    ['engines.haproxy.timeout', p.engines.haproxy.timeout],
  ];
  for (const s of p.services) {
    durations.push(['smoothing.halfLife', s.smoothing.halfLifeMs], ['blackout', s.blackoutMs], ['stale.holdFor', s.stale.holdForMs]);
    if (s.slowStart) durations.push(['slowStart.duration', s.slowStart.durationMs]);
  }
  for (const [field, ms] of durations) if (!(Number.isFinite(ms) && ms >= 0 && ms <= TIMER_MAX_MS)) return `${field}: ${ms} ms does not fit a timer`;
  if (p.reconcile.everyMs < 1) return `reconcile.every: ${p.reconcile.everyMs} ms resyncs without pause`;
  if (p.liveness.staleAfterMs <= p.agents.intervalMs) return `liveness.staleAfter ${p.liveness.staleAfterMs} ms <= agents.interval ${p.agents.intervalMs} ms: live servers flap to stale`;
  const vars: Variables = { ...(Object.fromEntries(Object.keys(expressionVariables()).map((k) => [k, 0.5])) as Record<VariableName, number>), app: {} };
  for (const s of p.services) {
    const expressions: Expression[] = [...s.guards.map((g) => g.when), ...(s.connectionLimit ? [s.connectionLimit] : []), ...(s.strategy.name === 'expression' ? [s.strategy.score] : [])];
    for (const e of expressions) {
      try {
        e.evaluate(vars);
      } catch (err) {
        return `${e.source.slice(0, 40)}… (${e.source.length} characters): ${(err as Error).message}`;
      }
    }
    for (const m of s.servers) if (m.by === 'selector' && Object.keys(m.selector).length === 0) return 'an empty selector matches every agent';
  }
  return null;
}

/** Mostly durations that compile (`sane`), so documents get past the schema; the rest hostile. */
const durationValue = (sane: readonly string[]) =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...sane), weight: 12 },
    { arbitrary: fc.double(), weight: 1 },
    { arbitrary: fc.integer(), weight: 1 },
    { arbitrary: fc.tuple(fc.nat({ max: 10_000_000 }), fc.constantFrom('ms', 's', 'm', 'h')).map(([n, unit]) => `${n}${unit}`), weight: 1 },
    { arbitrary: fc.constantFrom('1000h', 1e308, '0', 0, '1e308', '99999999999999999999h'), weight: 1 },
  );
const term = fc.constantFrom('cpu', 'mem', '1', 'max(cpu, mem)', 'cores * (1 - cpu)');
/** Expressions from one term to 30,000: chains of an operator, or nested parentheses and negations. */
const expressionText = fc.oneof(
  { arbitrary: term, weight: 9 },
  fc.tuple(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom(' + ', ' * ', ' && ', ' || ', ' - ', ' > '), term).map(([n, op, t]) => Array.from({ length: n }, () => t).join(op)),
  fc.tuple(fc.integer({ min: 1, max: 30_000 }), term).map(([n, t]) => `${'('.repeat(n)}${t}${')'.repeat(n)}`),
  fc.tuple(fc.integer({ min: 1, max: 30_000 }), term).map(([n, t]) => `${'-'.repeat(n)}${t}`),
);
const labelKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'role', 'app.kubernetes.io/name', ''), fc.string({ maxLength: 10 }));
/** A selector as flow YAML, so that keys such as __proto__ reach the parser as written. */
const selectorText = fc.array(fc.tuple(labelKey, fc.oneof(fc.constantFrom('web', ''), fc.string({ maxLength: 10 }))), { maxLength: 3 }).map((pairs) => `{ ${pairs.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')} }`);

const livePolicy = fc
  .record({
    staleAfter: durationValue(['2s', '5s', '1m']),
    interval: durationValue(['100ms', '200ms', '1s']),
    every: durationValue(['100ms', '1s', '1m']),
    holdFor: durationValue(['0s', '10s', '1h']),
    score: fc.option(expressionText, { nil: null, freq: 2 }),
    when: fc.option(expressionText, { nil: null, freq: 2 }),
    connectionLimit: fc.option(expressionText, { nil: null, freq: 2 }),
    selector: fc.option(selectorText, { nil: null, freq: 2 }),
  })
  .map(
    (g) => `apiVersion: loadfeed/v1
liveness: { staleAfter: ${JSON.stringify(g.staleAfter)} }
agents: { interval: ${JSON.stringify(g.interval)} }
reconcile: { every: ${JSON.stringify(g.every)} }
services:
  - name: web
    engine: fastpath
    address: tcp 10.0.0.1:80
    stale: { action: hold, holdFor: ${JSON.stringify(g.holdFor)} }
${g.score === null ? '' : `    strategy: { name: expression, score: ${JSON.stringify(g.score)} }\n`}${g.when === null ? '' : `    guards: [{ when: ${JSON.stringify(g.when)}, weight: 0 }]\n`}${g.connectionLimit === null ? '' : `    connectionLimit: ${JSON.stringify(g.connectionLimit)}\n`}    servers:
      - { node: a, address: "10.0.0.2:80" }
${g.selector === null ? '' : `      - { selector: ${g.selector}, port: 80 }\n`}`,
  );

test('whatever compiles, the running poller can live with: durations, expressions, stale deadline, selectors', (t) => {
  let compiled = 0;
  fc.assert(
    fc.property(livePolicy, (text) => {
      let p: CompiledPolicy;
      try {
        p = compilePolicy(text, 'fuzz.yaml', limits);
      } catch (err) {
        if (err instanceof PolicyError) return true;
        throw err;
      }
      compiled += 1;
      const why = unlivable(p);
      if (why !== null) throw new Error(why);
      return true;
    }),
    // Each document may carry three 30,000-term expressions: fewer runs than the cheap properties.
    { numRuns: Math.max(100, Math.ceil(RUNS / 20)) },
  );
  t.true(compiled > 0, 'some documents compiled');
  t.log(`${compiled} documents compiled and were checked`);
});
