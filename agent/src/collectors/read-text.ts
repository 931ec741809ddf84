// The only way collectors touch the filesystem: whole-file reads of small
// /proc and /sys files (the kernel generates them on read; never cached).
//
// Reads are synchronous on purpose. fs.promises.readFile costs four thread-pool
// round trips per file (open, fstat, read, close) and a promise each; for a
// /proc file the kernel produces in microseconds that overhead was most of the
// agent's own CPU when sampling 10 times a second (bench:agent-cost). The
// functions stay async so callers and tests do not change.
import { readFileSync } from 'node:fs';

export const DEFAULT_PROC_ROOT = '/proc';
export const DEFAULT_SYS_ROOT = '/sys';

/**
 * Errors meaning "this kernel or scope does not provide the file": absent, or
 * present but disabled (PSI files answer EOPNOTSUPP when booted with psi=0).
 */
const ABSENT_CODES: ReadonlySet<string> = new Set(['ENOENT', 'EOPNOTSUPP']);

/** Errors meaning the process or cgroup behind the file went away (ESRCH: a process exiting mid-read). */
const GONE_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ESRCH', 'ENODEV']);

const errnoCode = (err: unknown): string => (err as NodeJS.ErrnoException | null)?.code ?? '';

export function isAbsent(err: unknown): boolean {
  return ABSENT_CODES.has(errnoCode(err));
}

export function isGone(err: unknown): boolean {
  return GONE_CODES.has(errnoCode(err));
}

/** Reads a file; rejects with whatever readFileSync throws. */
export async function readText(path: string): Promise<string> {
  return readFileSync(path, 'utf8');
}

/** Reads a file, or null when the kernel does not provide it. */
export async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (isAbsent(err)) return null;
    throw err;
  }
}
