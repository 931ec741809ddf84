import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** A workspace package's bin as its package.json names it, e.g. binPath('@loadfeed/poller', 'loadfeed-poller'). */
export function binPath(pkg: string, name: string): string {
  const manifest = require.resolve(`${pkg}/package.json`);
  const file = (JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: Record<string, string> }).bin?.[name];
  if (file === undefined) throw new Error(`${pkg} has no bin ${name}`);
  return path.join(path.dirname(manifest), file);
}

/** The Node options on a bin's launcher line (`#!/usr/bin/env -S node --opt ...`). */
export function launcherOptions(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z0-9-]+(?:=\S+)?)*)$/.exec(first);
  if (!m) throw new Error(`unexpected launcher line ${JSON.stringify(first)} in ${file}`);
  return (m[1] ?? '').split(' ').filter((x) => x !== '');
}
