#!/usr/bin/env node
// Runs ava over the compiled tests and ends with one plain line that CI reads:
// "N passed, N failed, N skipped". ava prints no such line itself (and none
// at all for passes when something fails), so we run it with --tap and sum
// the TAP trailer. Arguments are passed through to ava (e.g. --match).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ava = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');

const child = spawn(process.execPath, [ava, '--tap', ...process.argv.slice(2)], {
  cwd: path.join(root, 'test'),
  stdio: ['ignore', 'pipe', 'inherit'],
});

let tail = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString('utf8')).slice(-8192);
});

const forward = (signal) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);

child.on('close', (code, signal) => {
  const count = (name) => Number((tail.match(new RegExp(`^# ${name} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
  const pass = count('pass');
  const fail = count('fail');
  const skip = count('skip') + count('todo');
  const exit = code ?? (signal ? 1 : 0);
  // A crash before the trailer (no "# pass" line) still counts as a failure.
  const failed = exit !== 0 && fail === 0 ? 1 : fail;
  process.stdout.write(`\n${pass} passed, ${failed} failed, ${skip} skipped\n`);
  process.exit(exit);
});
