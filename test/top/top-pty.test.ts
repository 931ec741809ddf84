// `loadfeed top` in a real pseudo-terminal (80×24, through test/top/pty-run.py,
// Python's standard pty module): it reads a real poller's status server,
// draws the cluster, re-sorts on a key press and quits on `q`, leaving the
// terminal as it found it.
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { FakeAgent } from '../status/fake-agent.js';
import { startHarness } from '../status/harness.js';
import { waitFor } from '../helpers/wait.js';
import { binary, findExecutable, realEngineGate } from '../helpers/real-engine.js';
import { binPath } from '../helpers/launcher.js';

const CLI = binPath('@loadfeed/poller', 'loadfeed');
// Compiled to test/build/top/; the helper stays in test/top/.
const PTY_RUN = fileURLToPath(new URL('../../top/pty-run.py', import.meta.url));
const ESC = String.fromCharCode(0x1b);
// The pty comes from Python's standard library: skipped where python3 is
// missing, a failure then with LOADFEED_REQUIRE_ENGINES=1 (CI).
const gate = realEngineGate('terminal (pty)', [binary('python3', 'python3-minimal')]);

interface Terminal {
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything the program wrote to its terminal. */
  output(): string;
  /** The last complete screen it drew, without escape sequences. */
  screen(): string[];
}

function openTerminal(t: ExecutionContext, args: readonly string[]): Terminal {
  const child = spawn(findExecutable('python3') ?? 'python3', [PTY_RUN, '80', '24', '--', process.execPath, CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    output: () => out,
    screen: () => {
      const frames = out.split(`${ESC}[H`);
      // A frame is complete once it ends by clearing the rest of the screen.
      const done = frames.filter((f) => f.includes(`${ESC}[J`));
      const last = done.at(-1) ?? '';
      return last
        .slice(0, last.lastIndexOf(`${ESC}[J`))
        .replace(new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g'), '')
        .split(/\r?\n/);
    },
  };
}

gate.test('top draws the cluster at 80 columns, re-sorts on a key and quits on q', async (t) => {
  t.timeout(120_000);
  const h = await startHarness(t, { nodes: ['a1', 'a2'] });
  const a1 = new FakeAgent(h.port, 'a1', { services: [{ name: 'http', port: 9001 }] });
  const a2 = new FakeAgent(h.port, 'a2', { services: [{ name: 'http', port: 9002 }] });
  t.teardown(() => {
    a1.close();
    a2.close();
  });
  // Agents report every 200 ms, as real ones would.
  let a2Load = { cpuUtilization: 0.2, services: [{ name: 'http', established: 9 }] };
  a1.keepSampling(() => ({ cpuUtilization: 0.8, services: [{ name: 'http', established: 4 }] }));
  a2.keepSampling(() => a2Load);
  await waitFor('both weighted', () => (h.status.document().services[0]?.servers.filter((s) => s.weight > 0).length ?? 0) === 2);

  const term = openTerminal(t, ['top', '--status', new URL(h.base).host, '--interval', '200ms']);
  const rows = (): string[] => term.screen().filter((l) => /^a[12] /.test(l));
  await waitFor('both servers on screen', () => rows().length === 2, 20_000).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; output: ${JSON.stringify(term.output().slice(-2000))}`);
  });
  const screen = term.screen();
  t.log(screen.join('\n'));
  t.true(term.output().startsWith(`${ESC}[?1049h`), 'alternate screen');
  t.regex(screen[0] ?? '', /^loadfeed top {2}127\.0\.0\.1:\d+ {2}ok {2}\S+ {2}sort cpu ▼$/);
  t.is(screen[1], 'nodes 2 (2 live)  cpu 50% of 4 cores  mem 30%  conns 13  weight 125');
  t.true(screen.every((l) => [...l].length <= 80), 'nothing wider than the terminal');
  t.true(screen.length <= 24, 'nothing taller');
  t.deepEqual(rows().map((l) => l.split(/ +/).slice(0, 4)), [
    ['a1', '127.0.0.1:9001', 'live', '80%'],
    ['a2', '127.0.0.1:9002', 'live', '20%'],
  ]);

  term.child.stdin.write('n'); // by connections
  await waitFor('sorted by connections', () => /sort conn ▼/.test(term.screen()[0] ?? '') && rows()[0]?.startsWith('a2 ') === true);
  term.child.stdin.write('n'); // the same key again reverses
  await waitFor('reversed', () => /sort conn ▲/.test(term.screen()[0] ?? '') && rows()[0]?.startsWith('a1 ') === true);

  // Live: a new sample shows up without a key press.
  a2Load = { cpuUtilization: 0.6, services: [{ name: 'http', established: 1 }] };
  await waitFor('the new sample drawn', () => rows().some((l) => /^a2 .* 60% /.test(l)));

  term.child.stdin.write('q');
  const [code] = (await once(term.child, 'exit')) as [number];
  t.is(code, 0);
  t.true(term.output().endsWith(`${ESC}[?25h${ESC}[?1049l`), 'cursor and main screen restored');
});

gate.test('top says what to check when no poller answers, keeps retrying, and q still quits', async (t) => {
  t.timeout(120_000);
  const term = openTerminal(t, ['top', '--status', '127.0.0.1:1', '--interval', '200ms']);
  await waitFor('the explanation', () => term.screen().some((l) => l.startsWith('Is loadfeed-poller running with --status 127.0.0.1:1?')), 20_000);
  const screen = term.screen();
  t.true(screen.some((l) => /^cannot read http:\/\/127\.0\.0\.1:1\/status: .*ECONNREFUSED/.test(l)), screen.join('\n'));
  t.true(screen.some((l) => l === 'Retrying; q quits.'));
  term.child.stdin.write('q');
  const [code] = (await once(term.child, 'exit')) as [number];
  t.is(code, 0);
});

gate.test('Ctrl-C quits too (the terminal is raw, so it arrives as a key)', async (t) => {
  t.timeout(120_000);
  const term = openTerminal(t, ['top', '--status', '127.0.0.1:1', '--interval', '200ms']);
  await waitFor('a first screen', () => term.screen().length > 1, 20_000);
  term.child.stdin.write('\x03');
  const [code] = (await once(term.child, 'exit')) as [number];
  t.is(code, 0);
});
