import test from 'ava';
import { Backoff } from '@loadfeed/proto';

test('delays double up to the cap, jittered within [½, 1] of the ceiling', (t) => {
  const low = new Backoff(100, 1000, () => 0);
  t.deepEqual([1, 2, 3, 4, 5, 6].map(() => low.next()), [50, 100, 200, 400, 500, 500]);
  const high = new Backoff(100, 1000, () => 1);
  t.deepEqual([1, 2, 3, 4, 5].map(() => high.next()), [100, 200, 400, 800, 1000]);
});

test('reset starts again from the base delay', (t) => {
  const b = new Backoff(100, 1000, () => 1);
  b.next();
  b.next();
  b.reset();
  t.is(b.next(), 100);
});

test('real jitter spreads a fleet: 100 agents do not pick one delay', (t) => {
  const delays = new Set(Array.from({ length: 100 }, () => new Backoff(1000, 30_000).next()));
  t.true(delays.size > 50);
  for (const d of delays) t.true(d >= 500 && d <= 1000);
});
