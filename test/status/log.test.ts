// Logs: JSON for machines, one readable line per record on a terminal; and
// the progress line, which only a terminal gets.
import test from 'ava';
import { formatLogRecord, loadAgentConfig } from '@loadfeed/agent';
import { createLogger, formatLogLine, parseLogFormat, Progress } from '@loadfeed/poller';

const ESC = String.fromCharCode(0x1b);
const TIME = Date.UTC(2026, 10, 25, 12, 0, 1, 234);

function sink(isTTY: boolean): { write(text: string): boolean; readonly isTTY: boolean; text(): string } {
  let out = '';
  return {
    isTTY,
    write: (text: string) => {
      out += text;
      return true;
    },
    text: () => out,
  };
}

test('a weight change reads from → to with its reason', (t) => {
  const line = JSON.stringify({ level: 30, time: TIME, pid: 1, hostname: 'd1', service: 'web', server: '10.0.0.21:80', node: 'web-1', from: 50, to: 62, reason: 'cpu 0.41 of 4 cores', msg: 'weight changed' });
  t.is(formatLogLine(line), '12:00:01.234 INFO  weight changed web 10.0.0.21:80 50 → 62 (cpu 0.41 of 4 cores)  node=web-1\n');
  const first = JSON.stringify({ level: 30, time: TIME, service: 'web', server: '10.0.0.21:80', node: null, from: null, to: 1, reason: '', msg: 'weight changed' });
  t.is(formatLogLine(first), '12:00:01.234 INFO  weight changed web 10.0.0.21:80 new → 1  node=null\n');
});

test('other records: level, message, then key=value (quoted when needed); errors with their first frames', (t) => {
  t.is(
    formatLogLine(JSON.stringify({ level: 50, time: TIME, policy: 'web.yaml', problems: ['a: b'], msg: 'policy refused; the last good policy stays in force' })),
    '12:00:01.234 ERROR policy refused; the last good policy stays in force  policy=web.yaml problems=["a: b"]\n',
  );
  t.is(formatLogLine(JSON.stringify({ level: 40, time: TIME, file: 'my trace.jsonl', msg: 'x' })), '12:00:01.234 WARN  x  file="my trace.jsonl"\n');
  const withErr = formatLogLine(JSON.stringify({ level: 50, time: TIME, engine: 'ipvs', err: { type: 'Error', message: 'EPERM', stack: 'Error: EPERM\n    at a (x.js:1)\n    at b (y.js:2)' }, msg: 'engine apply failed' }));
  t.is(withErr, '12:00:01.234 ERROR engine apply failed  engine=ipvs err=EPERM\n    at a (x.js:1)\n    at b (y.js:2)\n');
  t.is(formatLogLine('not json'), 'not json\n');
  t.true(formatLogLine(JSON.stringify({ level: 30, time: TIME, msg: 'm' }), true).includes(`${ESC}[32mINFO `), 'level in colour on a terminal');
});

test('auto: JSON lines when not a terminal, readable lines on one; --log-format overrides', (t) => {
  const file = sink(false);
  createLogger('info', 'auto', file).info({ port: 7415 }, 'poller started');
  const record = JSON.parse(file.text()) as Record<string, unknown>;
  t.like(record, { level: 30, port: 7415, msg: 'poller started' });

  const tty = sink(true);
  createLogger('info', 'auto', tty).info({ port: 7415 }, 'poller started');
  t.regex(tty.text(), /^\S*\d\d:\d\d:\d\d\.\d{3}\S* \S*INFO \S* poller started {2}\S*port=\S*7415\n$/);

  const forcedJson = sink(true);
  createLogger('info', 'json', forcedJson).warn('w');
  t.like(JSON.parse(forcedJson.text()) as object, { level: 40, msg: 'w' });
  const forcedPretty = sink(false);
  createLogger('info', 'pretty', forcedPretty).warn('w');
  t.regex(forcedPretty.text(), /^\d\d:\d\d:\d\d\.\d{3} WARN {2}w\n$/, 'no colour when not a terminal');
  t.throws(() => parseLogFormat('xml'), { message: '--log-format: "xml" must be one of auto, json, pretty' });
});

test('the progress line is drawn only on a terminal, and cleared or left as a finished step', (t) => {
  const piped = sink(false);
  const quiet = new Progress(piped);
  quiet.step('starting 3 backends');
  quiet.done('up');
  t.is(piped.text(), '');

  const tty = sink(true);
  const progress = new Progress(tty);
  progress.step('starting 3 backends');
  progress.step('waiting for the agents to report (1/3)');
  progress.done('3 backends, agents and the poller are up');
  const text = tty.text();
  const clear = `\r${ESC}[2K`;
  t.true(text.startsWith(clear), 'each step redraws the line');
  t.true(text.includes(' starting 3 backends'));
  t.true(text.includes(' waiting for the agents to report (1/3)'));
  t.regex(text.slice(text.lastIndexOf(clear) + clear.length), /^✔ 3 backends, agents and the poller are up \(\d+\.\ds\)\n$/);
});

test('agent records: JSON lines, or one readable line each; --log-format checked', (t) => {
  const record = { time: '2026-11-25T12:00:01.234Z', node: 'web-1', msg: 'stream waiting', poller: 'd1:7415', detail: 'UNAVAILABLE: down; retrying in 800 ms' };
  t.deepEqual(JSON.parse(formatLogRecord(record, false)), record);
  t.is(formatLogRecord(record, true), '12:00:01.234 web-1 stream waiting  poller=d1:7415 detail="UNAVAILABLE: down; retrying in 800 ms"\n');
  t.is(loadAgentConfig(['--poller', '127.0.0.1:7415'], {}).config?.logFormat, 'auto');
  t.is(loadAgentConfig(['--poller', '127.0.0.1:7415'], { LOADFEED_LOG_FORMAT: 'json' }).config?.logFormat, 'json');
  t.throws(() => loadAgentConfig(['--poller', '127.0.0.1:7415', '--log-format', 'xml'], {}), { message: /logFormat: "xml" must be one of auto, json, pretty/ });
});
