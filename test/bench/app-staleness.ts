/**
 * npm run bench:app-staleness -- DIR [--scale 0.5]: how old the application
 * latency a poller had was, in the runs of bench:balance's scenario (f) kept
 * with `--keep-records` in DIR (the bench prints it). For every slowdown of a
 * backend's dependency (50 → 150 ms) and every recovery, from the moment the
 * bench gave the command: when the first sample carrying a latency that had
 * moved (10 ms or more) and one past half way (100 ms) left that backend's
 * agent (the sample's wall-clock timestamp; the poller is on the same host).
 * One row per contender, over every event of every repetition: median and
 * range, ms. Each delay is the application's own averaging (the mean over its
 * last completed second) plus the agent's: a contender without agents has no
 * trace and no row.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readTrace } from '@loadfeed/poller';
import { fmt, table } from './lib/measure.js';

const { values, positionals } = parseArgs({ options: { scale: { type: 'string', default: '0.5' } }, allowPositionals: true });
const dir = positionals[0];
const scale = Number(values.scale);
if (dir === undefined || !(scale > 0)) throw new Error('usage: app-staleness DIR [--scale S] (DIR: what bench:balance --keep-records kept)');

const BASE_S = 0.05;
const SLOW_S = 0.15;
/** (f)'s events, seconds before --scale (test/bench/balance.ts): [at, backend, latency it goes to]. */
const EVENTS: readonly (readonly [number, string, number])[] = [
  [15, 'b3', SLOW_S],
  [30, 'b3', BASE_S],
  [30, 'b2', SLOW_S],
  [45, 'b2', BASE_S],
  [45, 'b1', SLOW_S],
];

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const summary = (xs: readonly number[]): string => (xs.length === 0 ? '-' : `${fmt(median(xs), 0)} (${fmt(Math.min(...xs), 0)}–${fmt(Math.max(...xs), 0)})`);

const byPolicy = new Map<string, { moved: number[]; half: number[]; missed: number; samplesPerS: number[] }>();
for (const file of readdirSync(dir).filter((f) => /^f-.+-\d+\.trace$/.test(f)).sort()) {
  const run = file.slice(0, -'.trace'.length);
  const startFile = path.join(dir, `${run}.start`);
  if (!existsSync(startFile)) continue;
  const policy = run.slice(2).replace(/-\d+$/, '');
  const startEpoch = Number(readFileSync(startFile, 'utf8'));
  const samples = (await readTrace(path.join(dir, file))).flatMap((e) =>
    e.type === 'sample' ? [{ node: e.node, at: Number(e.sample.timestampMs), latency: e.sample.namedMetrics?.['latency_seconds'] }] : [],
  );
  const row = byPolicy.get(policy) ?? { moved: [], half: [], missed: 0, samplesPerS: [] };
  byPolicy.set(policy, row);
  for (const [atS, node, to] of EVENTS) {
    const at = startEpoch + Math.round(atS * scale * 10) * 100;
    const from = to === SLOW_S ? BASE_S : SLOW_S;
    const after = samples.filter((x) => x.node === node && x.at >= at && typeof x.latency === 'number');
    const first = (past: number): number | undefined => after.find((x) => Math.abs(x.latency! - from) >= past)?.at;
    const moved = first(0.01);
    const half = first(Math.abs(to - from) / 2);
    if (moved === undefined || half === undefined) row.missed++;
    if (moved !== undefined) row.moved.push(moved - at);
    if (half !== undefined) row.half.push(half - at);
  }
  // Samples a second per agent over the slowdowns (how many reports the early ones added).
  const from = startEpoch + 15 * scale * 1000;
  const to = startEpoch + 60 * scale * 1000;
  for (const node of new Set(samples.map((x) => x.node))) {
    row.samplesPerS.push(samples.filter((x) => x.node === node && x.at >= from && x.at < to).length / ((to - from) / 1000));
  }
}
if (byPolicy.size === 0) throw new Error(`${dir}: no f-*.trace with its .start (run bench:balance --scenarios f --keep-records)`);

process.stdout.write(
  `${table(
    ['contender', 'latency moved, ms after the event', 'past half way, ms', 'events missed', 'samples/s per agent'],
    [...byPolicy].map(([p, r]) => [p, summary(r.moved), summary(r.half), String(r.missed), fmt(median(r.samplesPerS), 2)]),
  )}\n`,
);
