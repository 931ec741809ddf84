// The command line as an operator meets it: --help everywhere, errors that
// say what to do, and loadfeed-poller's status server and logs as a real
// process (health follows a refused policy file, SIGTERM stops it).
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { policyText, request } from './harness.js';
import { binPath } from '../helpers/launcher.js';

const LOADFEED = binPath('@loadfeed/poller', 'loadfeed');
const LOADFEED_POLLER = binPath('@loadfeed/poller', 'loadfeed-poller');
const AGENT = binPath('@loadfeed/agent', 'loadfeed-agent');
const DEMO = binPath('@loadfeed/demo', 'loadfeed-demo');
// Generous: on a loaded CI machine a poller takes seconds to start.
const WAIT_MS = 45_000;

async function run(bin: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

const HELP: readonly [string, string, readonly string[]][] = [
  ['loadfeed', LOADFEED, ['--help']],
  ['loadfeed-demo', DEMO, ['--help']],
  ['loadfeed poller', LOADFEED, ['poller', '--help']],
  ['loadfeed top', LOADFEED, ['top', '--help']],
  ['loadfeed policy', LOADFEED, ['policy', '--help']],
  ['loadfeed policy check', LOADFEED, ['policy', 'check', '--help']],
  ['loadfeed certs', LOADFEED, ['certs', '--help']],
  ['loadfeed-poller', LOADFEED_POLLER, ['--help']],
  ['loadfeed-agent', AGENT, ['--help']],
  ['loadfeed-agent status', AGENT, ['status', '--help']],
];

for (const [name, bin, args] of HELP) {
  test(`${name} --help prints its usage and exits 0`, async (t) => {
    const r = await run(bin, args);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^Usage:/);
    t.is(r.stderr, '');
  });
}

test('the status flags are named alike everywhere and documented', async (t) => {
  for (const args of [['poller', '--help'], ['top', '--help']]) {
    t.regex((await run(LOADFEED, args)).stdout, /--status HOST:PORT/, args.join(' '));
  }
  t.regex((await run(DEMO, ['--help'])).stdout, /--status HOST:PORT/, 'loadfeed-demo --help');
  t.regex((await run(LOADFEED, ['--help'])).stdout, /\n {2}top {2,}live view/);
  t.regex((await run(LOADFEED_POLLER, ['--help'])).stdout, /--log-format FORMAT/);
  t.regex((await run(AGENT, ['--help'])).stdout, /--status-socket PATH/);
});

test('an unknown flag or bad value says what to do', async (t) => {
  const unknown = await run(LOADFEED, ['top', '--bogus']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /^loadfeed: Unknown option '--bogus'.*; see loadfeed top --help\n$/s);
  const poller = await run(LOADFEED_POLLER, ['--policy']);
  t.is(poller.code, 2);
  t.regex(poller.stderr, /see loadfeed-poller --help\n$/);
  const sort = await run(LOADFEED, ['top', '--sort', 'ram']);
  t.is(sort.code, 2);
  t.regex(sort.stderr, /--sort: "ram" must be one of cpu, mem, psi, conn, weight, share, name/);
  const status = await run(LOADFEED, ['top', '--status', 'no-port-here', '--once']);
  t.regex(status.stderr, /--status: "no-port-here" must be HOST:PORT of a poller's status server, e.g\. 127\.0\.0\.1:7416/);
  const format = await run(LOADFEED_POLLER, ['--policy', 'x.yaml', '--log-format', 'xml']);
  t.regex(format.stderr, /--log-format: "xml" must be one of auto, json, pretty/);
  const host = await run(LOADFEED_POLLER, ['--policy', 'x.yaml', '--status', 'localhost:7416']);
  t.regex(host.stderr, /--status: "localhost:7416" is not an address: expected IP:PORT.*, or off/);
  const reserved = await run(LOADFEED, ['certs', '--out', path.join(os.tmpdir(), 'lf-never-made'), '--node', 'orca:10.0.0.5:50051']);
  t.is(reserved.code, 2);
  t.regex(reserved.stderr, /--node: "orca:10\.0\.0\.5:50051" starts with "orca:": pollers keep those ids for the gRPC backends they read without an agent/);
});

test('loadfeed-poller as a process: status server, /healthz follows a refused policy file, SIGTERM stops it', async (t) => {
  t.timeout(150_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-poller-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'web.yaml');
  writeFileSync(file, policyText(['a1']));
  const poller = spawn(process.execPath, [LOADFEED_POLLER, '--policy', file, '--listen', '127.0.0.1:0', '--status', '127.0.0.1:0', '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (poller.exitCode === null && poller.signalCode === null) poller.kill('SIGKILL');
  });
  const records: Record<string, unknown>[] = [];
  createInterface({ input: poller.stdout }).on('line', (line) => records.push(JSON.parse(line) as Record<string, unknown>));
  const logged = async (msg: string): Promise<Record<string, unknown>> => {
    const deadline = performance.now() + WAIT_MS;
    for (;;) {
      const found = records.find((r) => r['msg'] === msg);
      if (found) return found;
      if (performance.now() > deadline) throw new Error(`no "${msg}" log line within ${WAIT_MS} ms; got ${JSON.stringify(records)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const started = await logged('poller started');
  const base = String(started['status']);
  t.regex(base, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const ok = await request(`${base}healthz`);
  t.is(ok.status, 200);
  t.is(JSON.parse((await request(`${base}status`)).body).policy.file, file);

  writeFileSync(file, policyText(['a1']).replace('deadband: 0', 'deadband: 7'));
  await logged('policy refused; the last good policy stays in force');
  const deadline = performance.now() + WAIT_MS;
  let health = await request(`${base}healthz`);
  while (health.status !== 503 && performance.now() < deadline) health = await request(`${base}healthz`);
  t.is(health.status, 503);
  t.regex(health.body, new RegExp(`^degraded: policy ${file.replace(/[/.]/g, '\\$&')} refused: ${file.replace(/[/.]/g, '\\$&')}:\\d+: services\\[0\\]\\.deadband: `));

  poller.kill('SIGTERM');
  const [code] = (await once(poller, 'exit')) as [number];
  t.is(code, 0);
  await t.throwsAsync(request(`${base}healthz`), { code: 'ECONNREFUSED' });
});

test('loadfeed-poller: a status address in use stops it with what to do; pretty logs on request', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-poller-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'web.yaml');
  writeFileSync(file, policyText(['a1']));
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  const r = await run(LOADFEED_POLLER, ['--policy', file, '--listen', '127.0.0.1:0', '--status', `127.0.0.1:${port}`, '--log-format', 'pretty']);
  t.is(r.code, 2);
  t.regex(r.stderr, new RegExp(`^loadfeed-poller: --status 127\\.0\\.0\\.1:${port}: the address is in use \\(another poller\\?\\); pass --status HOST:PORT, or --status off\\n$`));
});
