import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig, AgentError } from '@loadfeed/agent';

function configFile(text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-agent-config-'));
  const file = path.join(dir, 'agent.yaml');
  writeFileSync(file, text);
  return file;
}

test('defaults: host scope, 1 s, host name as node id', (t) => {
  const { config } = loadAgentConfig([], {});
  t.like(config, { nodeId: os.hostname(), intervalMs: 1000, scope: { kind: 'host' }, pollers: [], procRoot: '/proc', sysRoot: '/sys' });
});

test('flags win over the environment, which wins over the config file', (t) => {
  const file = configFile('nodeId: from-file\ninterval: 3s\npollers: [file:1]\nservices: [http:80]\nlabels: { role: web }\n');
  const env = { LOADFEED_CONFIG: file, LOADFEED_INTERVAL: '2s', LOADFEED_POLLERS: 'env-a:7415, env-b', LOADFEED_ALLOW_PLAINTEXT: 'true' };
  const { config } = loadAgentConfig(['--interval', '250ms'], env);
  t.is(config?.nodeId, 'from-file');
  t.is(config?.intervalMs, 250);
  t.deepEqual(config?.pollers, ['env-a:7415', 'env-b:7415']);
  t.deepEqual(config?.services, [{ name: 'http', port: 80 }]);
  t.deepEqual(config?.labels, { role: 'web' });
  const onlyFile = loadAgentConfig(['--config', file, '--allow-plaintext'], {}).config;
  t.is(onlyFile?.intervalMs, 3000);
  t.deepEqual(onlyFile?.pollers, ['file:1']);
});

test('early reports: 0.25 by default, 0 turns them off, anything outside 0..1 is refused naming the source', (t) => {
  t.is(loadAgentConfig([], {}).config?.earlyChange, 0.25);
  t.is(loadAgentConfig(['--early-change', '0'], {}).config?.earlyChange, 0);
  t.is(loadAgentConfig([], { LOADFEED_EARLY_CHANGE: '0.4' }).config?.earlyChange, 0.4);
  for (const bad of ['1.5', '-0.1', 'often', '']) {
    const err = t.throws(() => loadAgentConfig([`--early-change=${bad}`], {}), { instanceOf: AgentError });
    t.regex(err?.message ?? '', /^flag: earlyChange: .* must be a fraction 0\.\.1/, bad);
  }
});

test('repeatable flags: several pollers, services and labels', (t) => {
  const { config } = loadAgentConfig(
    ['--allow-plaintext', '--poller', 'd1:7415', '--poller', '[::1]:7415', '--service', 'http:80', '--service', 'https:443', '--label', 'role=web', '--label', 'zone=a'],
    {},
  );
  t.deepEqual(config?.pollers, ['d1:7415', '[::1]:7415']);
  t.deepEqual(config?.services.map((s) => s.port), [80, 443]);
  t.deepEqual(config?.labels, { role: 'web', zone: 'a' });
});

test('scopes', (t) => {
  t.deepEqual(loadAgentConfig(['--scope', 'cgroup:/system.slice/nginx.service'], {}).config?.scope, {
    kind: 'cgroup',
    path: '/system.slice/nginx.service',
  });
  t.deepEqual(loadAgentConfig(['--scope', 'process:42', '--capacity', '0.5'], {}).config?.scope, {
    kind: 'process',
    pid: 42,
    cores: 0.5,
    memoryBytes: null,
  });
});

const INVALID: [string, string[], Record<string, string>, RegExp][] = [
  ['interval too short', ['--interval', '5ms'], {}, /^flag: interval: "5ms" must be 100ms..60s/],
  ['interval not a duration', [], { LOADFEED_INTERVAL: 'often' }, /^environment: interval: "often"/],
  ['bad poller', ['--poller', 'a b:1'], {}, /pollers: "a b:1" must be HOST:PORT/],
  ['plaintext to another host', ['--poller', 'director1:7415'], {}, /^flag: pollers: "director1:7415" is not on loopback: give --tls-ca/],
  ['client certificate without CA', ['--tls-cert', 'c.pem', '--tls-key', 'c.key'], {}, /tlsCa: null is needed with a client certificate/],
  ['certificate without key', ['--tls-ca', 'ca.pem', '--tls-cert', 'c.pem'], {}, /tlsCert: "c.pem" and tlsKey go together/],
  ['allowPlaintext not a boolean', [], { LOADFEED_ALLOW_PLAINTEXT: 'maybe' }, /environment: allowPlaintext: "maybe" must be true or false/],
  ['bad service', ['--service', 'http'], {}, /services: "http" must be NAME:PORT/],
  ['service port out of range', ['--service', 'http:70000'], {}, /services: "http:70000"/],
  ['duplicate service', ['--service', 'http:80', '--service', 'http:81'], {}, /services: "http" is named twice/],
  ['bad label', ['--label', 'role'], {}, /labels: "role" must be KEY=VALUE/],
  ['process scope without capacity', ['--scope', 'process:1'], {}, /capacity: null must be the process scope's CPU capacity/],
  ['unknown scope', ['--scope', 'vm'], {}, /scope: "vm" must be host, cgroup:PATH/],
  ['bad node id', ['--node-id', 'a/b'], {}, /nodeId: "a\/b" must be 1..253 characters/],
  ['unknown flag', ['--nope'], {}, /Unknown option '--nope'/],
];

for (const [name, argv, env, message] of INVALID) {
  test(`refused: ${name}`, (t) => {
    const err = t.throws(() => loadAgentConfig(argv, env), { instanceOf: AgentError });
    t.is(err?.code, 'AGENT_CONFIG_INVALID');
    t.regex(err?.message ?? '', message);
  });
}

test('config file errors name the file and the setting', (t) => {
  const file = configFile('nodeId: a\ncolour: blue\n');
  const err = t.throws(() => loadAgentConfig(['--config', file], {}), { instanceOf: AgentError });
  t.regex(err?.message ?? '', new RegExp(`^${file}: unknown setting "colour" \\(known: nodeId, pollers, interval, .*tokenFile, allowPlaintext\\)$`));
  const bad = configFile('interval: 5ms\n');
  t.regex(t.throws(() => loadAgentConfig(['--config', bad], {}))?.message ?? '', new RegExp(`^${bad}: interval: "5ms"`));
});

test('--help asks for the usage text', (t) => {
  t.deepEqual(loadAgentConfig(['--help'], {}), { help: true, config: null });
});

test('TLS and token settings', (t) => {
  const { config } = loadAgentConfig(
    ['--poller', 'director1:7415', '--tls-ca', 'ca.pem', '--tls-cert', 'n.pem', '--tls-key', 'n.key', '--tls-server-name', 'poller', '--token-file', 't'],
    {},
  );
  t.deepEqual(config?.transport, { tlsCa: 'ca.pem', tlsCert: 'n.pem', tlsKey: 'n.key', tlsServerName: 'poller', tokenFile: 't', allowPlaintext: false });
  t.is(loadAgentConfig(['--poller', '127.0.0.1:7415'], {}).config?.transport.tlsCa, null, 'plaintext to loopback needs nothing');
});
