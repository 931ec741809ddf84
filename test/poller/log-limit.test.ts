import test from 'ava';
import { LOG_BURST, LOG_WINDOW_MS, RateLimitedLog } from '@loadfeed/poller';

test('each kind logs LOG_BURST lines per window, then one line with the count of the rest', (t) => {
  let now = 0;
  const lines: { event: Record<string, unknown>; msg: string }[] = [];
  const log = new RateLimitedLog((event, msg) => lines.push({ event, msg }), () => now);
  for (let i = 0; i < 100; i += 1) log.log('oversize', { i }, 'agent refused');
  log.log('truncated', { i: 0 }, 'agent refused');
  t.is(lines.length, LOG_BURST + 1, 'a flood of one kind does not silence another');
  now += LOG_WINDOW_MS;
  log.log('oversize', { i: 100 }, 'agent refused');
  t.deepEqual(lines.at(-2), { event: { kind: 'oversize', suppressed: 100 - LOG_BURST, windowMs: LOG_WINDOW_MS }, msg: `agent refused: ${100 - LOG_BURST} more not logged` });
  t.deepEqual(lines.at(-1), { event: { kind: 'oversize', i: 100 }, msg: 'agent refused' });
});
