// The sampler turns the collectors' counters into readings: CPU and memory of
// the scope (host, cgroup or process tree), plus host-wide load and TCP
// figures and per-service connection counts. It runs several times a second on
// every real server, so it only reads /proc and /sys files (in parallel) and
// one netlink dump: no spawning, no systeminformation. A watch window reads
// the scope's CPU source alone (all the early-report decision needs); the
// rest is read once per report.
//
// Failure policy: a metric whose file cannot be read becomes null (reported
// once per run of failures); only the scope's own CPU source failing (the
// process tree's root exited, the cgroup was removed) throws, because then
// there is nothing left to measure.
import { performance } from 'node:perf_hooks';
import { AgentError } from './errors.js';
import type { AppReading, Capacity, CpuWindow, Reading } from './reading.js';
import { join } from 'node:path';
import { cpuDelta, parseProcStat, readProcStat, scanProcStatCpu, USER_HZ, type ProcStat } from './collectors/proc-stat.js';
import { readMeminfo } from './collectors/meminfo.js';
import type { Pressure } from './collectors/pressure.js';
import { acceptsPerSecond, type TcpSnmp } from './collectors/sockstat.js';
import { HostFiles } from './collectors/host-files.js';
import { createEstablishedCounter, type EstablishedCounter } from './collectors/sock-diag.js';
import { DumpBudget } from './collectors/sock-diag-budget.js';
import {
  CgroupCpuSource,
  cgroupCpuUtilization,
  openCgroup,
  readCgroupLimits,
  readCgroupMemory,
  readCgroupPressure,
  throttledFraction,
  type CgroupCpu,
  type CgroupDirs,
} from './collectors/cgroup.js';
import { HeldFile, isGone } from './collectors/read-text.js';
import { NO_APP_READING, type AppMetrics } from './app/metrics.js';
import { createProcessTreeReader, processCpuUtilization, processTreeTicks, type ProcessTreeUsage } from './collectors/process.js';

export type SamplerScope =
  | { readonly kind: 'host' }
  /** `path` is "self" (the agent's own cgroup) or a path inside the hierarchy, e.g. /system.slice/nginx.service. */
  | { readonly kind: 'cgroup'; readonly path: string }
  /** A process tree measured against a declared capacity; memoryBytes null means the host's MemTotal. */
  | { readonly kind: 'process'; readonly pid: number; readonly cores: number; readonly memoryBytes: number | null };

export interface SamplerOptions {
  readonly scope: SamplerScope;
  readonly procRoot: string;
  readonly sysRoot: string;
  readonly services: readonly { readonly name: string; readonly port: number }[];
  /** Hears each degraded metric once per run of failures; defaults to process.emitWarning. */
  readonly onError?: (error: AgentError) => void;
  /**
   * Share of one core the per-port SOCK_DIAG dumps may use on average (see
   * sock-diag-budget.ts); null dumps on every sample. Default DEFAULT_DUMP_CPU_BUDGET.
   */
  readonly dumpBudget?: number | null;
  /** The application's own metrics, copied (never awaited) into each reading; none when absent. */
  readonly app?: AppMetrics;
  /** Monotonic clock, ms; default performance.now (a unit test gives its windows exact lengths). */
  readonly clock?: () => number;
}

export interface Sampler {
  readonly capacity: Capacity;
  /** The scope's CPU over the window since the previous watch (or since createSampler): reads the scope's CPU source alone. */
  watch(): Promise<CpuWindow>;
  /**
   * The reading to report for `cpu` (one watch window, or the windows since
   * the previous report merged): levels as of now, accepts per second over
   * the span since the previous report; `app`, the application's values
   * already read for this window, or read now when not given.
   */
  report(cpu: CpuWindow, app?: AppReading): Promise<Reading>;
  /** One watch window reported alone: a full reading over the window since the previous call. */
  sample(): Promise<Reading>;
  /** Closes the SOCK_DIAG socket. */
  close(): void;
}

/** The scope's CPU over one window; null where it cannot say this time. */
interface CpuFigures {
  /** null: no baseline yet, or counters untrusted (the sampler repeats the previous value). */
  readonly cpu: number | null;
  readonly throttled: number | null;
}

/** The scope's levels now; null where it cannot say this time. */
interface LevelFigures {
  readonly mem: number | null;
  readonly psiCpu: number | null;
  readonly psiMemory: number | null;
  readonly psiIo: number | null;
}

interface ScopeMeter {
  readonly capacity: Capacity;
  /** The CPU time one unit of the scope's accounting stands for, ms. */
  readonly cpuUnitMs: number;
  /** Reads the scope's CPU source and returns its figures since the previous call; throws when the scope is gone. */
  cpu(windowMs: number): Promise<CpuFigures>;
  /** Reads the scope's memory and pressure. */
  levels(): Promise<LevelFigures>;
  /**
   * Closes the files that can go away (a cgroup's); the next CPU read opens
   * them afresh by path. Called once per report, so a removed or re-created
   * cgroup is seen.
   */
  release(): void;
  /** Closes every file it holds (the sampler is closed). */
  close(): void;
}

/** /proc/stat and /proc/PID/stat count CPU time in clock ticks. */
const TICK_MS = 1000 / USER_HZ;

type Attempt = <T>(what: string, read: Promise<T>) => Promise<T | null>;
/** Attempt for a synchronous read (the held host files): no promise per file. */
type TryRead = <T>(what: string, read: () => T) => T | null;

export async function createSampler(options: SamplerOptions): Promise<Sampler> {
  const onError = options.onError ?? ((error: AgentError) => process.emitWarning(error));
  const failing = new Set<string>();
  const failed = (what: string, err: unknown): null => {
    if (!failing.has(what)) {
      failing.add(what);
      onError(err instanceof AgentError ? err : new AgentError('AGENT_READ_FAILED', `${what}: ${(err as Error).message}`, { cause: err }));
    }
    return null;
  };
  const attempt: Attempt = async (what, read) => {
    try {
      const value = await read;
      failing.delete(what);
      return value;
    } catch (err) {
      return failed(what, err);
    }
  };
  const tryRead: TryRead = (what, read) => {
    try {
      const value = read();
      failing.delete(what);
      return value;
    } catch (err) {
      return failed(what, err);
    }
  };

  const host = new HostFiles(options.procRoot);
  let meter: ScopeMeter;
  try {
    meter = await openMeter(options, host, attempt, tryRead);
  } catch (err) {
    host.close();
    throw err;
  }
  const counter: EstablishedCounter | null =
    options.services.length === 0 ? null : createEstablishedCounter(options.services.map((s) => s.port), onError);
  const budget = options.dumpBudget === null ? null : new DumpBudget(options.dumpBudget);

  const clock = options.clock ?? (() => performance.now());
  let lastCpu = 0;
  let lastMem = 0;
  let watchedAt = clock();
  let prevSnmp: TcpSnmp | null = null;
  let reportedAt = watchedAt;

  const watch = async (): Promise<CpuWindow> => {
    const at = clock();
    const windowMs = at - watchedAt;
    watchedAt = at;
    const scope = await meter.cpu(windowMs);
    if (scope.cpu !== null) lastCpu = scope.cpu;
    return {
      cpuUtilization: lastCpu,
      cpuThrottled: scope.throttled,
      windowMs: Math.max(1, Math.round(windowMs)),
      cpuStep: meter.cpuUnitMs / (Math.max(1, windowMs) * meter.capacity.cores),
    };
  };

  const report = async (cpu: CpuWindow, app?: AppReading): Promise<Reading> => {
    const at = clock();
    const sinceReportMs = at - reportedAt;
    reportedAt = at;
    const scope = await meter.levels();
    const load = tryRead('loadavg', () => host.loadavg());
    const inuse = tryRead('net/sockstat', () => host.tcpInuse());
    const snmp = tryRead('net/snmp', () => host.tcpSnmp());
    const counts = counter === null ? null : budget === null ? await counter.count() : await budget.count(at, snmp?.currEstab ?? null, () => counter.count());
    if (scope.mem !== null) lastMem = scope.mem;
    const accepts = prevSnmp === null || snmp === null ? null : acceptsPerSecond(prevSnmp.passiveOpens, snmp.passiveOpens, sinceReportMs);
    prevSnmp = snmp;
    meter.release();
    return {
      ...cpu,
      memUtilization: lastMem,
      load1: load?.load1 ?? null,
      runnable: load?.runnable ?? null,
      psiCpuSome: scope.psiCpu,
      psiMemorySome: scope.psiMemory,
      psiIoSome: scope.psiIo,
      tcpInuse: inuse,
      tcpEstablished: snmp?.currEstab ?? null,
      tcpAcceptsPerSecond: accepts,
      services: options.services.map((s) => ({ name: s.name, established: counts === null ? null : (counts.get(s.port) ?? 0) })),
      ...(app ?? options.app?.read(Date.now()) ?? NO_APP_READING),
    };
  };
  const sample = async (): Promise<Reading> => report(await watch());

  const close = (): void => {
    counter?.close();
    meter.close();
    host.close();
  };
  try {
    await sample(); // the baseline, so the first watch or sample already has a delta
  } catch (err) {
    close();
    throw err;
  }
  return { capacity: meter.capacity, watch, report, sample, close };
}

function openMeter(options: SamplerOptions, host: HostFiles, attempt: Attempt, tryRead: TryRead): Promise<ScopeMeter> {
  const { scope, procRoot, sysRoot } = options;
  switch (scope.kind) {
    case 'host':
      return openHostMeter(procRoot, host, tryRead);
    case 'cgroup':
      return openCgroupMeter(scope.path, procRoot, sysRoot, attempt);
    case 'process':
      return openProcessMeter(scope, procRoot, attempt);
  }
}

async function openHostMeter(procRoot: string, host: HostFiles, tryRead: TryRead): Promise<ScopeMeter> {
  const stat = await readProcStat(procRoot);
  const mem = host.meminfo();
  const source = new HeldFile(join(procRoot, 'stat'));
  let prev: Pick<ProcStat, 'cpu' | 'onlineCpus'> | null = null;
  return {
    capacity: { cores: stat.onlineCpus, memoryBytes: mem.memTotalBytes },
    cpuUnitMs: TICK_MS,
    async cpu(windowMs) {
      const cur = await scopeSource('/proc/stat', () => {
        const length = source.readBytes();
        return scanProcStatCpu(source.bytes, length) ?? parseProcStat(source.bytes.toString('utf8', 0, length), source.path);
      });
      const cpu = prev === null ? null : cpuDelta(prev.cpu, cur.cpu, windowMs, cur.onlineCpus);
      prev = cur; // also the reset after an untrusted delta
      return { cpu, throttled: null };
    },
    async levels() {
      const mem = tryRead('meminfo', () => host.meminfo());
      const psiCpu = tryRead('pressure/cpu', () => host.pressure('cpu'));
      const psiMemory = tryRead('pressure/memory', () => host.pressure('memory'));
      const psiIo = tryRead('pressure/io', () => host.pressure('io'));
      return {
        mem: mem === null ? null : (mem.memTotalBytes - mem.memAvailableBytes) / mem.memTotalBytes,
        psiCpu: some(psiCpu),
        psiMemory: some(psiMemory),
        psiIo: some(psiIo),
      };
    },
    release: () => undefined, // /proc/stat does not go away
    close: () => source.close(),
  };
}

async function openCgroupMeter(path: string, procRoot: string, sysRoot: string, attempt: Attempt): Promise<ScopeMeter> {
  const dirs: CgroupDirs = await openCgroup(path, procRoot, sysRoot);
  const [limits, host, hostMem] = await Promise.all([readCgroupLimits(dirs), readProcStat(procRoot), readMeminfo(procRoot)]);
  // A quota or limit above what the host has cannot be used: cap it.
  const cores = Math.min(limits.quotaCores ?? Infinity, host.onlineCpus);
  const memoryBytes = Math.min(limits.memoryLimitBytes ?? Infinity, hostMem.memTotalBytes);
  const where = dirs.version === 2 ? dirs.dir : dirs.cpuacct;
  const source = new CgroupCpuSource(dirs);
  let prev: CgroupCpu | null = null;
  return {
    capacity: { cores, memoryBytes },
    cpuUnitMs: 0.001, // usage_usec
    async cpu(windowMs) {
      // cpu.stat holds the throttling counters too: one file for both.
      const cur = await scopeSource(`cgroup ${path} (${where})`, () => source.read());
      const figures: CpuFigures = {
        cpu: prev === null ? null : cgroupCpuUtilization(prev.usageUsec, cur.usageUsec, windowMs, cores),
        throttled: prev === null ? null : throttledFraction(prev, cur),
      };
      prev = cur;
      return figures;
    },
    async levels() {
      const [used, psiCpu, psiMemory, psiIo] = await Promise.all([
        attempt('cgroup memory', readCgroupMemory(dirs)),
        attempt('cgroup cpu.pressure', readCgroupPressure(dirs, 'cpu')),
        attempt('cgroup memory.pressure', readCgroupPressure(dirs, 'memory')),
        attempt('cgroup io.pressure', readCgroupPressure(dirs, 'io')),
      ]);
      return { mem: used === null ? null : used / memoryBytes, psiCpu: some(psiCpu), psiMemory: some(psiMemory), psiIo: some(psiIo) };
    },
    release: () => source.close(),
    close: () => source.close(),
  };
}

async function openProcessMeter(scope: Extract<SamplerScope, { kind: 'process' }>, procRoot: string, attempt: Attempt): Promise<ScopeMeter> {
  if (!Number.isInteger(scope.pid) || scope.pid <= 0) throw new AgentError('AGENT_CONFIG_INVALID', `process scope: pid ${scope.pid} must be a positive integer`);
  if (!(scope.cores > 0)) throw new AgentError('AGENT_CONFIG_INVALID', `process scope: capacity ${scope.cores} cores must be > 0`);
  if (scope.memoryBytes !== null && !(scope.memoryBytes > 0)) {
    throw new AgentError('AGENT_CONFIG_INVALID', `process scope: memory ${scope.memoryBytes} bytes must be > 0`);
  }
  const tree = await createProcessTreeReader(scope.pid, procRoot);
  const memoryBytes = scope.memoryBytes ?? (await readMeminfo(procRoot)).memTotalBytes;
  let prev: ProcessTreeUsage | null = null;
  return {
    capacity: { cores: scope.cores, memoryBytes },
    cpuUnitMs: TICK_MS,
    async cpu(windowMs) {
      const cur = await scopeSource(`process ${scope.pid}`, () => tree.read());
      const cpu = prev === null ? null : processCpuUtilization(processTreeTicks(prev, cur), windowMs, scope.cores);
      prev = cur;
      return { cpu, throttled: null };
    },
    async levels() {
      // The tree as of the last CPU read: a report always follows one.
      const rss = prev === null ? null : await attempt('process memory', tree.rssBytes(prev));
      return { mem: rss === null ? null : rss / memoryBytes, psiCpu: null, psiMemory: null, psiIo: null };
    },
    release: () => undefined,
    close: () => undefined,
  };
}

/** The scope's CPU source: its failure ends sampling, as a typed error. */
async function scopeSource<T>(what: string, read: () => T | Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof AgentError) throw err;
    if (isGone(err)) throw new AgentError('AGENT_SCOPE_GONE', `${what} is gone: ${(err as Error).message}`, { cause: err });
    throw new AgentError('AGENT_READ_FAILED', `${what}: ${(err as Error).message}`, { cause: err });
  }
}

function some(p: Pressure | null): number | null {
  return p === null ? null : p.someAvg10;
}
