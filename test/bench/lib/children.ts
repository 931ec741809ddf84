// Every process a bench starts goes through one Children registry, which
// stops them all (SIGTERM, then SIGKILL after a grace period) on cleanup, on
// SIGINT/SIGTERM of the bench, and — synchronously, with SIGKILL — when the
// bench process exits for any reason, so a failed bench leaves nothing behind.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { createInterface, type Interface } from 'node:readline';

export const STOP_GRACE_MS = 2_000;

export interface Started {
  readonly child: ChildProcess;
  readonly name: string;
  /** The last 4 kB of its stderr, for error messages. */
  stderr(): string;
}

export class Children {
  private readonly all = new Set<Started>();
  private readonly onExit = (): void => {
    for (const s of this.all) if (alive(s.child)) s.child.kill('SIGKILL');
  };

  constructor() {
    process.on('exit', this.onExit);
  }

  /** Start `command` (stdout piped unless told otherwise, stderr kept). */
  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Started {
    const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    let tail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-4096);
    });
    child.on('error', () => undefined); // reported through exit / firstLine
    const started: Started = { child, name, stderr: () => tail };
    this.all.add(started);
    child.once('exit', () => this.all.delete(started));
    return started;
  }

  /** Start a Node script with this Node. */
  node(name: string, script: string, args: readonly string[], options: SpawnOptions = {}): Started {
    return this.spawn(name, process.execPath, [script, ...args], options);
  }

  /** Stop one process: SIGTERM (after SIGCONT, in case it is stopped), SIGKILL after the grace period. */
  async stop(s: Started, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!alive(s.child)) return;
    const exited = once(s.child, 'exit');
    s.child.kill('SIGCONT');
    s.child.kill(signal);
    const timer = setTimeout(() => s.child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Stop every process still running and stop watching for this process's exit. */
  async close(): Promise<void> {
    await Promise.all([...this.all].map((s) => this.stop(s)));
    this.onExit();
    process.off('exit', this.onExit);
  }
}

export function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** The first line the process writes to stdout; rejects if it exits first or takes longer than timeoutMs. */
export async function firstLine(s: Started, timeoutMs = 20_000): Promise<string> {
  const out = s.child.stdout;
  if (!out) throw new Error(`${s.name}: no stdout`);
  const lines = createInterface({ input: out });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<string>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${s.name}: no output within ${timeoutMs} ms; stderr: ${s.stderr()}`)), timeoutMs);
      lines.once('line', resolve);
      s.child.once('exit', (code, signal) => reject(new Error(`${s.name} exited (${signal ?? code}) before it was ready; stderr: ${s.stderr()}`)));
    });
  } finally {
    clearTimeout(timer);
    lines.close();
  }
}

/** Run `fn`, and whatever happens (including SIGINT/SIGTERM), run `cleanup` once before leaving. */
export async function withCleanup<T>(cleanup: () => Promise<void> | void, fn: () => Promise<T>): Promise<T> {
  let cleaned: Promise<void> | null = null;
  const clean = (): Promise<void> => (cleaned ??= Promise.resolve().then(cleanup));
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: cleaning up\n`);
    void clean().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn();
  } finally {
    await clean();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The lines a process writes to stdout, one at a time, for question-and-answer protocols over stdin/stdout. */
export class LineReader {
  private readonly lines: string[] = [];
  private waiter: ((l: string) => void) | null = null;
  private readonly rl: Interface;
  constructor(s: Started) {
    if (!s.child.stdout) throw new Error(`${s.name}: no stdout`);
    this.rl = createInterface({ input: s.child.stdout });
    this.rl.on('line', (l) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w(l);
      } else this.lines.push(l);
    });
  }
  next(timeoutMs = 60_000): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer')), timeoutMs);
      this.waiter = (x) => {
        clearTimeout(t);
        resolve(x);
      };
    });
  }
}
