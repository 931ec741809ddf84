// Cgroup scope, v1 and v2: where the cgroup's files are, its CPU usage,
// throttling, memory, limits and (v2 only) pressure.
//
// Version choice, per cgroup: v2 when the cgroup's v2 directory has the cpu
// controller (a unified host, or a hybrid one that moved cpu to v2); else v1
// when the v1 cpuacct controller is mounted (a hybrid host such as Debian 10 or
// this project's test machines); else v2 with only the core cpu.stat (usage
// without quota or throttling, as on a unified host that does not delegate cpu).
import { join, posix } from 'node:path';
import { AgentError } from '../errors.js';
import { DEFAULT_PROC_ROOT, DEFAULT_SYS_ROOT, HeldFile, isAbsent, readText, readTextOrNull } from './read-text.js';
import { fields, integerField, lines, parseError } from './parse-text.js';
import { readPressureFile, type Pressure, type PressureResource } from './pressure.js';

/** The cgroup of the agent itself (read from /proc/self/cgroup). */
export const SELF_CGROUP = 'self';

const NS_PER_USEC = 1000;

// ---- /proc/self/mountinfo -------------------------------------------------

export interface Mount {
  /** The directory of the mounted filesystem that appears at mountPoint ("/" unless a bind mount). */
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  /** Per-superblock options; a cgroup v1 mount lists its controllers here. */
  readonly superOptions: readonly string[];
}

/** Lines like `31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu` (proc(5)). */
export function parseMountinfo(text: string, file = '/proc/self/mountinfo'): Mount[] {
  return lines(file, text).map((line) => {
    const parts = fields(line);
    const dash = parts.indexOf('-', 6);
    const [root, mountPoint] = [parts[3], parts[4]];
    const [fsType, , superOptions] = dash < 0 ? [] : parts.slice(dash + 1);
    if (root === undefined || mountPoint === undefined || fsType === undefined || superOptions === undefined) {
      throw parseError(file, `truncated line ${JSON.stringify(line)}`);
    }
    return { root: unescapeOctal(root), mountPoint: unescapeOctal(mountPoint), fsType, superOptions: superOptions.split(',') };
  });
}

/** mountinfo escapes space, tab, newline and backslash as \040 \011 \012 \134. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

// ---- /proc/self/cgroup -----------------------------------------------------

export interface CgroupMembership {
  /** 0 for the v2 hierarchy. */
  readonly hierarchyId: number;
  /** v1 controllers ("cpu", "cpuacct", "name=systemd"); empty for v2. */
  readonly controllers: readonly string[];
  readonly path: string;
}

/** Lines like `4:memory:/system.slice/nginx.service` or `0::/user.slice`. */
export function parseProcCgroup(text: string, file = '/proc/self/cgroup'): CgroupMembership[] {
  return lines(file, text).map((line) => {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) throw parseError(file, `truncated line ${JSON.stringify(line)}`);
    const path = line.slice(second + 1);
    if (!path.startsWith('/')) throw parseError(file, `bad path ${JSON.stringify(path)} in line ${JSON.stringify(line)}`);
    const controllers = line.slice(first + 1, second);
    return {
      hierarchyId: integerField(file, line.slice(0, first), line),
      controllers: controllers === '' ? [] : controllers.split(','),
      path,
    };
  });
}

// ---- where the cgroup's files are ------------------------------------------

export interface CgroupV1Dirs {
  readonly version: 1;
  /** cpuacct.usage: the scope's CPU usage (required). */
  readonly cpuacct: string;
  /** cpu.cfs_* and cpu.stat: quota and throttling; null when the cpu controller is not mounted. */
  readonly cpu: string | null;
  readonly memory: string | null;
}

export interface CgroupV2Dir {
  readonly version: 2;
  readonly dir: string;
}

export type CgroupDirs = CgroupV1Dirs | CgroupV2Dir;

export interface CgroupCandidates {
  /** Directory per v1 controller that is mounted. */
  readonly v1: { readonly cpuacct: string | null; readonly cpu: string | null; readonly memory: string | null };
  readonly v2: string | null;
}

/**
 * Directories the cgroup `path` ("self" or a path inside the hierarchy, such
 * as /system.slice/nginx.service) would have in each mounted hierarchy. Mount
 * points under /sys are moved under `sysRoot`, so a container can read the
 * host's /sys mounted elsewhere and tests can read a fixture tree.
 */
export function locateCgroup(
  mounts: readonly Mount[],
  memberships: readonly CgroupMembership[],
  path: string,
  sysRoot: string,
): CgroupCandidates {
  const dirFor = (mount: Mount | undefined, selfPath: string | undefined): string | null => {
    if (mount === undefined) return null;
    const cgroupPath = path === SELF_CGROUP ? selfPath : path;
    if (cgroupPath === undefined) return null;
    // A bind-mounted subtree (root "/docker/abc") shows paths below its root.
    const inMount = mount.root !== '/' && (cgroupPath === mount.root || cgroupPath.startsWith(`${mount.root}/`))
      ? cgroupPath.slice(mount.root.length)
      : cgroupPath;
    const mountPoint = mount.mountPoint.startsWith('/sys/') ? join(sysRoot, mount.mountPoint.slice('/sys/'.length)) : mount.mountPoint;
    const dir = join(mountPoint, posix.normalize(`/${inMount}`));
    return dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
  };
  const v1 = (controller: string): string | null =>
    dirFor(
      mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(controller)),
      memberships.find((c) => c.hierarchyId !== 0 && c.controllers.includes(controller))?.path,
    );
  return {
    v1: { cpuacct: v1('cpuacct'), cpu: v1('cpu'), memory: v1('memory') },
    v2: dirFor(mounts.find((m) => m.fsType === 'cgroup2'), memberships.find((c) => c.hierarchyId === 0)?.path),
  };
}

/** Resolves the cgroup's directories; throws AGENT_SCOPE_GONE when it does not exist. */
export async function openCgroup(path: string, procRoot = DEFAULT_PROC_ROOT, sysRoot = DEFAULT_SYS_ROOT): Promise<CgroupDirs> {
  if (path !== SELF_CGROUP && !path.startsWith('/')) {
    throw new AgentError('AGENT_CONFIG_INVALID', `cgroup path ${JSON.stringify(path)} must be "self" or start with "/"`);
  }
  const mountsFile = join(procRoot, 'self', 'mountinfo');
  const cgroupFile = join(procRoot, 'self', 'cgroup');
  const mounts = parseMountinfo(await readText(mountsFile), mountsFile);
  const memberships = path === SELF_CGROUP ? parseProcCgroup(await readText(cgroupFile), cgroupFile) : [];
  const found = locateCgroup(mounts, memberships, path, sysRoot);
  const v2Controllers = found.v2 === null ? null : await readTextOrNull(join(found.v2, 'cgroup.controllers'));
  if (found.v2 !== null && v2Controllers !== null && fields(v2Controllers).includes('cpu')) return { version: 2, dir: found.v2 };
  const { cpuacct, cpu, memory } = found.v1;
  if (cpuacct !== null && (await readTextOrNull(join(cpuacct, 'cpuacct.usage'))) !== null) return { version: 1, cpuacct, cpu, memory };
  if (found.v2 !== null && v2Controllers !== null) return { version: 2, dir: found.v2 };
  const dir = cpuacct ?? found.v2;
  if (dir === null) throw new AgentError('AGENT_CONFIG_INVALID', `${mountsFile}: no cgroup2 mount and no cgroup v1 cpuacct mount`);
  throw scopeGone(path, dir);
}

function scopeGone(path: string, dir: string, cause?: unknown): AgentError {
  return new AgentError('AGENT_SCOPE_GONE', `cgroup ${path} not found (${dir})`, { cause });
}

// ---- the files ---------------------------------------------------------------

/** A file holding one integer, such as cpuacct.usage, memory.current or cpu.cfs_quota_us. */
export function parseCgroupInteger(text: string, file: string): number {
  const [line = ''] = lines(file, text);
  const [value, extra] = fields(line);
  if (extra !== undefined) throw parseError(file, `expected one value, got ${JSON.stringify(line)}`);
  return integerField(file, value, line);
}

/** memory.max: an integer, or "max" (no limit) → null. */
export function parseCgroupMax(text: string, file: string): number | null {
  return text.trim() === 'max' ? null : parseCgroupInteger(text, file);
}

/** cpu.max: "$QUOTA $PERIOD" in µs, QUOTA "max" when unlimited → cores, or null without a quota. */
export function parseCpuMax(text: string, file: string): number | null {
  const [line = ''] = lines(file, text);
  const [quota, period, extra] = fields(line);
  if (extra !== undefined) throw parseError(file, `expected "QUOTA PERIOD", got ${JSON.stringify(line)}`);
  const periodUs = integerField(file, period, line);
  if (periodUs <= 0) throw parseError(file, `bad period in line ${JSON.stringify(line)}`);
  return quota === 'max' ? null : integerField(file, quota, line) / periodUs;
}

/** v1 cpu.cfs_quota_us and cpu.cfs_period_us → cores, or null without a quota (-1). */
export function cfsQuotaCores(quotaUs: number, periodUs: number): number | null {
  return quotaUs < 0 || periodUs <= 0 ? null : quotaUs / periodUs;
}

export interface CgroupCpuStat {
  /** v2 only (v1 usage comes from cpuacct.usage). */
  readonly usageUsec: number | null;
  /** Absent in v2 without the cpu controller. */
  readonly nrPeriods: number | null;
  readonly nrThrottled: number | null;
}

/** cpu.stat of v1 (nr_periods, nr_throttled, throttled_time, ...) or v2 (usage_usec, ..., nr_periods, nr_throttled, ...). */
export function parseCgroupCpuStat(text: string, file: string): CgroupCpuStat {
  let usageUsec: number | null = null;
  let nrPeriods: number | null = null;
  let nrThrottled: number | null = null;
  for (const line of lines(file, text)) {
    const [key, value] = fields(line);
    if (key === 'usage_usec') usageUsec = integerField(file, value, line);
    else if (key === 'nr_periods') nrPeriods = integerField(file, value, line);
    else if (key === 'nr_throttled') nrThrottled = integerField(file, value, line);
    else if (value === undefined) throw parseError(file, `truncated line ${JSON.stringify(line)}`);
  }
  return { usageUsec, nrPeriods, nrThrottled };
}

// ---- readers -------------------------------------------------------------------

export interface CgroupCpu {
  /** Cumulative CPU time of the cgroup, µs. */
  readonly usageUsec: number;
  readonly nrPeriods: number | null;
  readonly nrThrottled: number | null;
}

export interface CgroupLimits {
  /** CPU quota in cores, or null without one. */
  readonly quotaCores: number | null;
  /** Memory limit in bytes, or null without one (v2 "max", v1 a page-counter maximum, or no memory controller). */
  readonly memoryLimitBytes: number | null;
}

/**
 * The scope's CPU source, its files held open (it is read in every watch
 * window): usage and the throttling counters. read() throws when the cgroup
 * is gone.
 */
export class CgroupCpuSource {
  /** v2: cpu.stat holds usage and throttling; v1: cpuacct.usage. */
  private readonly usage: HeldFile;
  /** v1 only: cpu.stat of the cpu controller, when mounted. */
  private readonly throttling: HeldFile | null;

  constructor(private readonly dirs: CgroupDirs) {
    this.usage = new HeldFile(dirs.version === 2 ? join(dirs.dir, 'cpu.stat') : join(dirs.cpuacct, 'cpuacct.usage'));
    this.throttling = dirs.version === 1 && dirs.cpu !== null ? new HeldFile(join(dirs.cpu, 'cpu.stat')) : null;
  }

  read(): CgroupCpu {
    const file = this.usage.path;
    if (this.dirs.version === 2) {
      const stat = parseCgroupCpuStat(this.usage.read(), file);
      if (stat.usageUsec === null) throw parseError(file, 'no usage_usec');
      return { usageUsec: stat.usageUsec, nrPeriods: stat.nrPeriods, nrThrottled: stat.nrThrottled };
    }
    const usageUsec = parseCgroupInteger(this.usage.read(), file) / NS_PER_USEC;
    const stat = this.throttling === null ? null : this.readThrottling(this.throttling);
    return { usageUsec, nrPeriods: stat?.nrPeriods ?? null, nrThrottled: stat?.nrThrottled ?? null };
  }

  close(): void {
    this.usage.close();
    this.throttling?.close();
  }

  private readThrottling(file: HeldFile): CgroupCpuStat | null {
    let text: string;
    try {
      text = file.read();
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
    return parseCgroupCpuStat(text, file.path);
  }
}

/** Memory charged to the cgroup in bytes, or null without a memory controller. */
export function readCgroupMemory(dirs: CgroupDirs): Promise<number | null> {
  return readOptionalInteger(dirs.version === 2 ? join(dirs.dir, 'memory.current') : dirs.memory && join(dirs.memory, 'memory.usage_in_bytes'));
}

/** Read once at start: capacity is announced once, in Hello. */
export async function readCgroupLimits(dirs: CgroupDirs): Promise<CgroupLimits> {
  if (dirs.version === 2) {
    const cpuFile = join(dirs.dir, 'cpu.max');
    const memFile = join(dirs.dir, 'memory.max');
    const [cpu, mem] = await Promise.all([readTextOrNull(cpuFile), readTextOrNull(memFile)]);
    return {
      quotaCores: cpu === null ? null : parseCpuMax(cpu, cpuFile),
      memoryLimitBytes: mem === null ? null : parseCgroupMax(mem, memFile),
    };
  }
  const cpuFile = (name: string): string | null => dirs.cpu && join(dirs.cpu, name);
  const [quota, period, limit] = await Promise.all([
    readOptionalInteger(cpuFile('cpu.cfs_quota_us')),
    readOptionalInteger(cpuFile('cpu.cfs_period_us')),
    readOptionalInteger(dirs.memory && join(dirs.memory, 'memory.limit_in_bytes')),
  ]);
  return {
    quotaCores: quota === null || period === null ? null : cfsQuotaCores(quota, period),
    // "No limit" in v1 is the page counter's maximum (9223372036854771712 on
    // x86-64); the sampler caps every limit at MemTotal, which covers it.
    memoryLimitBytes: limit,
  };
}

/** An integer file that may be absent (controller not mounted or not enabled). */
async function readOptionalInteger(file: string | null): Promise<number | null> {
  const text = file === null ? null : await readTextOrNull(file);
  return text === null || file === null ? null : parseCgroupInteger(text, file);
}

/** v2 `<resource>.pressure` of the cgroup; null in v1, which has no per-cgroup PSI. */
export function readCgroupPressure(dirs: CgroupDirs, resource: PressureResource): Promise<Pressure | null> {
  return dirs.version === 2 ? readPressureFile(join(dirs.dir, `${resource}.pressure`)) : Promise.resolve(null);
}

// ---- deltas ---------------------------------------------------------------------

/** CPU used over the window as a fraction of `cores`; null when the usage counter went backwards. */
export function cgroupCpuUtilization(prevUsageUsec: number, curUsageUsec: number, windowMs: number, cores: number): number | null {
  const used = curUsageUsec - prevUsageUsec;
  if (used < 0 || windowMs <= 0 || cores <= 0) return null;
  return used / (windowMs * 1000 * cores);
}

/** Δnr_throttled / Δnr_periods, 0..1; null when no CFS period elapsed or the counters are missing or went backwards. */
export function throttledFraction(prev: CgroupCpu, cur: CgroupCpu): number | null {
  if (prev.nrPeriods === null || cur.nrPeriods === null || prev.nrThrottled === null || cur.nrThrottled === null) return null;
  const periods = cur.nrPeriods - prev.nrPeriods;
  const throttled = cur.nrThrottled - prev.nrThrottled;
  if (periods <= 0 || throttled < 0) return null;
  return Math.min(1, throttled / periods);
}
