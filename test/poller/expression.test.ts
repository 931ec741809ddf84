import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parseExpression, ExpressionError, expressionVariables, type Variables, type VariableName } from '@loadfeed/poller';

const vars = (over: Partial<Variables> = {}): Variables => ({
  ...(Object.fromEntries(Object.keys(expressionVariables()).map((k) => [k, 0])) as Record<VariableName, number>),
  app: {},
  ...over,
});

const CASES: [string, Partial<Variables>, number | null][] = [
  ['1 + 2 * 3', {}, 7],
  ['(1 + 2) * 3', {}, 9],
  ['10 - 4 - 3', {}, 3],
  ['8 / 4 / 2', {}, 1],
  ['-cpu + 1', { cpu: 0.25 }, 0.75],
  ['cores * (1 - max(cpu, psi_cpu))', { cores: 4, cpu: 0.5, psi_cpu: 0.75 }, 1],
  ['clamp(cpu * 2, 0, 1)', { cpu: 0.8 }, 1],
  ['min(3, 1, 2) + abs(-2) + sqrt(9)', {}, 6],
  ['mem > 0.95', { mem: 0.96 }, 1],
  ['mem > 0.95', { mem: 0.5 }, 0],
  ['mem >= 0.5 && cpu < 0.1 || 0', { mem: 0.5, cpu: 0.05 }, 1],
  ['!(cpu == 0)', { cpu: 0 }, 0],
  ['cpu != 1', { cpu: 0 }, 1],
  ['1e2 * 2', {}, 200],
  // Missing metrics: arithmetic gives null, comparisons are false.
  ['psi_cpu * 2', { psi_cpu: null }, null],
  ['psi_cpu > 0.5', { psi_cpu: null }, 0],
  ['max(cpu, psi_cpu)', { psi_cpu: null }, null],
  ['1 / connections', { connections: 0 }, null],
  // Application metrics: named ones through app.NAME, null while not reported.
  ['app.in_flight / max(app.concurrency, 1)', { app: { in_flight: 6, concurrency: 4 } }, 1.5],
  ['app.in_flight * 2', { app: {} }, null],
  ['app.constructor', { app: {} }, null],
  ['rps / (app_util + eps / rps)', { rps: 100, app_util: 0.5, eps: 50 }, 100],
];

for (const [source, v, want] of CASES) {
  test(`${source} with ${JSON.stringify(v)} = ${want}`, (t) => {
    t.is(parseExpression(source).evaluate(vars(v)), want);
  });
}

const BAD: [string, RegExp][] = [
  ['', /empty expression/],
  ['cpu +', /expected a number, a name or "\(" at the end/],
  ['cpu cpu', /expected an operator or the end at column 5, found "cpu"/],
  ['process.exit(1)', /unknown function "process.exit"/],
  ['process.exit', /unknown name "process.exit"/],
  ['app.In_Flight', /"app.In_Flight": an application metric name is 1..64 characters/],
  ['foo * 2', /unknown name "foo" \(known: cpu, mem/],
  ['eval(1)', /unknown function "eval"/],
  ['clamp(1, 2)', /clamp\(\) takes 3 arguments, got 2/],
  ['(cpu', /expected "\)" at the end/],
  ['constructor', /unknown name "constructor"/],
  ['cpu ; 1', /unexpected ";" at column 5/],
];

for (const [source, message] of BAD) {
  test(`refused: ${JSON.stringify(source)}`, (t) => {
    const err = t.throws(() => parseExpression(source), { instanceOf: ExpressionError });
    t.regex(err?.message ?? '', message);
  });
}

test('variables read are reported', (t) => {
  t.deepEqual([...parseExpression('cores * (1 - max(cpu, psi_cpu))').variables].sort(), ['cores', 'cpu', 'psi_cpu']);
  const e = parseExpression('rps * app.in_flight / app.latency_seconds');
  t.deepEqual([...e.variables], ['rps']);
  t.deepEqual([...e.appMetrics].sort(), ['in_flight', 'latency_seconds']);
});

test('names from Object.prototype are not variables or functions', (t) => {
  for (const name of ['toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
    t.throws(() => parseExpression(name), { instanceOf: ExpressionError });
    t.throws(() => parseExpression(`${name}(1)`), { instanceOf: ExpressionError });
  }
});

test('docs/policy.md lists every expression variable, and only those', (t) => {
  const doc = readFileSync(fileURLToPath(new URL('../../../docs/policy.md', import.meta.url)), 'utf8');
  const section = doc.slice(doc.indexOf('## Expressions'), doc.indexOf('### Guards'));
  // The table's first column: one or more `name`s per row.
  const documented = section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...(line.split('|')[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? ''));
  t.deepEqual(documented.sort(), [...Object.keys(expressionVariables()), 'app.NAME'].sort());
});
