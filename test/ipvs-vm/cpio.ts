// A "newc" cpio archive writer (the initramfs format the kernel unpacks):
// each entry is a 110-byte ASCII header, the NUL-terminated name padded to 4
// bytes, then the data padded to 4 bytes; the archive ends with TRAILER!!!.
// Pure; parents must come before their children (`InitramfsTree` sees to it).

export type CpioEntry =
  | { readonly type: 'dir'; readonly path: string; readonly mode?: number }
  | { readonly type: 'file'; readonly path: string; readonly data: Uint8Array; readonly mode?: number }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

export function cpioArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  let offset = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    offset += b.length;
  };
  const pad = (): void => {
    const n = (4 - (offset % 4)) % 4;
    if (n > 0) push(Buffer.alloc(n));
  };
  const entry = (name: string, mode: number, nlink: number, data: Uint8Array): void => {
    const nameBytes = Buffer.from(`${name}\0`, 'utf8');
    const fields = [ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    push(Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'ascii'));
    push(nameBytes);
    pad();
    push(Buffer.from(data));
    pad();
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (name === '') continue;
    switch (e.type) {
      case 'dir':
        entry(name, S_IFDIR | (e.mode ?? 0o755), 2, new Uint8Array());
        break;
      case 'file':
        entry(name, S_IFREG | (e.mode ?? 0o644), 1, e.data);
        break;
      case 'symlink':
        entry(name, S_IFLNK | 0o777, 1, Buffer.from(e.target, 'utf8'));
        break;
    }
  }
  ino = 0;
  entry('TRAILER!!!', 0, 1, new Uint8Array());
  return Buffer.concat(parts);
}

/** Collects entries, adding every missing parent directory before its children. */
export class InitramfsTree {
  private readonly entries: CpioEntry[] = [];
  private readonly dirs = new Set<string>(['']);

  dir(path: string, mode = 0o755): this {
    const clean = path.replace(/^\/+|\/+$/g, '');
    if (this.dirs.has(clean)) return this;
    const parent = clean.includes('/') ? clean.slice(0, clean.lastIndexOf('/')) : '';
    this.dir(parent);
    this.dirs.add(clean);
    this.entries.push({ type: 'dir', path: clean, mode });
    return this;
  }

  file(path: string, data: Uint8Array | string, mode = 0o644): this {
    const clean = path.replace(/^\/+/, '');
    this.parent(clean);
    this.entries.push({ type: 'file', path: clean, data: typeof data === 'string' ? Buffer.from(data) : data, mode });
    return this;
  }

  symlink(path: string, target: string): this {
    const clean = path.replace(/^\/+/, '');
    this.parent(clean);
    this.entries.push({ type: 'symlink', path: clean, target });
    return this;
  }

  archive(): Buffer {
    return cpioArchive(this.entries);
  }

  private parent(path: string): void {
    if (path.includes('/')) this.dir(path.slice(0, path.lastIndexOf('/')));
  }
}
