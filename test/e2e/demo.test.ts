// `loadfeed demo` end to end: real backends of different CPU capacity, real
// agents, the poller and the fast path, real HTTP load. Weights must follow
// capacity, and Ctrl-C must leave no process behind.
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pidAlive } from '../helpers/process.js';
import { binPath } from '../helpers/launcher.js';

const DEMO = binPath('@loadfeed/demo', 'loadfeed-demo');
/** Lines (one a second) over which weights and shares are averaged and every server must have reported CPU. */
const RECENT_LINES = 5;

interface Line {
  t: number;
  errors: number;
  servers: { id: string; capacity: number; cpu: number | null; weight: number; share: number }[];
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

test.serial('the strongest backend ends with the highest weight and share, the weakest with the lowest', async (t) => {
  t.timeout(90_000);
  const demo = spawn(process.execPath, [DEMO, '--json', '--duration', '25', '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Line[] = [];
  createInterface({ input: demo.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Line));
  const [code] = (await once(demo, 'exit')) as [number];
  t.is(code, 0);
  t.true(lines.length >= 20, `${lines.length} lines`);
  const last = lines.at(-1) as Line;
  t.log(JSON.stringify(last));
  t.is(last.errors, 0);
  t.true(Math.abs(last.servers.reduce((a, s) => a + s.share, 0) - 1) < 0.01, 'shares add up to 1');
  // A 0.1-core process is measured in 10 ms clock ticks, so one 500 ms
  // interval reads its CPU to a fifth of its capacity and a starved one can
  // truly read 0: the order is judged on the last few seconds, not on the one
  // line that happens to be last.
  const recent = lines.slice(-RECENT_LINES);
  const series = (id: string) => recent.map((l) => l.servers.find((x) => x.id === id));
  const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const byCapacity = [...last.servers]
    .sort((a, b) => a.capacity - b.capacity)
    .map((s) => {
      const seen = series(s.id);
      return { id: s.id, weight: mean(seen.map((x) => x?.weight ?? 0)), share: mean(seen.map((x) => x?.share ?? 0)), cpu: seen.map((x) => x?.cpu ?? null) };
    });
  t.log(JSON.stringify(byCapacity));
  const [weakest, middle, strongest] = byCapacity;
  t.deepEqual(byCapacity.map((s) => s.id), ['small', 'medium', 'large']);
  if (!weakest || !middle || !strongest) return;
  t.true(strongest.weight > middle.weight && strongest.weight > weakest.weight, 'strongest has the highest weight');
  t.true(weakest.weight < middle.weight, 'weakest has the lowest weight');
  t.true(strongest.share > middle.share && strongest.share > weakest.share, 'strongest has the highest share');
  t.true(weakest.share < middle.share, 'weakest has the lowest share');
  for (const s of byCapacity) t.true(s.cpu.every((c) => c !== null) && s.cpu.some((c) => (c ?? 0) > 0), `${s.id} reports CPU: ${s.cpu.join(', ')}`);
});

test.serial('Ctrl-C stops every process the demo started', async (t) => {
  t.timeout(60_000);
  const demo = spawn(process.execPath, [DEMO, '--json', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: demo.stdout });
  await once(lines, 'line'); // the first table line: everything is up
  const children = childrenOf(demo.pid as number);
  t.is(children.length, 6, 'three backends and three agents');
  demo.kill('SIGINT');
  const [code] = (await once(demo, 'exit')) as [number];
  t.is(code, 0);
  t.deepEqual(children.filter(pidAlive), []);
});
