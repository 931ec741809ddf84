// Authenticated agents over real TLS: certificates made by `loadfeed certs`
// (in-process, no openssl), the real agent executable, a real poller. An agent may
// only report for the node id its certificate or token names.
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { defaultStrategies, loadSecurity, Poller, type SecurityFiles } from '@loadfeed/poller';
import { waitFor } from '../helpers/wait.js';
import { binPath } from '../helpers/launcher.js';
import { memoryWebPolicy } from '../helpers/policy-harness.js';

const AGENT = binPath('@loadfeed/agent', 'loadfeed-agent');
const CLI = binPath('@loadfeed/poller', 'loadfeed');
const dir = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-trust-'));
const certs = path.join(dir, 'pki');
execFileSync(process.execPath, [CLI, 'certs', '--out', certs, '--node', 'web-1', '--node', 'web-2']);
const pem = (name: string): string => path.join(certs, name);

async function poller(t: ExecutionContext, security: Partial<SecurityFiles>) {
  const { engines, policy } = memoryWebPolicy(
    '    servers: [{ node: web-1, address: "10.0.0.2:80" }, { node: web-2, address: "10.0.0.3:80" }]\n',
    'agents: { interval: 200ms }\n',
  );
  const p = new Poller({
    listen: '127.0.0.1:0',
    policy,
    engines,
    strategies: defaultStrategies(),
    logger: pino({ level: 'silent' }),
    security: await loadSecurity({ allowPlaintext: false, ...security }),
  });
  const port = await p.start();
  t.teardown(() => p.stop());
  return { p, port, live: (id: string) => p.snapshot().nodes.some((n) => n.id === id && n.samples > 0) };
}

function agent(t: ExecutionContext, port: number, nodeId: string, args: string[]): { stderr: () => string } {
  const child = spawn(process.execPath, [AGENT, '--poller', `localhost:${port}`, '--node-id', nodeId, '--interval', '200ms', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return { stderr: () => err };
}

const MTLS = { cert: pem('poller.pem'), key: pem('poller.key'), clientCa: pem('ca.pem') };
const tlsArgs = (node: string): string[] => ['--tls-ca', pem('ca.pem'), '--tls-cert', pem(`${node}.pem`), '--tls-key', pem(`${node}.key`)];

test('mutual TLS: an agent reports for the node its certificate names', async (t) => {
  const { p, port, live } = await poller(t, MTLS);
  agent(t, port, 'web-1', tlsArgs('web-1'));
  await waitFor('web-1 reporting over mTLS', () => live('web-1'));
  t.is(p.snapshot().ingest.rejected['auth'], undefined);
  // Its Hello was matched to its TLS connection: no longer pending, so no Hello timeout closes it.
  t.is(p.snapshot().ingest.pendingConnections, 0);
});

test('mutual TLS: a certificate for another node is refused with PERMISSION_DENIED and counted', async (t) => {
  const { p, port, live } = await poller(t, MTLS);
  const liar = agent(t, port, 'web-2', tlsArgs('web-1'));
  // The agent logs JSON, so the quotes in the status details come escaped.
  await waitFor('the refusal', () => liar.stderr().includes('PERMISSION_DENIED: auth: the client certificate names \\"web-1\\", not \\"web-2\\"'));
  t.false(live('web-2'));
  t.true((p.snapshot().ingest.rejected['auth'] ?? 0) >= 1);
});

test('mutual TLS: an agent without a client certificate cannot connect at all', async (t) => {
  const { port, live } = await poller(t, MTLS);
  const anon = agent(t, port, 'web-1', ['--tls-ca', pem('ca.pem')]);
  await waitFor('the TLS failure', () => /stream waiting.*UNAVAILABLE/.test(anon.stderr()));
  t.false(live('web-1'));
});

test('bearer tokens: the right token is accepted, another node\'s token is refused', async (t) => {
  const token = 'k2VqJ1c4tZ0pXw9sQ7bN3mR5';
  const other = 'P8dL6fH2yT4uW1xZ9cV7bN0m';
  const tokens = path.join(dir, 'tokens.yaml');
  const sha = (x: string): string => createHash('sha256').update(x).digest('hex');
  writeFileSync(tokens, `tokens:\n  - { node: web-1, sha256: ${sha(token)} }\n  - { node: web-2, sha256: ${sha(other)} }\n`);
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    writeFileSync(f, `${text}\n`);
    return f;
  };
  const { p, port, live } = await poller(t, { tokens });
  agent(t, port, 'web-1', ['--token-file', file('t1', token)]);
  await waitFor('web-1 reporting with its token', () => live('web-1'));
  const thief = agent(t, port, 'web-1', ['--token-file', file('t2', other)]);
  await waitFor('the refusal', () => thief.stderr().includes('PERMISSION_DENIED: auth: this token may not report for node \\"web-1\\"'));
  const nobody = agent(t, port, 'web-2', []);
  await waitFor('the refusal', () => /UNAUTHENTICATED: auth: no client certificate or bearer token/.test(nobody.stderr()));
  t.true((p.snapshot().ingest.rejected['auth'] ?? 0) >= 2);
});
