#!/usr/bin/env node
// Packs every published workspace (proto, kernel-bridge, agent, poller) into
// one directory, so that a host without the registry copies of @loadfeed/*
// installs them together:
//
//   npm run build && node scripts/pack.mjs dist
//   npm install -g dist/*.tgz          # real servers need only proto + agent
//
// The packages depend on each other at exact versions; npm takes each one from
// the tarball given beside it. Prints one JSON line per tarball: name, version,
// file (absolute path) and files (the paths inside the tarball).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** In dependency order; `npm install -g` wants them all at once anyway. */
const WORKSPACES = ['proto', 'kernel-bridge', 'agent', 'poller'];

const destination = path.resolve(process.argv[2] ?? path.join(root, '.cache', 'pack'));
for (const ws of WORKSPACES) {
  if (!existsSync(path.join(root, ws, 'build', 'src', 'index.js'))) {
    process.stderr.write(`pack: ${ws}/build is missing; run "npm run build" first\n`);
    process.exit(1);
  }
}
mkdirSync(destination, { recursive: true });

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const result = spawnSync(
  npm,
  ['pack', '--json', '--pack-destination', destination, ...WORKSPACES.flatMap((w) => ['--workspace', w])],
  { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);
if (result.status !== 0) {
  process.stderr.write(`pack: npm pack exited ${result.status ?? result.signal}\n`);
  process.exit(1);
}
for (const p of JSON.parse(result.stdout)) {
  const line = {
    name: p.name,
    version: p.version,
    file: path.join(destination, p.filename),
    files: p.files.map((f) => f.path),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
