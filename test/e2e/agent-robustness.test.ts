// The agent under adverse conditions, as a real process: no poller to talk
// to, a /proc where files are missing or unreadable.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitFor } from '../helpers/wait.js';
import { binPath } from '../helpers/launcher.js';

const AGENT = binPath('@loadfeed/agent', 'loadfeed-agent');
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/proc/6.18.44-fc-v782/proc');

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('no poller: retries back off exponentially with jitter, up to the cap, holding nothing', async (t) => {
  const port = await closedPort();
  const child = spawn(process.execPath, [AGENT, '--poller', `127.0.0.1:${port}`, '--node-id', 'lonely', '--interval', '100ms', '--status-socket', 'off'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const delays = (): number[] => [...err.matchAll(/retrying in (\d+) ms/g)].map((m) => Number(m[1]));
  await waitFor('five retries', () => delays().length >= 5, 45_000);
  const d = delays().slice(0, 5);
  t.log(`delays: ${d.join(', ')} ms`);
  // Each delay lies in [½, 1] × 250 ms × 2^n: the ceilings double.
  d.forEach((ms, n) => {
    const ceiling = 250 * 2 ** n;
    t.true(ms >= ceiling / 2 && ms <= ceiling, `retry ${n}: ${ms} ms not in [${ceiling / 2}, ${ceiling}]`);
  });
});

test('missing or unreadable /proc files degrade their metric to null, not the agent', async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-proc-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(FIXTURES, path.join(root, 'proc'), { recursive: true });
  rmSync(path.join(root, 'proc/pressure'), { recursive: true });
  rmSync(path.join(root, 'proc/loadavg'));
  writeFileSync(path.join(root, 'proc/net/snmp'), 'garbage\n');
  const { stdout } = await promisify(execFile)(process.execPath, [AGENT, '--once', '--json', '--interval', '100ms', '--proc-root', path.join(root, 'proc'), '--sys-root', path.join(root, 'sys')]);
  const r = JSON.parse(stdout) as Record<string, unknown>;
  t.is(r['psiCpuSome'], null);
  t.is(r['load1'], null);
  t.is(r['runnable'] === null || typeof r['runnable'] === 'number', true);
  t.is(r['tcpEstablished'], null);
  t.is(typeof r['cpuUtilization'], 'number');
  t.true((r['memUtilization'] as number) > 0, 'meminfo still read');
});
