// npm packages copied into the guest's memory before the job starts.
//
// Why: the guest reads the host's files over 9p, and every file lookup is a
// round trip through emulated virtio. Node's module resolution makes thousands
// of them (ava's CLI alone opens ~550 files and probes many more paths), which
// took 20 s of the guest's time against 7 s with the same files cached. So the
// packages a job imports (and everything they depend on) travel inside the
// initramfs and are mounted over node_modules as a tmpfs.
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { InitramfsTree } from './cpio.js';

/** Files a running program never reads: type declarations, source maps, docs. */
const SKIP = /(\.d\.[cm]?ts|\.d\.ts\.map|\.map|\.md|\.markdown|\.ts|\.tsx|\.cc|\.cpp|\.h|\.gyp|\.gypi)$/i;

export interface PreloadSummary {
  readonly packages: number;
  readonly files: number;
  readonly bytes: number;
}

/**
 * Add to `tree`, under `/preload<nodeModules>`, the packages `roots` name and
 * their dependencies (dependencies + optionalDependencies, resolved the way
 * Node does: nearest node_modules upwards). Workspace packages (symlinks out
 * of node_modules) are added as symlinks, their dependencies followed.
 */
export function preloadPackages(tree: InitramfsTree, nodeModules: string, roots: readonly string[]): PreloadSummary {
  const seen = new Set<string>();
  let files = 0;
  let bytes = 0;

  const resolve = (from: string, name: string): string | null => {
    for (let dir = from; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', name);
      try {
        lstatSync(path.join(candidate, 'package.json'));
        return candidate;
      } catch {
        // look further up
      }
      if (path.dirname(dir) === dir) return null;
    }
  };

  const copyDir = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const source = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        // Nested node_modules hold other packages: they come in through resolve().
        if (entry.name !== 'node_modules') copyDir(source);
      } else if (entry.isSymbolicLink()) {
        tree.symlink(`/preload${source}`, readlinkSync(source));
      } else if (entry.isFile() && !SKIP.test(entry.name)) {
        const data = readFileSync(source);
        tree.file(`/preload${source}`, data, lstatSync(source).mode & 0o777);
        files++;
        bytes += data.length;
      }
    }
  };

  const visit = (dir: string): void => {
    const real = realpathSync(dir);
    if (seen.has(real)) return;
    seen.add(real);
    const inside = real.startsWith(nodeModules + path.sep);
    if (lstatSync(dir).isSymbolicLink() && dir.startsWith(nodeModules + path.sep)) {
      tree.symlink(`/preload${dir}`, readlinkSync(dir));
    } else if (inside) {
      copyDir(real);
    }
    const manifest = JSON.parse(readFileSync(path.join(real, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const name of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
      // Resolve from where the package is linked, as Node does for workspace packages.
      const found = resolve(inside ? real : dir, name) ?? resolve(dir, name);
      if (found !== null) visit(found);
    }
  };

  for (const name of roots) {
    const found = resolve(path.dirname(nodeModules), name);
    if (found === null) throw new Error(`cannot preload ${name}: not found in ${nodeModules}`);
    visit(found);
  }
  return { packages: seen.size, files, bytes };
}
