import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appSourcesConfigured, loadAgentConfig, AgentError } from '@loadfeed/agent';

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

test('application sources: none by default; --orca, --app-metrics or --app-socket each make one (the agent watches for application moves only then)', (t) => {
  const configured = (argv: string[]): boolean | undefined => {
    const c = loadAgentConfig(argv, {}).config;
    return c ? appSourcesConfigured(c.app) : undefined;
  };
  t.false(configured([]));
  t.true(configured(['--orca', '127.0.0.1:9000']));
  t.true(configured(['--app-metrics', 'http://127.0.0.1:9100/metrics', '--app-metric', 'in_flight=app_in_flight']));
  t.true(configured(['--app-socket', '/run/app/loadfeed.sock']));
});

test('early reports on application metrics: 0.25 by default, 0 turns them off, a negative or non-number move is refused naming the source', (t) => {
  t.is(loadAgentConfig([], {}).config?.earlyAppChange, 0.25);
  t.is(loadAgentConfig(['--early-app-change', '0'], {}).config?.earlyAppChange, 0);
  t.is(loadAgentConfig([], { LOADFEED_EARLY_APP_CHANGE: '1.5' }).config?.earlyAppChange, 1.5, 'a move beyond the value itself is a valid threshold');
  for (const bad of ['-0.1', 'often', '', 'Infinity']) {
    const err = t.throws(() => loadAgentConfig([`--early-app-change=${bad}`], {}), { instanceOf: AgentError });
    t.regex(err?.message ?? '', /^flag: earlyAppChange: .* must be a fraction >= 0/, bad);
  }
  const env = t.throws(() => loadAgentConfig([], { LOADFEED_EARLY_APP_CHANGE: 'x' }), { instanceOf: AgentError });
  t.regex(env?.message ?? '', /^environment: earlyAppChange/);
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
  ['node id in the agentless ORCA namespace', ['--node-id', 'orca:10.0.0.5:50051'], {}, /^flag: nodeId: "orca:10.0.0.5:50051" must not start with "orca:"/],
  ['node id in the agentless ORCA namespace, other case', [], { LOADFEED_NODE_ID: 'ORCA:web-1' }, /^environment: nodeId: "ORCA:web-1" must not start with "orca:"/],
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
  t.regex(err?.message ?? '', new RegExp(`^${file}: unknown setting "colour" \\(known: nodeId, pollers, interval, .*tokenFile, allowPlaintext, orca, .*appTtl\\)$`));
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

test('application metrics sources: all off by default; flags, environment and file give them', (t) => {
  t.deepEqual(loadAgentConfig([], {}).config?.app, { orca: null, orcaTls: null, prometheus: null, series: [], pushSocket: null, ttlMs: 5000 });
  const { config } = loadAgentConfig(
    ['--orca', '127.0.0.1:9001', '--app-metrics', 'http://127.0.0.1:9100/metrics', '--app-metric', 'in_flight=http_in_flight', '--app-metric', 'eps=http_requests_total{code=~"5.."}', '--app-socket', '/run/app.sock', '--app-ttl', '3s'],
    {},
  );
  t.like(config?.app, { orca: '127.0.0.1:9001', prometheus: 'http://127.0.0.1:9100/metrics', pushSocket: '/run/app.sock', ttlMs: 3000 });
  t.deepEqual(config?.app.series.map((s) => [s.name, s.selector.metric, s.selector.matchers.length]), [['in_flight', 'http_in_flight', 0], ['eps', 'http_requests_total', 1]]);
  const env = { LOADFEED_APP_METRICS: 'http://[::1]:9100/metrics', LOADFEED_APP_METRIC_SERIES: 'rps=a_total{x="1",y="2"}; in_flight=b' };
  t.deepEqual(loadAgentConfig([], env).config?.app.series.map((s) => s.name), ['rps', 'in_flight'], 'the environment separates series with ;');
  const file = configFile('appMetrics: http://127.0.0.1:9100/metrics\nappMetricSeries:\n  in_flight: http_in_flight\n  rps: http_requests_total\n');
  t.deepEqual(loadAgentConfig(['--config', file], {}).config?.app.series.map((s) => s.text), ['http_in_flight', 'http_requests_total']);
});

test('ORCA over TLS: CA, client certificate and server name from flags, environment or file', (t) => {
  const { config } = loadAgentConfig(['--orca', '127.0.0.1:50051', '--orca-tls-ca', 'ca.pem', '--orca-tls-cert', 'a.pem', '--orca-tls-key', 'a.key', '--orca-tls-server-name', 'app.internal'], {});
  t.deepEqual(config?.app.orcaTls, { ca: 'ca.pem', cert: 'a.pem', key: 'a.key', serverName: 'app.internal' });
  t.deepEqual(loadAgentConfig([], { LOADFEED_ORCA: '127.0.0.1:50051', LOADFEED_ORCA_TLS_CA: 'env-ca.pem' }).config?.app.orcaTls, { ca: 'env-ca.pem', cert: null, key: null, serverName: null });
  const file = configFile('orca: 127.0.0.1:50051\norcaTlsCa: file-ca.pem\n');
  t.is(loadAgentConfig(['--config', file], {}).config?.app.orcaTls?.ca, 'file-ca.pem');
  t.is(loadAgentConfig(['--orca', '127.0.0.1:50051'], {}).config?.app.orcaTls, null, 'plaintext without a CA');
});

test('application metrics settings are checked and named', (t) => {
  const bad: readonly [string[], RegExp][] = [
    [['--orca', 'nohostport'], /flag: orca: "nohostport" must be HOST:PORT/],
    [['--orca-tls-ca', 'ca.pem'], /^flag: orcaTlsCa: "ca.pem" needs orca, the ORCA server to read$/],
    [['--orca', '127.0.0.1:1', '--orca-tls-server-name', 'app'], /orcaTlsCa: null is needed with orcaTlsServerName: the CA of the ORCA server's certificate$/],
    [['--orca', '127.0.0.1:1', '--orca-tls-ca', 'ca.pem', '--orca-tls-key', 'k.pem'], /^flag: orcaTlsKey: "k.pem" needs orcaTlsCert: they go together$/],
    [['--app-metrics', 'ftp://x/metrics', '--app-metric', 'a=b'], /flag: appMetrics: "ftp:\/\/x\/metrics" must be an http\(s\) URL/],
    [['--app-metrics', 'http://127.0.0.1:1/metrics'], /needs at least one appMetricSeries/],
    [['--app-metric', 'a=b'], /appMetricSeries: "a=b" needs appMetrics/],
    [['--app-metrics', 'http://127.0.0.1:1/m', '--app-metric', 'In-Flight=b'], /must be NAME=SERIES/],
    [['--app-metrics', 'http://127.0.0.1:1/m', '--app-metric', 'a=b{c="d"'], /is not a series selector/],
    [['--app-metrics', 'http://127.0.0.1:1/m', '--app-metric', 'a=b', '--app-metric', 'a=c'], /"a" is named twice/],
    [['--app-socket', 'relative.sock'], /appSocket: "relative.sock" must be an absolute path/],
    [['--app-ttl', 'soon'], /appTtl: "soon" must be/],
  ];
  for (const [argv, message] of bad) t.throws(() => loadAgentConfig(argv, {}), { instanceOf: AgentError, message }, argv.join(' '));
});
