// Paths into the /proc and /sys trees captured from a real host
// (test/fixtures/README.md), and throw-away copies of them that a test may edit.
import { cp, mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** `uname -r` of the machine the fixtures were captured on. */
export const FIXTURE_KERNEL = '6.18.44-fc-v782';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
export const fixtureRoot = path.join(fixtures, 'proc', FIXTURE_KERNEL);
export const fixtureProc = path.join(fixtureRoot, 'proc');
export const fixtureSys = path.join(fixtureRoot, 'sys');
export const sockDiagFixtures = path.join(fixtures, 'sock-diag', FIXTURE_KERNEL);

/** Text of a fixture file, e.g. fixtureText('proc/stat'). */
export function fixtureText(relative: string): string {
  return readFileSync(path.join(fixtureRoot, relative), 'utf8');
}

export interface TreeCopy {
  readonly procRoot: string;
  readonly sysRoot: string;
  /** Replaces (or creates) a file, path relative to the tree root ("proc/stat"). */
  write(relative: string, text: string): Promise<void>;
  remove(relative: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function copyFixtureTree(): Promise<TreeCopy> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'loadfeed-proc-'));
  await cp(fixtureRoot, root, { recursive: true });
  return {
    procRoot: path.join(root, 'proc'),
    sysRoot: path.join(root, 'sys'),
    write: async (relative, text) => {
      await mkdir(path.dirname(path.join(root, relative)), { recursive: true });
      await writeFile(path.join(root, relative), text);
    },
    remove: (relative) => rm(path.join(root, relative), { recursive: true, force: true }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
