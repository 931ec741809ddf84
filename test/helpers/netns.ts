// Network namespaces for tests: created with `ip netns add lf-test-<random>-…`,
// wired with veth pairs, and torn down at the end of the test whatever
// happened: processes started inside are killed first, then every namespace
// is deleted (which deletes its veth ends). Needs root and iproute2.
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { findExecutable } from './real-engine.js';

/** Bound on one `ip` call and on a process stopping at teardown. */
export const NETNS_WAIT_MS = 10_000;

export interface Lab {
  /** `lf-test-<random>`: the prefix of every namespace of this lab. */
  readonly prefix: string;
  /** Create namespace `<prefix>-<role>` with `lo` up; deleted at teardown. */
  namespace(role: string): Promise<string>;
  /** A veth pair between two namespaces, both ends up, with addresses (CIDR) on each end. */
  veth(a: VethEnd, b: VethEnd): Promise<void>;
  /** Run `argv` inside `ns` (`ip netns exec`), failing with its stderr when it exits non-zero. */
  exec(ns: string, argv: readonly string[]): Promise<string>;
  /** Start `argv` inside `ns`; killed at teardown. */
  spawn(ns: string, argv: readonly string[]): ChildProcessWithoutNullStreams;
  /** The argv prefix that runs a command inside `ns`. */
  prefixFor(ns: string): string[];
}

export interface VethEnd {
  readonly ns: string;
  /** Interface name inside `ns` (at most 15 characters). */
  readonly name: string;
  /** Addresses to put on it, e.g. `10.77.1.1/24`. */
  readonly addresses: readonly string[];
}

const IP = findExecutable('ip') ?? 'ip';

/** Run `ip args` and return stdout; reject with the command and its stderr when it fails. */
export async function ip(args: readonly string[]): Promise<string> {
  const child = spawn(IP, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'close', { signal: AbortSignal.timeout(NETNS_WAIT_MS) })) as [number | null];
  if (code !== 0) throw new Error(`ip ${args.join(' ')} exited with ${String(code)}: ${stderr.trim()}`);
  return stdout;
}

/** A lab whose namespaces and processes are all removed at the end of the test `t`. */
export function createLab(t: ExecutionContext): Lab {
  const prefix = `lf-test-${randomBytes(3).toString('hex')}`;
  const namespaces: string[] = [];
  const children: ChildProcessWithoutNullStreams[] = [];

  t.teardown(async () => {
    const problems: string[] = [];
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const closed = once(child, 'close');
      child.kill('SIGKILL');
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, NETNS_WAIT_MS).unref())]);
    }
    for (const ns of namespaces.reverse()) {
      await ip(['netns', 'delete', ns]).catch((error: Error) => problems.push(error.message));
    }
    if (problems.length > 0) throw new Error(`netns teardown: ${problems.join('; ')}`);
  });

  const prefixFor = (ns: string): string[] => [IP, 'netns', 'exec', ns];

  return {
    prefix,
    async namespace(role) {
      const name = `${prefix}-${role}`;
      await ip(['netns', 'add', name]);
      namespaces.push(name);
      await ip(['-n', name, 'link', 'set', 'lo', 'up']);
      return name;
    },
    async veth(a, b) {
      await ip(['link', 'add', a.name, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns]);
      for (const end of [a, b]) {
        for (const address of end.addresses) await ip(['-n', end.ns, 'address', 'add', address, 'dev', end.name]);
        await ip(['-n', end.ns, 'link', 'set', end.name, 'up']);
      }
    },
    async exec(ns, argv) {
      return ip(['netns', 'exec', ns, ...argv]);
    },
    spawn(ns, argv) {
      const [file, ...args] = [...prefixFor(ns), ...argv];
      const child = spawn(file ?? IP, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      children.push(child);
      return child;
    },
    prefixFor,
  };
}
