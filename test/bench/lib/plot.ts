// PNG plots through gnuplot (Debian gnuplot-nox): a bench writes its data to
// a temporary file and a short script; without gnuplot it says so and goes on
// (plots are for docs/BENCHMARKS.md, not for the quick mode's checks).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export function gnuplotAvailable(): boolean {
  return spawnSync('gnuplot', ['--version'], { stdio: 'ignore' }).status === 0;
}

function run(script: string, data: Record<string, string>): boolean {
  const dir = mkdtempSync(path.join(tmpdir(), 'loadfeed-plot-'));
  try {
    for (const [name, text] of Object.entries(data)) writeFileSync(path.join(dir, name), text);
    const r = spawnSync('gnuplot', [], { input: script, cwd: dir, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) process.stderr.write(`gnuplot failed: ${r.stderr}\n`);
    return r.status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const q = (s: string): string => `"${s.replace(/"/g, '\\"')}"`;

/** One panel per policy: each backend's share of responses over time. Returns the file, or null without gnuplot. */
export function plotShares(
  file: string,
  title: string,
  backends: readonly string[],
  panels: readonly { readonly name: string; readonly series: readonly { t: number; shares: number[] }[] }[],
): string | null {
  const percent = panels.map((p) => ({ name: p.name, series: p.series.map((s) => ({ t: s.t, values: s.shares.map((x) => x * 100) })) }));
  return plotSeries(file, title, 'share of responses per backend (%)', backends, percent, false, 100);
}

/** One panel per policy: one line per backend over time (missing points: NaN). Returns the file, or null without gnuplot. */
export function plotSeries(
  file: string,
  title: string,
  what: string,
  backends: readonly string[],
  panels: readonly { readonly name: string; readonly series: readonly { t: number; values: readonly number[] }[] }[],
  logY = false,
  yMax: number | null = null,
): string | null {
  if (!gnuplotAvailable() || panels.length === 0) return null;
  const rows = Math.ceil(panels.length / 2);
  const data: Record<string, string> = {};
  panels.forEach((p, i) => {
    data[`p${i}.dat`] = p.series.map((s) => [s.t, ...s.values.map((x) => (Number.isFinite(x) ? x.toFixed(2) : 'NaN'))].join(' ')).join('\n') + '\n';
  });
  const script = [
    `set terminal pngcairo size 1200,${260 * rows + 60} font "sans,9"`,
    `set output ${q(path.resolve(file))}`,
    `set multiplot layout ${rows},2 title ${q(`${title}: ${what}`)}`,
    yMax === null ? 'set yrange [*:*]' : `set yrange [0:${yMax}]`,
    logY ? 'set logscale y' : '',
    'set grid',
    'set key top right horizontal',
    'set xlabel "s"',
    ...panels.flatMap((p, i) => [
      `set title ${q(p.name)}`,
      `plot ${backends.map((b, j) => `"p${i}.dat" using 1:${j + 2} with lines lw 2 title ${q(b)}`).join(', ')}`,
    ]),
    'unset multiplot',
  ].join('\n');
  return run(script, data) ? file : null;
}

/** Simple x/y lines: one series per entry, for cost and scale figures. */
export function plotLines(
  file: string,
  title: string,
  xlabel: string,
  ylabel: string,
  series: readonly { readonly name: string; readonly points: readonly [number, number][] }[],
  logX = false,
  logY = false,
): string | null {
  if (!gnuplotAvailable() || series.length === 0) return null;
  const data: Record<string, string> = {};
  series.forEach((s, i) => {
    data[`s${i}.dat`] = s.points.map(([x, y]) => `${x} ${y}`).join('\n') + '\n';
  });
  const script = [
    'set terminal pngcairo size 900,500 font "sans,10"',
    `set output ${q(path.resolve(file))}`,
    `set title ${q(title)}`,
    `set xlabel ${q(xlabel)}`,
    `set ylabel ${q(ylabel)}`,
    'set grid',
    'set key top left',
    logX ? 'set logscale x' : '',
    logY ? 'set logscale y' : '',
    `plot ${series.map((s, i) => `"s${i}.dat" using 1:2 with linespoints lw 2 title ${q(s.name)}`).join(', ')}`,
  ].join('\n');
  return run(script, data) ? file : null;
}
