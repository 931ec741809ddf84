#!/usr/bin/env node
// Runs ava over the compiled tests and ends with one plain line that CI reads:
// "N passed, N failed, N skipped". ava prints no such line itself (and none
// at all for passes when something fails), so we run it with --tap and sum
// the TAP trailer. Just above it, the skipped tests are counted by reason:
// a skipped test's title ends with "(skipped: <why>; …)" or "(<why>)"
// (test/helpers/real-engine.ts), so a fresh machine says what it did not run.
// Arguments are passed through to ava (e.g. --match).
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
let partial = '';
/** How many tests were skipped, by reason. */
const skipped = new Map();
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  const text = chunk.toString('utf8');
  tail = (tail + text).slice(-8192);
  const lines = (partial + text).split('\n');
  partial = lines.pop() ?? '';
  for (const line of lines) {
    const m = /^ok \d+ - (.*) # (SKIP|TODO)\b/.exec(line);
    if (!m) continue;
    const reason = reasonOf(m[1], m[2]);
    skipped.set(reason, (skipped.get(reason) ?? 0) + 1);
  }
});

/** Why a test was skipped, from its title: "(skipped: nftables: no nft binary; …)" → "nftables: no nft binary". */
function reasonOf(title, directive) {
  if (directive === 'TODO') return 'marked todo';
  const gated = /\(skipped: (.*?); [^;]*\)\s*$/.exec(title);
  const other = /\(([^()]*)\)\s*$/.exec(title);
  return (gated ?? other)?.[1].trim() ?? 'skipped in the test file';
}

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
  if (skipped.size > 0) {
    process.stdout.write('\nskipped, by reason (README.md, "Try it", lists the Debian packages that run them):\n');
    for (const [reason, n] of [...skipped].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${String(n).padStart(4)}  ${reason}\n`);
  }
  process.stdout.write(`\n${pass} passed, ${failed} failed, ${skip} skipped\n`);
  process.exit(exit);
});
