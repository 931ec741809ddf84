// The only way collectors touch the filesystem: whole-file reads of small
// /proc and /sys files (the kernel generates them on read; never cached).
import { readFile } from 'node:fs/promises';

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

/** Reads a file; throws whatever readFile throws. */
export function readText(path: string): Promise<string> {
  return readFile(path, 'utf8');
}

/** Reads a file, or null when the kernel does not provide it. */
export async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isAbsent(err)) return null;
    throw err;
  }
}
