/**
 * A noisy neighbour: a square wave of CPU demand. From `--start-at` (epoch
 * ms) it burns CPU for `--on-ms`, idles for `--off-ms`, and repeats. How much
 * CPU it gets while "on" is set by its cgroup's quota (the bench gives it 60 %
 * of the victim's allowance), not here. Exits when stdin closes.
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'start-at': { type: 'string' },
    'on-ms': { type: 'string', default: '10000' },
    'off-ms': { type: 'string', default: '10000' },
  },
});
const startAt = Number(values['start-at'] ?? Date.now());
const onMs = Number(values['on-ms']);
const offMs = Number(values['off-ms']);
const period = onMs + offMs;

let x = 0;
function step(): void {
  const now = Date.now();
  const phase = now < startAt ? -1 : (now - startAt) % period;
  if (phase >= 0 && phase < onMs) {
    const until = Math.min(now + 5, startAt + Math.floor((now - startAt) / period) * period + onMs);
    while (Date.now() < until) for (let i = 0; i < 1000; i++) x += Math.sqrt(x + i);
    setImmediate(step);
  } else {
    const nextOn = now < startAt ? startAt : startAt + Math.ceil((now - startAt) / period) * period;
    setTimeout(step, Math.max(1, nextOn - now));
  }
}
step();
process.stdout.write('ready\n');
process.stdin.on('end', () => process.exit(x === -1 ? 1 : 0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
