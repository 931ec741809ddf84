// The shipped HAProxy example works as documented: Debian's haproxy runs
// deploy/examples/haproxy/haproxy.cfg (its socket, frontend and server
// addresses moved to this test's own), the poller runs
// deploy/examples/policies/haproxy-leastconn.yaml (its socket moved too),
// real agents report for web-1..3, and loadfeed's weights steer HAProxy:
// written through the `stats socket … level admin`, and a server whose agent
// dies gets weight 0 and no more requests.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createRuntimeApiClient } from '@loadfeed/kernel-bridge';
import { compilePolicy, defaultEngines, defaultStrategies, Poller } from '@loadfeed/poller';
import { waitForAdmin } from '../helpers/haproxy.js';
import { binPath } from '../helpers/launcher.js';
import { findExecutable } from '../helpers/real-engine.js';
import { waitFor } from '../helpers/wait.js';
import { countAnswers, haproxyGate, startHttpBackend, WAIT_MS } from '../kernel-bridge/haproxy-fixture.js';

const AGENT = binPath('@loadfeed/agent', 'loadfeed-agent');
const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../deploy/examples');
const SERVERS = ['web1', 'web2', 'web3'] as const;

haproxyGate.test('the HAProxy example (haproxy.cfg and haproxy-leastconn.yaml) lets loadfeed steer HAProxy', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'lf-haproxy-example-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'admin.sock');
  const frontend = path.join(dir, 'fe.sock');
  const backends = await Promise.all(SERVERS.map((name) => startHttpBackend(t, name)));

  // The example's text with only addresses and paths replaced: a change of its structure breaks this test.
  let cfg = await readFile(path.join(EXAMPLES, 'haproxy/haproxy.cfg'), 'utf8');
  const replace = (text: string, from: string, to: string): string => {
    if (!text.includes(from)) throw new Error(`the example no longer has ${from}`);
    return text.replaceAll(from, to);
  };
  cfg = replace(cfg, '/run/haproxy/admin.sock', socket);
  cfg = replace(cfg, 'bind 192.0.2.10:80', `bind unix@${frontend}`);
  backends.forEach((b, i) => {
    cfg = replace(cfg, `192.0.2.2${i + 1}:80`, b.address);
  });
  await writeFile(path.join(dir, 'haproxy.cfg'), cfg);
  const haproxy = spawn(findExecutable('haproxy') ?? 'haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  haproxy.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  t.teardown(async () => {
    if (haproxy.exitCode !== null || haproxy.signalCode !== null) return;
    const exited = once(haproxy, 'exit');
    haproxy.kill('SIGKILL');
    await exited;
  });
  await waitForAdmin(socket, () => (haproxy.exitCode === null ? null : stderr), WAIT_MS);

  const file = path.join(EXAMPLES, 'policies/haproxy-leastconn.yaml');
  const engines = defaultEngines();
  const policy = compilePolicy(replace(await readFile(file, 'utf8'), '/run/haproxy/admin.sock', socket), file, engines.limits());
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies: defaultStrategies(), logger: pino({ level: 'silent' }) });
  const port = await poller.start();
  t.teardown(() => poller.stop());

  const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
  const agents: ChildProcess[] = [1, 2, 4].map((cores, i) =>
    spawn(process.execPath, [AGENT, '--poller', `127.0.0.1:${port}`, '--node-id', `web-${i + 1}`, '--interval', '200ms', '--scope', `process:${sleeper.pid}`, '--capacity', String(cores), '--status-socket', 'off'], { stdio: 'ignore' }),
  );
  t.teardown(() => {
    for (const a of agents) a.kill('SIGKILL');
    sleeper.kill('SIGKILL');
  });

  const client = createRuntimeApiClient({ socket, timeoutMs: 1_000 });
  let weights: Record<string, number> = {};
  let reading = false;
  const weightsWhere = async (what: string, ok: (w: Record<string, number>) => boolean): Promise<void> =>
    waitFor(what, () => {
      if (!reading) {
        reading = true;
        client.showServersState('web').then((state) => (weights = Object.fromEntries(state.map((s) => [s.server, s.userWeight]))), () => undefined).finally(() => (reading = false));
      }
      return ok(weights);
    }, 30_000);

  // Every agent reports and every server is live in the poller; HAProxy has the weights it decided
  // (the poller adopted haproxy.cfg's at start, so these are equal: the pool is idle).
  const decided = (): Record<string, number> =>
    Object.fromEntries((poller.snapshot().services[0]?.decisions ?? []).filter((d) => d.state === 'live').map((d) => [d.address, d.weight]));
  await weightsWhere('every server live, with the poller\'s weight in HAProxy', (w) => {
    const d = decided();
    return SERVERS.every((s) => d[s] !== undefined && d[s] === w[s]);
  });

  // web-2's agent dies: its server is quiesced in HAProxy and gets no new request.
  agents[1]?.kill('SIGKILL');
  await weightsWhere('web2 quiesced', (w) => w['web2'] === 0 && w['web1'] === 100 && w['web3'] === 100);
  const answers = await countAnswers(frontend, 30);
  t.is(answers['web2'], undefined, JSON.stringify(answers));
  t.is((answers['web1'] ?? 0) + (answers['web3'] ?? 0), 30, JSON.stringify(answers));
});
