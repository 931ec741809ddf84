// Every policy that compiles is one the running poller can live with:
// durations a timer holds, expressions that cannot exhaust the stack,
// a stale deadline longer than the agents' interval, selectors without
// prototype keys, a bounded size, and errors that quote bounded excerpts.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  compilePolicy,
  defaultEngines,
  EXCERPT_CHARS,
  MAX_DURATION_MS,
  MAX_EXPRESSION_CHARS,
  MAX_EXPRESSION_DEPTH,
  MAX_POLICY_BYTES,
  MAX_POLICY_PROBLEMS,
  MAX_POLICY_SERVERS,
  MAX_PROBLEM_CHARS,
  parseExpression,
  PolicyError,
  readPolicyFile,
  expressionVariables,
  type CompiledService,
  type Variables,
  type VariableName,
} from '@loadfeed/poller';
import { harness } from '../helpers/policy-harness.js';

const engines = defaultEngines().limits();

const service = (extra = ''): string => `apiVersion: loadfeed/v1
services:
  - name: web
    engine: memory
    address: tcp 127.0.0.1:8080
    servers: [{ node: a, address: "127.0.0.1:9001" }]
${extra}`;

function problems(text: string): string[] {
  try {
    compilePolicy(text, 'p.yaml', engines);
  } catch (err) {
    if (err instanceof PolicyError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}

test('durations beyond what a timer holds are refused with the field and the bound', (t) => {
  t.deepEqual(problems(`reconcile: { every: 1000h }\n${service()}`), ['reconcile.every: "1000h" must be at most 24h, the longest duration loadfeed takes']);
  t.deepEqual(problems(`reconcile: { every: 1e308 }\n${service()}`), ['reconcile.every: 1e+308 must be at most 24h, the longest duration loadfeed takes']);
  t.deepEqual(problems(service('    stale: { action: hold, holdFor: 99999999999999999999h }\n')), ['services[0].stale.holdFor: "99999999999999999999h" must be at most 24h, the longest duration loadfeed takes']);
  t.deepEqual(problems(`reconcile: { every: 0 }\n${service()}`), ['reconcile.every: 0 must be at least 100ms']);
  t.deepEqual(problems(`agents: { interval: 10ms }\nliveness: { staleAfter: 1s }\n${service()}`), ['agents.interval: "10ms" must be at least 100ms']);
  t.true(MAX_DURATION_MS < 2 ** 31 - 1, 'within a Node timer');
  t.is(compilePolicy(`reconcile: { every: 24h }\n${service()}`, 'p.yaml', engines).reconcile.everyMs, MAX_DURATION_MS);
});

test('staleAfter must leave an agent half an interval of lateness', (t) => {
  t.deepEqual(problems(`liveness: { staleAfter: 0 }\n${service()}`), ['liveness.staleAfter: 0 must be at least 1.5 × agents.interval (1500ms), or live servers turn stale between samples']);
  t.deepEqual(problems(`liveness: { staleAfter: 1s }\n${service()}`).length, 1);
  t.is(compilePolicy(`liveness: { staleAfter: 1500ms }\n${service()}`, 'p.yaml', engines).liveness.staleAfterMs, 1500);
  t.is(compilePolicy(`agents: { interval: 200ms }\nliveness: { staleAfter: 300ms }\n${service()}`, 'p.yaml', engines).liveness.staleAfterMs, 300);
});

test('expressions of 20,000 terms are refused wherever they appear; deep nesting too', (t) => {
  const terms = Array.from({ length: 20_000 }, () => 'cpu').join(' + ');
  for (const [extra, where] of [
    [`    strategy: { name: expression, score: "${terms}" }\n`, 'services[0].strategy.score'],
    [`    guards: [{ when: "${terms}", weight: 0 }]\n`, 'services[0].guards[0].when'],
    [`    connectionLimit: "${terms}"\n`, 'services[0].connectionLimit'],
  ] as const) {
    const found = problems(service(extra));
    t.is(found.length, 1);
    t.true(found[0]?.startsWith(`${where}: "cpu + cpu`), found[0]);
    t.true(found[0]?.endsWith(`${terms.length} characters, at most ${MAX_EXPRESSION_CHARS}`), found[0]);
  }
  const parens = `${'('.repeat(MAX_EXPRESSION_DEPTH + 1)}cpu${')'.repeat(MAX_EXPRESSION_DEPTH + 1)}`;
  t.throws(() => parseExpression(parens), { message: /nests more than 64 levels/ });
  t.throws(() => parseExpression(`${'-'.repeat(MAX_EXPRESSION_DEPTH + 1)}cpu`), { message: /nests more than 64 levels/ });
  t.throws(() => parseExpression(Array.from({ length: MAX_EXPRESSION_DEPTH + 1 }, () => 'cpu').join('+')), { message: /nests more than 64 levels/ });
  t.throws(() => parseExpression(`${'max('.repeat(MAX_EXPRESSION_DEPTH)}cpu${')'.repeat(MAX_EXPRESSION_DEPTH)}`), { message: /nests more than 64 levels/ });
});

test('an expression at the bounds evaluates without running out of stack, even on a nearly full stack', (t) => {
  const chain = parseExpression(Array.from({ length: MAX_EXPRESSION_DEPTH - 1 }, () => 'cpu').join(' + '));
  const vars: Variables = { ...(Object.fromEntries(Object.keys(expressionVariables()).map((k) => [k, null])) as Record<VariableName, null>), app: {}, cpu: 0.5 };
  t.is(chain.evaluate(vars), (MAX_EXPRESSION_DEPTH - 1) * 0.5);
  // Evaluate from deep inside the stack: a bounded tree needs only a little more.
  const deep = (n: number): number | null => (n === 0 ? chain.evaluate(vars) : deep(n - 1));
  t.is(deep(5_000), (MAX_EXPRESSION_DEPTH - 1) * 0.5);
});

test('a __proto__ selector is refused, not compiled to an empty one that matches every agent', (t) => {
  for (const selector of ['{ __proto__: web }', '{ __proto__: web, role: db }', '{ "__proto__": { role: web } }']) {
    const proto = problems(service().replace('servers: [{ node: a, address: "127.0.0.1:9001" }]', `servers: [{ selector: ${selector}, port: 80 }]`));
    t.true(proto.includes('services[0].servers[0].selector: "__proto__" is not a label name'), `${selector}: ${proto.join('; ')}`);
  }
  // A computed key is an own property, as JSON.parse makes it.
  const json = problems(JSON.stringify({ apiVersion: 'loadfeed/v1', services: [{ name: 'web', engine: 'memory', address: 'tcp 127.0.0.1:8080', servers: [{ selector: { ['__proto__']: 'web' }, port: 80 }] }] }));
  t.true(json.includes('services[0].servers[0].selector: "__proto__" is not a label name'), json.join('; '));
  const empty = problems(service().replace('servers: [{ node: a, address: "127.0.0.1:9001" }]', 'servers: [{ selector: {}, port: 80 }]'));
  t.deepEqual(empty, ['services[0].servers[0].selector: needs at least one label (an empty selector would match every agent)']);
});

test('a selector on an Object method name matches only agents with that label', (t) => {
  const h = harness('    servers: [{ selector: { constructor: web }, port: 80 }]\n');
  const match = h.service.servers[0] as Extract<CompiledService['servers'][number], { by: 'selector' }>;
  t.is(Object.getPrototypeOf(match.selector), null);
  h.connect('bare', 1, { addresses: ['10.0.0.1'] });
  h.connect('labelled', 1, { addresses: ['10.0.0.2'], labels: { constructor: 'web' } });
  t.deepEqual(
    h.evaluate().map((d) => d.node),
    ['labelled'],
  );
});

test('policy size: a file over the limit is refused unread, servers beyond the limit are refused', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-bounds-'));
  const big = path.join(dir, 'big.yaml');
  writeFileSync(big, `${service()}# ${'x'.repeat(20 * 1024 * 1024)}\n`);
  const err = await t.throwsAsync(readPolicyFile(big), { instanceOf: PolicyError });
  t.regex(err?.message ?? '', /big\.yaml: \d+ bytes or more, at most 4194304/);
  t.true((err?.message.length ?? Infinity) < 300);
  t.throws(() => compilePolicy('#'.repeat(MAX_POLICY_BYTES + 1), 'p.yaml', engines), { message: /at most 4194304/ });

  const servers = (n: number): string =>
    Array.from({ length: n }, (_, i) => `      - { node: n${i}, address: "10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:80" }`).join('\n');
  const policy = (n: number): string => `apiVersion: loadfeed/v1\nservices:\n  - name: web\n    engine: memory\n    address: tcp 127.0.0.1:8080\n    servers:\n${servers(n)}\n`;
  const started = performance.now();
  t.is(compilePolicy(policy(MAX_POLICY_SERVERS), 'p.yaml', engines).services[0]?.servers.length, MAX_POLICY_SERVERS);
  t.log(`${MAX_POLICY_SERVERS} servers compile in ${(performance.now() - started).toFixed(0)} ms`);
  t.deepEqual(problems(policy(MAX_POLICY_SERVERS + 1)), [`services: ${MAX_POLICY_SERVERS + 1} server entries in all, at most ${MAX_POLICY_SERVERS} (docs/RELIABILITY.md)`]);
});

test('errors quote bounded excerpts and keep a bounded number of problems', (t) => {
  const long = 'y'.repeat(1024 * 1024);
  const one = problems(service(`    scheduler: "${long}"\n`));
  t.is(one.length, 1);
  t.true((one[0]?.length ?? Infinity) <= MAX_PROBLEM_CHARS + 60, `${one[0]?.length} characters`);
  t.true(one[0]?.includes(`"${'y'.repeat(EXCERPT_CHARS)}"… (${long.length} characters)`), one[0]);
  const unknown = problems(service(`    ${long}: 1\n`));
  t.true((unknown[0]?.length ?? Infinity) <= MAX_PROBLEM_CHARS + 60, `${unknown[0]?.length} characters`);
  const many = Array.from({ length: 50 }, (_, i) => `  - { name: s${i}, address: nonsense, servers: [] }`).join('\n');
  const all = problems(`apiVersion: loadfeed/v1\nservices:\n${many}\n`);
  t.is(all.length, MAX_POLICY_PROBLEMS + 1);
  t.regex(all.at(-1) ?? '', /^: and \d+ more problems$/);
});
