// Small measuring helpers shared by the benches: a process's CPU time and
// RSS from /proc, statistics over arrays, the quick-mode switch and the
// one-bench-at-a-time lock.
import fs, { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pidAlive } from '../../helpers/process.js';

/** LOADFEED_BENCH_QUICK=1: short runs that prove a bench works (CI), not figures to judge. */
export const QUICK = process.env['LOADFEED_BENCH_QUICK'] === '1';

const TICK_US = 1_000_000 / 100; // USER_HZ is 100 on Linux

/** CPU time (user + system) a process has used, µs; null when it is gone. */
export function processCpuUs(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is state (field 3); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) * TICK_US;
  } catch {
    return null;
  }
}

/**
 * Time a process's threads have run, µs, from each thread's schedstat (ns):
 * at 1 Hz an agent uses a few ms of CPU a second, which utime+stime (10 ms
 * ticks, sampled) cannot tell apart over a short window. A thread that exits
 * within the window takes its time with it; null when the process is gone.
 */
export function processRunUs(pid: number): number | null {
  try {
    let ns = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread exited between the listing and the read
      }
    }
    return ns / 1000;
  } catch {
    return null;
  }
}

/** Resident set size, bytes; null when the process is gone. */
export function processRssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Peak resident set size (VmHWM), bytes. */
export function processPeakRssBytes(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function quantile(xs: readonly number[], q: number): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i] ?? Number.NaN;
}

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length / 2;
  return s.length % 2 === 1 ? (s[Math.floor(mid)] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

export function mean(xs: readonly number[]): number {
  const f = xs.filter((x) => Number.isFinite(x));
  return f.length === 0 ? Number.NaN : f.reduce((a, b) => a + b, 0) / f.length;
}

/** The 1-minute load average. */
export function loadAverage1(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** One line describing the machine, for reports. */
export function machineLine(): string {
  const cpus = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/gm) ?? [];
  const model = (cpus[0] ?? '').replace(/^model name\s*:\s*/, '');
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  return `${cpus.length} vCPU ${model}, ${Math.round(memKb / 1024 / 1024)} GB, Linux ${kernel}, Node ${process.version}`;
}

/** Progress lines on stderr, e.g. "[fastpath 12:34:56] …". */
export function benchLog(bench: string): (line: string) => void {
  return (line) => {
    process.stderr.write(`[${bench} ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  };
}

/** Numbers for tables: fixed decimals, '-' for missing. */
export function fmt(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

/** A plain-text table: header row, then rows; columns padded, numbers right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Held by the one bench running on this machine (its pid inside). */
export const BENCH_LOCK = path.join(os.tmpdir(), 'loadfeed-bench.lock');

/**
 * Take the machine-wide bench lock: benches share fixed subnets, cgroup
 * names and ports, and two at once would also skew each other's figures.
 * A lock whose holder is gone is taken over. Released when the process exits.
 */
async function takeBenchLock(deadline: number, log: (s: string) => void): Promise<void> {
  for (;;) {
    try {
      fs.writeFileSync(BENCH_LOCK, String(process.pid), { flag: 'wx' });
      process.once('exit', () => fs.rmSync(BENCH_LOCK, { force: true }));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(fs.readFileSync(BENCH_LOCK, 'utf8'));
    if (!pidAlive(holder)) {
      fs.rmSync(BENCH_LOCK, { force: true });
      continue;
    }
    if (Date.now() >= deadline) throw new Error(`another bench (pid ${holder}) still holds ${BENCH_LOCK}`);
    log(`another bench (pid ${holder}) is running: waiting for it to end`);
    await new Promise((r) => setTimeout(r, 5_000));
  }
}

/**
 * Wait until no other bench runs (see takeBenchLock) and the 1-minute load
 * average is below `max` (other users of the machine skew figures),
 * checking every 30 s, for at most `waitMs`. Returns the load seen last;
 * the caller reports it with the figures.
 */
export async function waitForQuietMachine(max: number, waitMs: number, log: (s: string) => void): Promise<number> {
  const deadline = Date.now() + waitMs;
  await takeBenchLock(deadline, log);
  let load = loadAverage1();
  while (load >= max && Date.now() < deadline) {
    log(`load average ${load} >= ${max}: waiting for the machine to quieten (up to ${Math.round((deadline - Date.now()) / 1000)} s more)`);
    await new Promise((r) => setTimeout(r, 30_000));
    load = loadAverage1();
  }
  return load;
}
