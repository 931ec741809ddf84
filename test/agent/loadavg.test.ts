import test from 'ava';
import { AgentError, parseLoadavg } from '@loadfeed/agent';
import { fixtureText } from './fixture-tree.js';

test('parseLoadavg reads the real capture', (t) => {
  // 0.19 0.14 0.09 2/86 4667
  t.deepEqual(parseLoadavg(fixtureText('proc/loadavg')), { load1: 0.19, load5: 0.14, load15: 0.09, runnable: 2, tasks: 86 });
});

const malformed: readonly { name: string; text: string; message: RegExp }[] = [
  { name: 'empty', text: '', message: /\/proc\/loadavg: empty file/ },
  { name: 'bad line', text: 'hello\n', message: /bad value "hello"/ },
  { name: 'truncated', text: '0.19 0.14 0.09\n', message: /truncated line "0.19 0.14 0.09"/ },
  { name: 'no total after the slash', text: '0.19 0.14 0.09 2/ 4667\n', message: /bad value ""/ },
  { name: 'non-numeric load', text: '0.19 abc 0.09 2/86 4667\n', message: /bad value "abc"/ },
];
for (const { name, text, message } of malformed) {
  test(`parseLoadavg rejects malformed input: ${name}`, (t) => {
    const err = t.throws(() => parseLoadavg(text), { instanceOf: AgentError, message });
    t.is(err?.code, 'AGENT_PROC_PARSE');
  });
}
