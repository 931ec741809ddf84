// The poller accepts agents' connections itself (grpc-js gets them through a
// connection injector) so that it can ask for a long listen queue: a
// reconnect storm after a restart must not have its SYNs dropped.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { compilePolicy, defaultEngines, defaultStrategies, LISTEN_BACKLOG, Poller } from '@loadfeed/poller';
import { binary, findExecutable, realEngineGate } from '../helpers/real-engine.js';

function poller(listen: string): Poller {
  const engines = defaultEngines();
  const policy = compilePolicy(
    'apiVersion: loadfeed/v1\nservices:\n  - { name: s, engine: memory, address: tcp 10.0.0.1:80, servers: [{ node: a, address: "10.0.0.2:80" }] }\n',
    'listen.yaml',
    engines.limits(),
  );
  return new Poller({ listen, policy, engines, strategies: defaultStrategies(), logger: pino({ level: 'silent' }) });
}

const ss = realEngineGate('listen queue', [binary('ss', 'iproute2')]);

ss.test('the agents\' port listens with a queue of LISTEN_BACKLOG (as far as net.core.somaxconn allows), not Node\'s 511', async (t) => {
  const p = poller('127.0.0.1:0');
  const port = await p.start();
  t.teardown(() => p.stop());
  // For a listening socket ss shows the backlog as Send-Q.
  const out = spawnSync(findExecutable('ss') ?? 'ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).stdout;
  const sendQ = Number(out.trim().split(/\s+/)[2]);
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  t.is(sendQ, Math.min(LISTEN_BACKLOG, somaxconn), out);
});

test('an agents\' address in use stops the poller with what to do', async (t) => {
  const busy = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => busy.once('listening', resolve));
  t.teardown(() => busy.close());
  const address = busy.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const p = poller(`127.0.0.1:${port}`);
  t.teardown(() => p.stop());
  await t.throwsAsync(p.start(), { message: `--listen 127.0.0.1:${port}: the address is in use (another poller?); pass --listen HOST:PORT` });
});
