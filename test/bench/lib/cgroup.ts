// CPU cgroups for benches: a tree under one root named after the bench and
// its pid, each with a CFS quota (v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`,
// v2 `cpu.max`) and a weight (v1 `cpu.shares`, v2 `cpu.weight`). v1 is used
// when the cpu controller is mounted as v1 (this project's machines, where
// cpu and cpuacct are separate mounts), else v2. Needs root.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const DEFAULT_CFS_PERIOD_US = 100_000;

interface Mounts {
  readonly version: 1 | 2;
  /** v1: directories of the hierarchies holding cpu and cpuacct (maybe the same); v2: the unified mount. */
  readonly dirs: readonly string[];
  readonly cpu: string;
  readonly cpuacct: string;
}

function findMounts(): Mounts {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  let cpu: string | null = null;
  let cpuacct: string | null = null;
  let unified: string | null = null;
  for (const line of lines) {
    const parts = line.split(' ');
    const dash = parts.indexOf('-');
    if (dash < 0) continue;
    const mountPoint = parts[4] ?? '';
    const fsType = parts[dash + 1];
    const opts = (parts[dash + 3] ?? '').split(',');
    if (fsType === 'cgroup' && opts.includes('cpu')) cpu = mountPoint;
    if (fsType === 'cgroup' && opts.includes('cpuacct')) cpuacct = mountPoint;
    if (fsType === 'cgroup2') unified = mountPoint;
  }
  if (cpu !== null && cpuacct !== null) return { version: 1, dirs: [...new Set([cpu, cpuacct])], cpu, cpuacct };
  if (unified !== null) {
    const controllers = readFileSync(path.join(unified, 'cgroup.controllers'), 'utf8');
    if (controllers.split(/\s+/).includes('cpu')) return { version: 2, dirs: [unified], cpu: unified, cpuacct: unified };
  }
  throw new Error('no cgroup cpu controller: neither a v1 cpu+cpuacct mount nor cgroup2 with the cpu controller');
}

/** Whether this process can create CPU cgroups (root and a cpu controller); the reason if not. */
export function cgroupUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    findMounts();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export class CpuCgroup {
  private readonly children: CpuCgroup[] = [];

  private constructor(
    private readonly mounts: Mounts,
    /** Path inside the hierarchy, e.g. /loadfeed-bench-123/b1 (what `--scope cgroup:` takes). */
    readonly path: string,
  ) {
    for (const dir of this.dirs()) mkdirSync(dir, { recursive: true });
  }

  /** A new root cgroup `/<name>-<pid>` (no quota). */
  static root(name: string): CpuCgroup {
    const mounts = findMounts();
    const cg = new CpuCgroup(mounts, `/${name}-${process.pid}`);
    if (mounts.version === 2) writeFileSync(path.join(mounts.cpu, 'cgroup.subtree_control'), '+cpu');
    return cg;
  }

  get version(): 1 | 2 {
    return this.mounts.version;
  }

  child(name: string): CpuCgroup {
    if (this.mounts.version === 2 && this.children.length === 0) this.write(this.mounts.cpu, 'cgroup.subtree_control', '+cpu');
    const cg = new CpuCgroup(this.mounts, `${this.path}/${name}`);
    this.children.push(cg);
    return cg;
  }

  /** CFS bandwidth: at most `cores` of CPU per period; null removes the limit. */
  setQuota(cores: number | null, periodUs = DEFAULT_CFS_PERIOD_US): void {
    if (this.mounts.version === 1) {
      this.write(this.mounts.cpu, 'cpu.cfs_period_us', String(periodUs));
      this.write(this.mounts.cpu, 'cpu.cfs_quota_us', cores === null ? '-1' : String(Math.round(cores * periodUs)));
    } else {
      this.write(this.mounts.cpu, 'cpu.max', `${cores === null ? 'max' : Math.round(cores * periodUs)} ${periodUs}`);
    }
  }

  /** Relative weight against siblings; 1 = the default (v1 shares 1024, v2 weight 100). */
  setWeight(relative: number): void {
    if (this.mounts.version === 1) this.write(this.mounts.cpu, 'cpu.shares', String(Math.round(1024 * relative)));
    else this.write(this.mounts.cpu, 'cpu.weight', String(Math.max(1, Math.min(10_000, Math.round(100 * relative)))));
  }

  /** CPU used by the cgroup and its descendants since creation, µs. */
  usageUs(): number {
    if (this.mounts.version === 1) return Number(readFileSync(this.file(this.mounts.cpuacct, 'cpuacct.usage'), 'utf8')) / 1000;
    const m = /^usage_usec (\d+)$/m.exec(readFileSync(this.file(this.mounts.cpu, 'cpu.stat'), 'utf8'));
    return Number(m?.[1] ?? 0);
  }

  /** Files a process must write its pid into to join this cgroup (every hierarchy holding cpu or cpuacct). */
  procsFiles(): string[] {
    return this.dirs().map((d) => path.join(d, 'cgroup.procs'));
  }

  /** A shell prefix that moves the shell into this cgroup; follow it with `exec COMMAND`. */
  joinScript(): string {
    return this.procsFiles().map((f) => `echo $$ > ${f}`).join('; ');
  }

  /** Move a running process (all its threads) here. */
  add(pid: number): void {
    for (const f of this.procsFiles()) writeFileSync(f, String(pid));
  }

  /** Pids still in this cgroup (not its descendants). */
  pids(): number[] {
    const f = this.procsFiles()[0];
    if (f === undefined || !existsSync(f)) return [];
    return readFileSync(f, 'utf8').split('\n').filter((x) => x !== '').map(Number);
  }

  /** Kill what is left inside and remove the tree, leaves first. Safe to call twice. */
  remove(): void {
    for (const c of this.children) c.remove();
    for (const pid of this.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of this.dirs()) {
      if (!existsSync(dir)) continue;
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          // Leftover child directories (from a crashed earlier run) go first.
          for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirSync(path.join(dir, e.name));
          rmdirSync(dir);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // killed tasks take a moment to leave
        }
      }
    }
  }

  private dirs(): string[] {
    return this.mounts.dirs.map((d) => path.join(d, this.path));
  }

  private file(mount: string, name: string): string {
    return path.join(mount, this.path, name);
  }

  private write(mount: string, name: string, value: string): void {
    writeFileSync(this.file(mount, name), value);
  }
}
