// Lines of the application push socket, as a table with malformed cases.
import test from 'ava';
import { parsePushLine } from '@loadfeed/agent';

const CASES: readonly [string, string, ReturnType<typeof parsePushLine> | RegExp][] = [
  ['name and value', 'in_flight 12', { name: 'in_flight', value: 12 }],
  ['fraction, exponent, sign', 'latency_seconds -1.5e-3', { name: 'latency_seconds', value: -0.0015 }],
  ['surrounding blanks and CR', '  rps\t340.5 \r', { name: 'rps', value: 340.5 }],
  ['empty', '', null],
  ['comment', '# written by the app', null],
  ['one field', 'in_flight', /expected "name value"/],
  ['three fields', 'in_flight 1 2', /expected "name value"/],
  ['upper case name', 'InFlight 1', /name "InFlight" must be/],
  ['name starting with a digit', '9lives 1', /name "9lives" must be/],
  ['name too long', `${'a'.repeat(65)} 1`, /must be 1..64 characters/],
  ['NaN', 'in_flight NaN', /value "NaN" is not a finite number/],
  ['infinity', 'in_flight Infinity', /not a finite number/],
  ['hex', 'in_flight 0x10', /not a finite number/],
  ['overflow', 'in_flight 1e999', /not a finite number/],
];

for (const [name, line, want] of CASES) {
  test(`push line: ${name}`, (t) => {
    const got = parsePushLine(line);
    if (want instanceof RegExp) {
      t.true(got !== null && 'error' in got, JSON.stringify(got));
      if (got !== null && 'error' in got) t.regex(got.error, want);
    } else {
      t.deepEqual(got, want);
    }
  });
}
