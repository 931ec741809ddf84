// A network partition between an agent and its poller, made for real: the
// agent runs in a network namespace this test creates, joined to the host by
// a veth pair; the link is cut while the agent keeps running. The poller
// must quiesce the silent server within 2 s, and take it back (through slow
// start) when the link heals.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { defaultStrategies, Poller } from '@loadfeed/poller';
import * as grpc from '@grpc/grpc-js';
import { NETNS_WITH_NFTABLES, realEngineGate, ROOT, binary, findExecutable } from '../helpers/real-engine.js';
import { waitFor } from '../helpers/wait.js';
import { binPath } from '../helpers/launcher.js';
import { memoryWebPolicy } from '../helpers/policy-harness.js';

const AGENT = binPath('@loadfeed/agent', 'loadfeed-agent');
const gate = realEngineGate('network-partition', [ROOT, binary('ip', 'iproute2'), NETNS_WITH_NFTABLES]);

const ip = (...args: string[]): void => {
  execFileSync(findExecutable('ip') ?? 'ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
};

gate.serial('a partitioned agent is quiesced within 2 s and comes back through slow start', async (t) => {
  const id = randomBytes(3).toString('hex');
  const ns = `lf-part-${id}`;
  const host = `lfph${id}`;
  const peer = `lfpn${id}`;
  // A /30 of the test's own, on links that exist only inside this test.
  const octet = 1 + (parseInt(id, 16) % 250);
  const hostIp = `10.254.${octet}.1`;
  const agentIp = `10.254.${octet}.2`;
  ip('netns', 'add', ns);
  t.teardown(() => {
    try {
      ip('link', 'delete', host);
    } catch {
      // gone with the namespace already
    }
    ip('netns', 'delete', ns);
  });
  ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
  ip('link', 'set', peer, 'netns', ns);
  ip('addr', 'add', `${hostIp}/30`, 'dev', host);
  ip('link', 'set', host, 'up');
  ip('-n', ns, 'addr', 'add', `${agentIp}/30`, 'dev', peer);
  ip('-n', ns, 'link', 'set', peer, 'up');
  ip('-n', ns, 'link', 'set', 'lo', 'up');

  const { engines, policy } = memoryWebPolicy(`    slowStart: { duration: 5s, from: 0.1 }
    deadband: 0
    servers:
      - { node: far, address: "${agentIp}:80" }
      - { node: near, address: "10.0.0.3:80" }
`);
  const poller = new Poller({
    listen: `${hostIp}:0`,
    policy,
    engines,
    strategies: defaultStrategies(),
    logger: pino({ level: 'silent' }),
    // The agent is on another (namespaced) host: plaintext is allowed explicitly.
    security: { credentials: grpc.ServerCredentials.createInsecure(), auth: { tokens: new Map(), mutualTls: false, allowPlaintext: true } },
  });
  const port = await poller.start();
  t.teardown(() => poller.stop());
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [AGENT, ...args, '--interval', '1s'], { stdio: ['ignore', 'ignore', 'ignore'] });
    t.teardown(() => {
      child.kill('SIGKILL');
    });
  };
  start(['--poller', `${hostIp}:${port}`, '--node-id', 'near', '--allow-plaintext']);
  const far = spawn('ip', ['netns', 'exec', ns, process.execPath, AGENT, '--poller', `${hostIp}:${port}`, '--node-id', 'far', '--allow-plaintext', '--interval', '1s'], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  t.teardown(() => {
    far.kill('SIGKILL');
  });

  const weight = (): number => poller.snapshot().services[0]?.decisions.find((d) => d.node === 'far')?.weight ?? -1;
  const state = (): string => poller.snapshot().services[0]?.decisions.find((d) => d.node === 'far')?.state ?? '';
  await waitFor('far weighted at full', () => weight() > 0 && state() === 'live', 30_000);

  const cut = performance.now();
  ip('-n', ns, 'link', 'set', peer, 'down');
  // staleAfter (2 s) from the last sample, checked every LIVENESS_SWEEP_MS;
  // the server's keepalive (1 s ping, 1 s timeout) usually ends the stream
  // first. The time is a figure (docs/RELIABILITY.md): the wait's bound leaves
  // room for a loaded machine, and the state says which of the two acted.
  await waitFor('far quiesced', () => weight() === 0, 10_000).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(poller.snapshot().services[0]?.decisions)} ${JSON.stringify(poller.snapshot().nodes.map((n) => [n.id, n.state, n.samples]))}`);
  });
  const quiesceMs = performance.now() - cut;
  t.log(`partition → quiesce: ${quiesceMs.toFixed(0)} ms (${state()})`);
  t.not(state(), 'live');

  ip('-n', ns, 'link', 'set', peer, 'up');
  await waitFor('far back, ramping', () => weight() > 0, 40_000);
  t.is(state(), 'slow-start', 'a returning node ramps up');
});
