import test from 'ava';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AgentError, parsePressure, readPressureFile } from '@loadfeed/agent';
import { fixtureSys, fixtureText } from './fixture-tree.js';

test('parsePressure turns the avg10 percentages of the real capture into fractions', (t) => {
  const text = fixtureText('proc/pressure/cpu');
  const avg10 = (kind: string): number => Number(new RegExp(`^${kind} avg10=(\\d+)\\.(\\d\\d) `, 'm').exec(text)?.slice(1, 3).join(''));
  const p = parsePressure(text);
  t.is(p.someAvg10, avg10('some') / 10_000);
  t.is(p.fullAvg10, avg10('full') / 10_000);
  t.true(p.someAvg10 > 0 && p.someAvg10 < 1);
});

test('parsePressure: host CPU pressure before Linux 5.13 has no "full" line', (t) => {
  t.deepEqual(parsePressure('some avg10=12.50 avg60=3.00 avg300=1.00 total=123\n'), { someAvg10: 0.125, fullAvg10: null });
});

test('readPressureFile reads a cgroup v2 cpu.pressure (same format)', async (t) => {
  const p = await readPressureFile(path.join(fixtureSys, 'fs/cgroup/unified/loadfeed-fixture/cpu.pressure'));
  t.is(p?.someAvg10, 0.0869);
});

test('PSI absent (kernel without CONFIG_PSI): null, not 0', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'loadfeed-psi-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.is(await readPressureFile(path.join(dir, 'io.pressure')), null);
});

test('an unreadable pressure file (not absent) is an error, not null', async (t) => {
  if (process.getuid?.() === 0) {
    t.pass('root reads files regardless of mode; EOPNOTSUPP (psi=0) is covered by isAbsent in read-text');
    return;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'loadfeed-psi-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'cpu.pressure');
  await writeFile(file, 'some avg10=1.00 avg60=0.00 avg300=0.00 total=1\n');
  await chmod(file, 0);
  await t.throwsAsync(readPressureFile(file), { code: 'EACCES' });
});

const malformed: readonly { name: string; text: string; message: RegExp }[] = [
  { name: 'empty', text: '', message: /cpu\.pressure: empty file/ },
  { name: 'bad line', text: 'many avg10=1.00\n', message: /unexpected line "many avg10=1.00"/ },
  { name: 'truncated', text: 'some\n', message: /no avg10 in line "some"/ },
  { name: 'non-numeric', text: 'some avg10=1,5 avg60=0.00\n', message: /bad value "1,5"/ },
  { name: 'only a full line', text: 'full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n', message: /no "some" line/ },
];
for (const { name, text, message } of malformed) {
  test(`parsePressure rejects malformed input: ${name}`, (t) => {
    const err = t.throws(() => parsePressure(text, 'cpu.pressure'), { instanceOf: AgentError, message });
    t.is(err?.code, 'AGENT_PROC_PARSE');
  });
}
