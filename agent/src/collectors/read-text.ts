// The only way collectors touch the filesystem: whole-file reads of small
// /proc and /sys files (the kernel generates them on read; never cached).
//
// Reads are synchronous on purpose. fs.promises.readFile costs four thread-pool
// round trips per file (open, fstat, read, close) and a promise each; for a
// /proc file the kernel produces in microseconds that overhead was most of the
// agent's own CPU when sampling 10 times a second (bench:agent-cost). The
// functions stay async so callers and tests do not change. They make three
// syscalls per file (open, one read into a reused buffer, close), not
// readFileSync's five (it also fstats, and reads again to find the end of a
// /proc file whose size reads as 0): a cold syscall costs tens of µs here.
import { closeSync, openSync, readSync } from 'node:fs';

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

/** Room for most /proc and /sys files at once; grown when a file does not fit. */
const READ_BUFFER_BYTES = 8192;

/** A buffer reads go into, replaced by a larger one when a file fills it. */
interface ReadBuffer {
  bytes: Buffer;
}

/** The whole of an open file, read from offset 0 into `into` (a /proc file is generated afresh by each read from 0); returns its length. */
function readWholeBytes(fd: number, into: ReadBuffer): number {
  let n = readSync(fd, into.bytes, 0, into.bytes.length, 0);
  while (n === into.bytes.length) {
    into.bytes = Buffer.allocUnsafe(into.bytes.length * 2);
    n = readSync(fd, into.bytes, 0, into.bytes.length, 0);
  }
  return n;
}

function readWhole(fd: number, into: ReadBuffer): string {
  return into.bytes.toString('utf8', 0, readWholeBytes(fd, into));
}

const shared: ReadBuffer = { bytes: Buffer.allocUnsafe(READ_BUFFER_BYTES) };

/** Reads a file; rejects with whatever open or read throws. */
export async function readText(path: string): Promise<string> {
  const fd = openSync(path, 'r');
  try {
    return readWhole(fd, shared);
  } finally {
    closeSync(fd);
  }
}

/** Reads a file, or null when the kernel does not provide it. */
export async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await readText(path);
  } catch (err) {
    if (isAbsent(err)) return null;
    throw err;
  }
}

/**
 * A file the agent re-reads several times a second (the scope's CPU source
 * in every watch window): held open and read from offset 0 with one pread
 * instead of readText's three syscalls. Measured cold at 4 reads a second
 * in --lite-mode, a /proc/stat read cost 0.23–0.27 ms of CPU with
 * readFileSync, 0.18 ms with open-read-close, 0.09 ms held. A removed
 * cgroup's file answers ENODEV; the owner closes it once per report so
 * that the next read opens the path afresh and follows a file removed or
 * re-created.
 */
export class HeldFile {
  private fd: number | null = null;
  private readonly into: ReadBuffer = { bytes: Buffer.allocUnsafe(READ_BUFFER_BYTES) };

  constructor(readonly path: string) {}

  /** The file's text now; throws what open or read throws (and opens afresh on the next call). */
  read(): string {
    return this.into.bytes.toString('utf8', 0, this.readBytes());
  }

  /**
   * Reads the file into `bytes` and returns its length, for a parser that
   * reads bytes: decoding the text is most of a cold read's JavaScript.
   */
  readBytes(): number {
    try {
      return readWholeBytes((this.fd ??= openSync(this.path, 'r')), this.into);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** The buffer the last read went into (replaced by a larger one when a file outgrows it). */
  get bytes(): Buffer {
    return this.into.bytes;
  }

  /** The file's text now, or null when the kernel does not provide it (absent, or disabled). */
  readOrNull(): string | null {
    try {
      return this.read();
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
  }

  /** Closes the descriptor; the next read opens the path again. */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
