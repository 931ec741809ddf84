// The CPU budget of per-port SOCK_DIAG dumps: when a dump is repeated, what
// is reported in between, and the estimate from the host's established total.
import test from 'ava';
import { DumpBudget, scaleCounts } from '@loadfeed/agent';

const counts = (n: number): Map<number, number> => new Map([[80, n]]);

test('a dump that cost 2 ms of CPU is repeated after 1 s at a 0.2 % budget; in between the last counts are reported', async (t) => {
  let cpu = 0;
  let dumps = 0;
  const budget = new DumpBudget(0.002, () => cpu);
  const dump = async (): Promise<Map<number, number>> => {
    dumps++;
    cpu += 2_000;
    return counts(10 * dumps);
  };
  t.deepEqual(await budget.count(0, null, dump), counts(10));
  t.deepEqual(await budget.count(500, null, dump), counts(10));
  t.deepEqual(await budget.count(999, null, dump), counts(10));
  t.is(dumps, 1);
  t.deepEqual(await budget.count(1000, null, dump), counts(20));
  t.is(dumps, 2);
});

test('a failed dump (null) is retried on the next sample while nothing is known yet', async (t) => {
  let calls = 0;
  const budget = new DumpBudget(0.002, () => calls * 100_000);
  const dump = async (): Promise<Map<number, number> | null> => (++calls === 1 ? null : counts(3));
  t.is(await budget.count(0, null, dump), null);
  t.deepEqual(await budget.count(1, null, dump), counts(3));
});

test('between dumps, counts follow the host established total when the counted ports were most of it', (t) => {
  t.deepEqual(scaleCounts(counts(100), 110, 220), counts(200));
  t.deepEqual(scaleCounts(counts(100), 110, 55), counts(50));
  // The counted ports were a minority of the host's connections: the total says little about them.
  t.deepEqual(scaleCounts(counts(10), 110, 220), counts(10));
  // Unknown totals or nothing established at the dump: unchanged.
  t.deepEqual(scaleCounts(counts(100), null, 220), counts(100));
  t.deepEqual(scaleCounts(counts(0), 0, 50), counts(0));
});

test('a budget outside (0, 1] is refused', (t) => {
  t.throws(() => new DumpBudget(0), { instanceOf: RangeError });
  t.throws(() => new DumpBudget(2), { instanceOf: RangeError });
});
