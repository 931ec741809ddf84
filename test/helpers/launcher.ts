import { readFileSync } from 'node:fs';

/** The Node options on a bin's launcher line (`#!/usr/bin/env -S node --opt ...`). */
export function launcherOptions(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z0-9-]+(?:=\S+)?)*)$/.exec(first);
  if (!m) throw new Error(`unexpected launcher line ${JSON.stringify(first)} in ${file}`);
  return (m[1] ?? '').split(' ').filter((x) => x !== '');
}
