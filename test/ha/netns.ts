// A small lab of network namespaces for the director-pair test: processes
// started inside a namespace with their output read line by line (each line
// stamped with the wall clock when it arrived), and a teardown that ends every
// process in the lab's namespaces and deletes them, also after a failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { findExecutable, type Prerequisite } from '../helpers/real-engine.js';

const COMMAND_TIMEOUT_MS = 10_000;

export interface Line {
  /** Date.now() when the line arrived. */
  readonly at: number;
  readonly text: string;
}

/** Runs `ip` (or another command) to completion; throws with its stderr when it fails. */
export function sh(command: string, args: readonly string[]): string {
  const r = spawnSync(findExecutable(command) ?? command, args, { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
  if (r.error !== undefined) throw new Error(`${command} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

export class LabProcess {
  readonly lines: Line[] = [];
  private readonly waiters = new Set<() => void>();
  exited = false;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    let partial = '';
    const onData = (chunk: Buffer): void => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      const at = Date.now();
      for (const text of parts) this.lines.push({ at, text });
      if (parts.length > 0) for (const w of this.waiters) w();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', () => {
      this.exited = true;
      for (const w of this.waiters) w();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The first line (from index `from` on) matching `pattern`; rejects after `timeoutMs` saying what was awaited. */
  waitForLine(pattern: RegExp, timeoutMs: number, from = 0): Promise<Line> {
    return new Promise((resolve, reject) => {
      let next = from;
      const check = (): boolean => {
        for (; next < this.lines.length; next += 1) {
          const line = this.lines[next];
          if (line !== undefined && pattern.test(line.text)) {
            done();
            resolve(line);
            return true;
          }
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        const tail = this.lines.slice(-15).map((l) => `  ${l.text}`).join('\n');
        reject(new Error(`${this.name}: no line matching ${String(pattern)} within ${timeoutMs} ms; last lines:\n${tail}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter = (): void => {
        check();
      };
      if (check()) return;
      this.waiters.add(waiter);
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.exited) this.child.kill(signal);
  }

  /** Resolves when the process has exited (at once if it has). */
  async exit(timeoutMs = 10_000): Promise<void> {
    if (this.exited) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms`)), timeoutMs);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** Network namespaces named `lf-<tag>-<random>-<name>`, removed with everything running in them by `destroy()`. */
export class Lab {
  readonly prefix: string;
  private readonly namespaces: string[] = [];
  private readonly processes: LabProcess[] = [];

  constructor(tag: string) {
    this.prefix = `lf-${tag}-${randomBytes(3).toString('hex')}`;
  }

  /** Creates a namespace with loopback up; returns its full name. */
  namespace(name: string): string {
    const full = `${this.prefix}-${name}`;
    sh('ip', ['netns', 'add', full]);
    this.namespaces.push(full);
    sh('ip', ['-n', full, 'link', 'set', 'lo', 'up']);
    return full;
  }

  /** Starts `command` inside namespace `ns` (ip netns exec execs it, so the pid is the command's). */
  spawn(ns: string, name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): LabProcess {
    const child = spawn(findExecutable('ip') ?? 'ip', ['netns', 'exec', ns, command, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    const p = new LabProcess(name, child);
    this.processes.push(p);
    return p;
  }

  /** The last `n` lines of every process started here, for a failure message. */
  tails(n = 12): string {
    return this.processes
      .map((p) => `--- ${p.name} (pid ${p.pid}${p.exited ? ', exited' : ''})\n${p.lines.slice(-n).map((l) => `  ${l.text}`).join('\n')}`)
      .join('\n');
  }

  /** Ends every process started here and every other process left in the namespaces, then deletes them. */
  async destroy(): Promise<void> {
    for (const p of this.processes) p.kill('SIGTERM');
    await Promise.all(this.processes.map((p) => p.exit(3_000).catch(() => p.kill('SIGKILL'))));
    for (const ns of this.namespaces) {
      // Children that outlived their parent (keepalived's VRRP process, a health-check script).
      const pids = spawnSync(findExecutable('ip') ?? 'ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const ns of this.namespaces.reverse()) {
      spawnSync(findExecutable('ip') ?? 'ip', ['netns', 'delete', ns], { encoding: 'utf8' });
    }
    this.namespaces.length = 0;
  }
}

/** Network namespaces joined by a Linux bridge, which VRRP multicast crosses. */
export const NETNS_WITH_BRIDGE: Prerequisite = {
  what: 'network namespaces with a Linux bridge',
  howTo: 'needs root, iproute2 (apt-get install -y --no-install-recommends iproute2) and a kernel with CONFIG_NET_NS, veth and bridge',
  probe: () => {
    const ns = `lf-probe-${randomBytes(4).toString('hex')}`;
    try {
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
      sh('ip', ['-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
      sh('ip', ['-n', ns, 'link', 'set', 'v0', 'master', 'br0']);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    } finally {
      spawnSync(findExecutable('ip') ?? 'ip', ['netns', 'delete', ns]);
    }
  },
};
