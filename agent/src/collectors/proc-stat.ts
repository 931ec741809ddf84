// /proc/stat: the aggregate `cpu` line, the number of online CPUs and the
// procs_running/procs_blocked gauges (Documentation/filesystems/proc.rst).
import { join } from 'node:path';
import { DEFAULT_PROC_ROOT, readText } from './read-text.js';
import { fields, integerField, parseError } from './parse-text.js';

/**
 * Clock ticks per second of /proc/stat and /proc/PID/stat. The kernel exports
 * USER_HZ = 100 on every Linux architecture; reading it via sysconf(_SC_CLK_TCK)
 * would need a native call or a child process, which the agent never spawns.
 */
export const USER_HZ = 100;

/**
 * A window's counters may advance at most this many times the CPU time the
 * wall clock allows (plus one second of slack for tick jitter) before the jump
 * is treated as a counter reset, as node_exporter's cpu_linux.go does.
 */
const MAX_JUMP_FACTOR = 2;

/** Cumulative CPU time in USER_HZ ticks, summed over all CPUs. */
export interface CpuTimes {
  readonly user: number;
  readonly nice: number;
  readonly system: number;
  readonly idle: number;
  readonly iowait: number;
  readonly irq: number;
  readonly softirq: number;
  readonly steal: number;
  /** Already included in `user` (and guestNice in `nice`): never added again. */
  readonly guest: number;
  readonly guestNice: number;
}

export interface ProcStat {
  readonly cpu: CpuTimes;
  /** Number of `cpuN` lines: the CPUs online at the time of reading. */
  readonly onlineCpus: number;
  readonly procsRunning: number | null;
  readonly procsBlocked: number | null;
}

const CPU_FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal', 'guest', 'guestNice'] as const;
/** user nice system idle are in every kernel; the rest were added over 2.5–2.6.33. */
const REQUIRED_CPU_FIELDS = 4;

/**
 * It runs in every watch window, so it splits only the lines it reads: the
 * aggregate `cpu` line and the procs_* gauges. `cpuN` lines are counted by
 * their prefix, and `intr` (a field per interrupt, hundreds to thousands)
 * and `softirq` are skipped unread.
 */
export function parseProcStat(text: string, file = '/proc/stat'): ProcStat {
  if (text === '' || text === '\n') throw parseError(file, 'empty file');
  let cpu: CpuTimes | null = null;
  let onlineCpus = 0;
  let procsRunning: number | null = null;
  let procsBlocked: number | null = null;
  for (let start = 0; start < text.length; ) {
    const newline = text.indexOf('\n', start);
    const end = newline === -1 ? text.length : newline;
    if (text.startsWith('cpu ', start)) {
      const line = text.slice(start, end);
      cpu = parseCpuLine(file, fields(line).slice(1), line);
    } else if (text.startsWith('cpu', start) && isDigit(text.charCodeAt(start + 3))) {
      onlineCpus++;
    } else if (text.startsWith('procs_', start)) {
      const line = text.slice(start, end);
      const [key, value] = fields(line);
      if (key === 'procs_running') procsRunning = integerField(file, value, line);
      else if (key === 'procs_blocked') procsBlocked = integerField(file, value, line);
    }
    start = end + 1;
  }
  if (cpu === null) throw parseError(file, 'no aggregate "cpu" line');
  if (onlineCpus === 0) throw parseError(file, 'no "cpuN" lines');
  return { cpu, onlineCpus, procsRunning, procsBlocked };
}

const SPACE = 0x20;
const NEWLINE = 0x0a;
const DIGIT_0 = 0x30;
/** "cpu" */
const CPU_PREFIX = [0x63, 0x70, 0x75] as const;

/**
 * The aggregate CPU times and the online CPU count read straight from the
 * bytes of /proc/stat as the kernel writes it (the `cpu` line first), without
 * decoding or splitting the text: the
 * agent does this in every watch window, where decoding and parsing the text
 * cold cost 0.2 ms of interpreted JavaScript. Null when the bytes are not in
 * that form, and then the caller parses the text, which says what is wrong.
 */
export function scanProcStatCpu(bytes: Uint8Array, length: number): Pick<ProcStat, 'cpu' | 'onlineCpus'> | null {
  if (!startsWithCpu(bytes, 0, length) || bytes[3] !== SPACE) return null;
  const values: number[] = [];
  let at = 4;
  for (; at < length && bytes[at] !== NEWLINE; at++) {
    const b = bytes[at] ?? 0;
    if (b === SPACE) continue;
    if (!isDigit(b)) return null;
    let value = 0;
    for (; at < length && isDigit(bytes[at] ?? 0); at++) value = value * 10 + ((bytes[at] ?? 0) - DIGIT_0);
    values.push(value);
    at--;
  }
  if (values.length < REQUIRED_CPU_FIELDS) return null;
  let onlineCpus = 0;
  for (let line = at + 1; line > 0 && line < length; line = bytes.indexOf(NEWLINE, line) + 1) {
    if (!startsWithCpu(bytes, line, length)) continue;
    if (bytes[line + 3] === SPACE) return null; // a second aggregate line: the text parser's rules decide
    if (isDigit(bytes[line + 3] ?? 0)) onlineCpus++;
  }
  if (onlineCpus === 0) return null;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0, guest = 0, guestNice = 0] = values;
  return { cpu: { user, nice, system, idle, iowait, irq, softirq, steal, guest, guestNice }, onlineCpus };
}

function startsWithCpu(bytes: Uint8Array, at: number, length: number): boolean {
  return at + 3 < length && bytes[at] === CPU_PREFIX[0] && bytes[at + 1] === CPU_PREFIX[1] && bytes[at + 2] === CPU_PREFIX[2];
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function parseCpuLine(file: string, values: readonly string[], line: string): CpuTimes {
  if (values.length < REQUIRED_CPU_FIELDS) throw parseError(file, `truncated line ${JSON.stringify(line)}`);
  const times: Record<(typeof CPU_FIELDS)[number], number> = {
    user: 0, nice: 0, system: 0, idle: 0, iowait: 0, irq: 0, softirq: 0, steal: 0, guest: 0, guestNice: 0,
  };
  CPU_FIELDS.forEach((name, i) => {
    if (i < values.length) times[name] = integerField(file, values[i], line);
  });
  return times;
}

/** Ticks the CPU spent not idle: iowait is idle time waiting on I/O; steal counts as busy (the VM lost it). */
export function busyTicks(t: CpuTimes): number {
  return t.user + t.nice + t.system + t.irq + t.softirq + t.steal;
}

export function totalTicks(t: CpuTimes): number {
  return busyTicks(t) + t.idle + t.iowait;
}

/**
 * Busy fraction 0..1 between two readings `windowMs` apart on `cpus` CPUs, or
 * null when the counters cannot be trusted: one went backwards (CPU hotplug,
 * a VM restored from a snapshot), the total advanced more than the window
 * allows, or not at all. The caller then starts a new baseline from `cur`.
 */
export function cpuDelta(prev: CpuTimes, cur: CpuTimes, windowMs: number, cpus: number): number | null {
  for (const name of CPU_FIELDS) if (cur[name] < prev[name]) return null;
  const total = totalTicks(cur) - totalTicks(prev);
  const maxTotal = cpus * USER_HZ * (MAX_JUMP_FACTOR * (windowMs / 1000) + 1);
  if (total <= 0 || total > maxTotal) return null;
  return (busyTicks(cur) - busyTicks(prev)) / total;
}

export async function readProcStat(procRoot = DEFAULT_PROC_ROOT): Promise<ProcStat> {
  const file = join(procRoot, 'stat');
  return parseProcStat(await readText(file), file);
}
