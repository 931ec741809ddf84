import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** A workspace package's built bin, e.g. binPath('@loadfeed/poller', 'loadfeed-poller'). */
export function binPath(pkg: string, name: string): string {
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), `build/src/bin/${name}.js`);
}

/** The Node options on a bin's launcher line (`#!/usr/bin/env -S node --opt ...`). */
export function launcherOptions(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z0-9-]+(?:=\S+)?)*)$/.exec(first);
  if (!m) throw new Error(`unexpected launcher line ${JSON.stringify(first)} in ${file}`);
  return (m[1] ?? '').split(' ').filter((x) => x !== '');
}
