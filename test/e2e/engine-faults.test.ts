// Restarts and engine faults against a real HAProxy and real nftables: a poller restart
// adopts the weights HAProxy has (no weight flaps to 0 or to the configured
// default), and a HAProxy restart (weights back to haproxy.cfg) is detected
// and corrected. Agents are real processes measuring an idle process with
// declared capacities 1, 2 and 4 cores, so the weights are 25, 50, 100.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { pino } from 'pino';
import { createRuntimeApiClient } from '@loadfeed/kernel-bridge';
import { compilePolicy, defaultEngines, defaultStrategies, Poller } from '@loadfeed/poller';
import { findExecutable } from '../helpers/real-engine.js';
import { waitFor } from '../helpers/wait.js';
import { haproxyGate, renderConfig } from '../kernel-bridge/haproxy-fixture.js';
import { NFT, nftablesGate } from '../kernel-bridge/nftables-fixture.js';
import { createLab } from '../helpers/netns.js';
import { binPath } from '../helpers/launcher.js';

const AGENT = binPath('@loadfeed/agent', 'loadfeed-agent');
const CONFIGURED = 10;
const WANT = { s1: 25, s2: 50, s3: 100 };

async function lab(t: ExecutionContext) {
  const dir = await mkdtemp(path.join(tmpdir(), 'lf-faults-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'haproxy.cfg');
  await writeFile(
    cfg,
    renderConfig(dir, {
      backends: [{ name: 'web', servers: ['s1', 's2', 's3'].map((name, i) => ({ name, address: `127.0.0.1:${i + 1}`, weight: CONFIGURED })) }],
    }),
  );
  const socket = path.join(dir, 'admin.sock');
  const client = createRuntimeApiClient({ socket, timeoutMs: 1000 });
  let haproxy: ChildProcess | null = null;
  const startHaproxy = async (): Promise<void> => {
    const child = spawn(findExecutable('haproxy') ?? 'haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
    haproxy = child;
    let up = false;
    await waitFor('haproxy up', () => {
      void client.send('show cli level').then((l) => (up = l.startsWith('admin')), () => undefined);
      return up;
    });
  };
  const stopHaproxy = async (): Promise<void> => {
    const child = haproxy;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  };
  t.teardown(stopHaproxy);
  await startHaproxy();

  // Every weight HAProxy shows while the test runs, so a flap is caught.
  const seen: Record<string, number[]> = { s1: [], s2: [], s3: [] };
  let current: Record<string, number> = {};
  let polling = true;
  const poll = async (): Promise<void> => {
    while (polling) {
      try {
        const state = await client.showServersState('web');
        current = Object.fromEntries(state.map((s) => [s.server, s.userWeight]));
        for (const s of state) seen[s.server]?.push(s.userWeight);
      } catch {
        // HAProxy is being restarted
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const poller = void poll();
  t.teardown(() => {
    polling = false;
    return poller;
  });

  const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.teardown(() => {
    sleeper.kill('SIGKILL');
  });
  const agents: ChildProcess[] = [];
  let port = 0;
  const startAgents = (): void => {
    [1, 2, 4].forEach((cores, i) => {
      const a = spawn(process.execPath, [AGENT, '--poller', `127.0.0.1:${port}`, '--node-id', `n${i + 1}`, '--interval', '200ms', '--scope', `process:${sleeper.pid}`, '--capacity', String(cores), '--status-socket', 'off'], {
        stdio: 'ignore',
      });
      agents.push(a);
    });
  };
  t.teardown(() => agents.forEach((a) => a.kill('SIGKILL')));

  const engines = defaultEngines();
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1
engines: { haproxy: { socket: "${socket}" } }
reconcile: { every: 200ms }
services:
  - name: web
    engine: haproxy
    address: web
    strategy: { name: headroom }
    slowStart: { duration: 1s, from: 0.1 }
    smoothing: { halfLife: 0s }
    deadband: 0
    servers: [{ node: n1, address: s1 }, { node: n2, address: s2 }, { node: n3, address: s3 }]
`,
    'faults.yaml',
    engines.limits(),
  );
  const pollers: Poller[] = [];
  const startPoller = async (): Promise<Poller> => {
    const p = new Poller({ listen: `127.0.0.1:${port}`, policy, engines, strategies: defaultStrategies(), logger: pino({ level: 'silent' }) });
    port = await p.start();
    pollers.push(p);
    return p;
  };
  t.teardown(() => Promise.all(pollers.map((p) => p.stop())));
  return { seen, current: () => current, startHaproxy, stopHaproxy, startAgents, startPoller };
}

const atTarget = (w: Record<string, number>): boolean => w['s1'] === WANT.s1 && w['s2'] === WANT.s2 && w['s3'] === WANT.s3;

haproxyGate.serial('a poller restart adopts HAProxy\'s weights: none flaps to 0 or to the configured default', async (t) => {
  const l = await lab(t);
  const first = await l.startPoller();
  l.startAgents();
  await waitFor('weights 25/50/100 in HAProxy', () => atTarget(l.current()), 20_000);
  for (const k of Object.keys(l.seen)) l.seen[k] = [];

  await first.stop();
  const second = await l.startPoller(); // same port: the agents reconnect by themselves
  await waitFor('all agents back on the new poller', () => second.snapshot().nodes.filter((n) => n.samples > 0).length === 3, 15_000);
  await waitFor('a few more reconcile cycles', () => second.snapshot().nodes.every((n) => n.samples > 5));
  t.true(atTarget(l.current()), JSON.stringify(l.current()));
  for (const [server, weights] of Object.entries(l.seen)) {
    t.deepEqual([...new Set(weights)], [WANT[server as keyof typeof WANT]], `${server} during the restart`);
  }
});

haproxyGate.serial('a HAProxy restart (weights back to haproxy.cfg) is detected and corrected', async (t) => {
  const l = await lab(t);
  const poller = await l.startPoller();
  l.startAgents();
  await waitFor('weights 25/50/100 in HAProxy', () => atTarget(l.current()), 20_000);
  await l.stopHaproxy();
  await waitFor('the engine failure reported', () => poller.snapshot().health === 'degraded', 5_000);
  const restarted = performance.now();
  await l.startHaproxy();
  await waitFor('weights corrected', () => atTarget(l.current()), 5_000);
  const ms = performance.now() - restarted;
  t.log(`HAProxy back → weights re-applied in ${ms.toFixed(0)} ms`);
  await waitFor('health ok again', () => poller.snapshot().health === 'ok', 5_000);
  t.true(poller.snapshot().driftEvents >= 1 || ms < 1000);
});

nftablesGate.serial('the nftables table deleted by hand is detected and re-created', async (t) => {
  const lab = createLab(t);
  const ns = await lab.namespace('director');
  const engines = defaultEngines();
  const policy = compilePolicy(
    `apiVersion: loadfeed/v1
engines: { nftables: { netns: ${ns}, table: lffaults } }
reconcile: { every: 200ms }
services:
  - name: web
    engine: nftables
    address: tcp 10.77.100.1:80
    slowStart: null
    servers: [{ node: n1, address: "10.77.2.2:8080" }]
`,
    'nft-faults.yaml',
    engines.limits(),
  );
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies: defaultStrategies(), logger: pino({ level: 'silent' }) });
  await poller.start();
  t.teardown(() => poller.stop());
  const listed = async (): Promise<string> => lab.exec(ns, [NFT, 'list', 'ruleset']).catch(() => '');
  let ruleset = '';
  const watch = setInterval(() => void listed().then((r) => (ruleset = r)), 50);
  t.teardown(() => clearInterval(watch));
  await waitFor('the loadfeed table', () => ruleset.includes('table inet lffaults'));
  await lab.exec(ns, [NFT, 'delete', 'table', 'inet', 'lffaults']);
  const deleted = performance.now();
  await waitFor('the table gone', () => !ruleset.includes('table inet lffaults'), 5_000).catch(() => undefined);
  await waitFor('the table re-created', () => ruleset.includes('table inet lffaults'), 5_000);
  t.log(`table deleted → re-created in ${(performance.now() - deleted).toFixed(0)} ms`);
  t.true(poller.snapshot().driftEvents >= 1);
});
