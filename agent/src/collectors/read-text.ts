// The only way collectors touch the filesystem: whole-file reads of small
// /proc and /sys files (the kernel generates them on read; never cached).
//
// Reads are synchronous on purpose. fs.promises.readFile costs four thread-pool
// round trips per file (open, fstat, read, close) and a promise each; for a
// /proc file the kernel produces in microseconds that overhead was most of the
// agent's own CPU when sampling 10 times a second (bench:agent-cost). The
// functions stay async so callers and tests do not change.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

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

/** Room for the whole of /proc/stat on a host with a few dozen CPUs; grown when a file does not fit. */
const HELD_FILE_BYTES = 4096;

/**
 * A file the agent re-reads several times a second (the scope's CPU source
 * in every watch window): held open and read from offset 0 with one pread,
 * since the kernel regenerates /proc and cgroup files on every read. Each
 * syscall costs tens of µs when cold, and readFileSync makes five (open,
 * fstat, read, read to EOF, close). A removed cgroup's file answers ENODEV;
 * the owner closes it now and then (once per report) so that the next read
 * opens the path afresh and follows a file removed or re-created.
 */
export class HeldFile {
  private fd: number | null = null;
  private buffer = Buffer.allocUnsafe(HELD_FILE_BYTES);

  constructor(readonly path: string) {}

  /** The file's text now; throws what open or read throws (and opens afresh on the next call). */
  read(): string {
    try {
      const fd = (this.fd ??= openSync(this.path, 'r'));
      let n = readSync(fd, this.buffer, 0, this.buffer.length, 0);
      while (n === this.buffer.length) {
        this.buffer = Buffer.allocUnsafe(this.buffer.length * 2);
        n = readSync(fd, this.buffer, 0, this.buffer.length, 0);
      }
      return this.buffer.toString('latin1', 0, n); // /proc and cgroup files are ASCII
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Closes the descriptor; the next read opens the path again. */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
