import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const AGENT_BIN = path.join(path.dirname(require.resolve('@loadfeed/agent/package.json')), 'build/src/bin/loadfeed-agent.js');
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The Node options on the bin's launcher line. */
function launcherOptions(): string[] {
  const first = readFileSync(AGENT_BIN, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z0-9-]+(?:=\S+)?)*)$/.exec(first);
  if (!m) throw new Error(`unexpected launcher line ${JSON.stringify(first)}`);
  return (m[1] ?? '').split(' ').filter((x) => x !== '');
}

test('launcher: executed directly (systemd, npm global, npx), the bin starts with its V8 options and prints nothing to stderr', async (t) => {
  t.true(launcherOptions().includes('--lite-mode'));
  const child = spawn(AGENT_BIN, ['--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0);
  t.regex(stdout, /^Usage: loadfeed-agent/);
  // V8 warns on stderr when options conflict (--lite-mode without --no-expose-wasm does).
  t.is(stderr, '');
});

test('launcher: the container ENTRYPOINT passes node the same options as the launcher line', (t) => {
  const dockerfile = readFileSync(path.join(REPO_ROOT, 'deploy/container/agent.Dockerfile'), 'utf8');
  const line = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] ?? 'null';
  const entrypoint = JSON.parse(line) as string[];
  t.deepEqual(entrypoint.slice(0, -1), ['node', ...launcherOptions()]);
  t.is(entrypoint.at(-1), '/app/agent/build/src/bin/loadfeed-agent.js');
});
