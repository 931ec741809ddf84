import test from 'ava';
import { AgentError, parseMeminfo, readMeminfo } from '@loadfeed/agent';
import { fixtureProc, fixtureText } from './fixture-tree.js';

test('parseMeminfo reads MemTotal and MemAvailable of the real capture in bytes', (t) => {
  const text = fixtureText('proc/meminfo');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1]);
  const m = parseMeminfo(text);
  t.is(m.memTotalBytes, kb('MemTotal') * 1024);
  t.is(m.memAvailableBytes, kb('MemAvailable') * 1024);
  t.true(m.memAvailableBytes < m.memTotalBytes);
});

test('readMeminfo reads <procRoot>/meminfo', async (t) => {
  t.true((await readMeminfo(fixtureProc)).memTotalBytes > 0);
});

const malformed: readonly { name: string; text: string; message: RegExp }[] = [
  { name: 'empty', text: '', message: /\/proc\/meminfo: empty file/ },
  { name: 'no MemAvailable (pre-3.14 kernel)', text: 'MemTotal: 1000 kB\nMemFree: 10 kB\n', message: /no MemAvailable/ },
  { name: 'no MemTotal', text: 'MemAvailable: 10 kB\n', message: /no positive MemTotal/ },
  { name: 'truncated', text: 'MemTotal: 1000\nMemAvailable: 10 kB\n', message: /expected kB in line "MemTotal: 1000"/ },
  { name: 'non-numeric', text: 'MemTotal: lots kB\nMemAvailable: 10 kB\n', message: /bad value "lots"/ },
];
for (const { name, text, message } of malformed) {
  test(`parseMeminfo rejects malformed input: ${name}`, (t) => {
    const err = t.throws(() => parseMeminfo(text), { instanceOf: AgentError, message });
    t.is(err?.code, 'AGENT_PROC_PARSE');
  });
}
