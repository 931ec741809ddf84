// Process scope: the CPU time and resident memory of one process tree (a
// service's master process and every descendant).
//
// Children come from /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN, on in
// distribution kernels); without it the tree is rebuilt from the ppid field of
// every /proc/PID/stat, which costs one read per process on the host.
//
// Known limits: a child that lives less than one window is not seen (its CPU
// lands in the parent's cutime, which is not added: that would count again
// what earlier windows already counted); RSS of forked workers double-counts
// shared pages, as `ps` does.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../errors.js';
import { DEFAULT_PROC_ROOT, isAbsent, isGone, readTextOrNull } from './read-text.js';
import { fields, integerField, lines, parseError } from './parse-text.js';
import { USER_HZ } from './proc-stat.js';

const KIB = 1024;

export interface PidStat {
  readonly pid: number;
  readonly comm: string;
  readonly ppid: number;
  /** User and system CPU time of all the process's threads, USER_HZ ticks. */
  readonly utime: number;
  readonly stime: number;
  /** Boot-relative start time in ticks: with pid, identifies a process across pid reuse. */
  readonly starttime: number;
}

/**
 * /proc/PID/stat: "pid (comm) state ppid ...". comm is any 15 bytes, spaces
 * and parentheses included, so fields are counted after the LAST ')'.
 * Field numbers (proc(5), 1-based): 4 ppid, 14 utime, 15 stime, 22 starttime.
 */
export function parsePidStat(text: string, file = '/proc/PID/stat'): PidStat {
  const line = text.trimEnd();
  const open = line.indexOf(' (');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) throw parseError(file, `no "(comm)" in ${JSON.stringify(line)}`);
  const rest = fields(line.slice(close + 1)); // rest[0] is field 3 (state)
  const field = (n: number): number => integerField(file, rest[n - 3], line);
  return {
    pid: integerField(file, line.slice(0, open), line),
    comm: line.slice(open + 2, close),
    ppid: field(4),
    utime: field(14),
    stime: field(15),
    starttime: field(22),
  };
}

/** VmRSS from /proc/PID/status in bytes; null for kernel threads and zombies, which have none. */
export function parsePidStatusRss(text: string, file = '/proc/PID/status'): number | null {
  for (const line of lines(file, text)) {
    if (!line.startsWith('VmRSS:')) continue;
    const [, value, unit] = fields(line);
    if (unit !== 'kB') throw parseError(file, `expected kB in line ${JSON.stringify(line)}`);
    return integerField(file, value, line) * KIB;
  }
  return null;
}

/** /proc/PID/task/TID/children: "123 456 " (possibly empty). */
export function parseChildren(text: string, file = '/proc/PID/task/TID/children'): number[] {
  const trimmed = text.trim();
  return trimmed === '' ? [] : fields(trimmed).map((pid) => integerField(file, pid, text));
}

export interface ProcessTreeUsage {
  /** Every process of the tree by pid. */
  readonly processes: ReadonlyMap<number, PidStat>;
}

/**
 * CPU ticks the tree used between two readings. Each process counts its own
 * delta; one that is new since `prev` (or whose pid was reused, seen by a new
 * starttime) counts all its ticks, as it started within the window; one that
 * exited is skipped.
 */
export function processTreeTicks(prev: ProcessTreeUsage, cur: ProcessTreeUsage): number {
  let ticks = 0;
  for (const [pid, now] of cur.processes) {
    const before = prev.processes.get(pid);
    const base = before !== undefined && before.starttime === now.starttime ? before.utime + before.stime : 0;
    ticks += Math.max(0, now.utime + now.stime - base);
  }
  return ticks;
}

/** Cores used over the window (Δticks / USER_HZ / window seconds) as a fraction of `cores`; may exceed 1. */
export function processCpuUtilization(ticks: number, windowMs: number, cores: number): number {
  return ticks / USER_HZ / (windowMs / 1000) / cores;
}

export interface ProcessTreeReader {
  /** Reads the tree's CPU counters now; throws AGENT_SCOPE_GONE when the root process has exited. */
  read(): Promise<ProcessTreeUsage>;
  /** Sum of VmRSS over the processes of `tree` still alive, bytes (a separate read: CPU is watched more often than memory). */
  rssBytes(tree: ProcessTreeUsage): Promise<number>;
}

export async function createProcessTreeReader(rootPid: number, procRoot = DEFAULT_PROC_ROOT): Promise<ProcessTreeReader> {
  const gone = (): AgentError =>
    new AgentError('AGENT_SCOPE_GONE', `process ${rootPid} has exited (${join(procRoot, String(rootPid))} is gone)`);
  // A process may exit between listing and reading: absent then, not an error.
  const readLive = (file: string): Promise<string | null> =>
    readTextOrNull(file).catch((err: unknown) => (isGone(err) ? null : Promise.reject(err)));
  const readStat = async (pid: number): Promise<PidStat | null> => {
    const file = join(procRoot, String(pid), 'stat');
    const text = await readLive(file);
    return text === null ? null : parsePidStat(text, file);
  };
  const readRss = async (pid: number): Promise<number> => {
    const file = join(procRoot, String(pid), 'status');
    const text = await readLive(file);
    return (text === null ? null : parsePidStatusRss(text, file)) ?? 0;
  };
  const childrenOf = async (pid: number): Promise<number[]> => {
    const taskDir = join(procRoot, String(pid), 'task');
    const tids = await readdir(taskDir).catch((err: unknown) => (isAbsent(err) ? [] : Promise.reject(err)));
    const lists = await Promise.all(
      tids.map(async (tid) => {
        const file = join(taskDir, tid, 'children');
        const text = await readLive(file);
        return text === null ? [] : parseChildren(text, file);
      }),
    );
    return lists.flat();
  };

  if ((await readStat(rootPid)) === null) throw gone();
  const hasChildrenFiles = (await readLive(join(procRoot, String(rootPid), 'task', String(rootPid), 'children'))) !== null;

  // Walks the tree level by level through the children files.
  const readByChildren = async (): Promise<ProcessTreeUsage> => {
    const processes = new Map<number, PidStat>();
    let level = [rootPid];
    while (level.length > 0) {
      const read = await Promise.all(
        level.map(async (pid) => {
          const [stat, children] = await Promise.all([readStat(pid), childrenOf(pid)]);
          return { pid, stat, children };
        }),
      );
      level = [];
      for (const { pid, stat, children } of read) {
        if (stat === null) {
          if (pid === rootPid) throw gone();
          continue; // a child that exited meanwhile
        }
        processes.set(pid, stat);
        for (const child of children) if (!processes.has(child)) level.push(child);
      }
    }
    return { processes };
  };

  // Reads every process's stat and keeps the root's descendants by ppid.
  const readByPpid = async (): Promise<ProcessTreeUsage> => {
    const pids = (await readdir(procRoot)).filter((name) => /^\d+$/.test(name)).map(Number);
    const stats = await Promise.all(pids.map(readStat));
    const children = new Map<number, PidStat[]>();
    let root: PidStat | null = null;
    for (const stat of stats) {
      if (stat === null) continue;
      if (stat.pid === rootPid) root = stat;
      const siblings = children.get(stat.ppid);
      if (siblings === undefined) children.set(stat.ppid, [stat]);
      else siblings.push(stat);
    }
    if (root === null) throw gone();
    const processes = new Map<number, PidStat>();
    const stack = [root];
    for (let stat = stack.pop(); stat !== undefined; stat = stack.pop()) {
      if (processes.has(stat.pid)) continue;
      processes.set(stat.pid, stat);
      stack.push(...(children.get(stat.pid) ?? []));
    }
    return { processes };
  };

  return {
    read: hasChildrenFiles ? readByChildren : readByPpid,
    async rssBytes(tree) {
      const rss = await Promise.all([...tree.processes.keys()].map(readRss));
      return rss.reduce((a, b) => a + b, 0);
    },
  };
}
