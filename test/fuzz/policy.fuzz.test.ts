// Fuzz the policy compiler: arbitrary text and structurally plausible but
// hostile documents. It either compiles or throws a PolicyError whose every
// problem names the file; nothing else escapes, nothing hangs.
import test from 'ava';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { compilePolicy, defaultEngines, PolicyError } from '@loadfeed/poller';

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
