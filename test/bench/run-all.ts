/**
 * npm run bench / bench:quick: every bench, one after the other, each in its
 * own process, writing into one output directory (docs/bench, or a temporary
 * one in quick mode, LOADFEED_BENCH_QUICK=1). Quick mode proves the benches
 * still work end to end (CI runs it through test/bench/); it does not judge
 * the figures. Stops at the first bench that fails and exits with its code.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QUICK } from './lib/measure.js';

export const BENCHES = ['fastpath', 'agent-cost', 'poller-scale', 'reaction', 'balance', 'xds', 'ingest-bounds'] as const;

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = process.argv[2] ?? (QUICK ? path.join(tmpdir(), `loadfeed-bench-${process.pid}`) : 'docs/bench');
mkdirSync(outDir, { recursive: true });
const started = performance.now();
for (const bench of BENCHES) {
  const t0 = performance.now();
  process.stderr.write(`\n=== bench:${bench}${QUICK ? ' (quick)' : ''} ===\n`);
  const r = spawnSync(process.execPath, [path.join(here, `${bench}.js`), '--out-dir', outDir], { stdio: 'inherit' });
  process.stderr.write(`=== bench:${bench}: ${r.status === 0 ? 'done' : `failed (${r.status ?? r.signal})`} in ${((performance.now() - t0) / 1000).toFixed(0)} s ===\n`);
  if (r.status !== 0) process.exit(r.status ?? 1);
}
process.stderr.write(`\nall benches done in ${((performance.now() - started) / 1000).toFixed(0)} s; results in ${outDir}\n`);
