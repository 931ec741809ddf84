// `loadfeed policy check|explain|simulate` as a user runs them.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { compilePolicy, defaultEngines, printPolicy } from '@loadfeed/poller';
import { binPath } from '../helpers/launcher.js';
import { REPO_ROOT } from '../deploy/repo.js';

const CLI = binPath('@loadfeed/poller', 'loadfeed');
const run = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};
const dir = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-policy-cli-'));
const file = (name: string, text: string): string => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

const GOOD = `apiVersion: loadfeed/v1
services:
  - name: web
    address: tcp 10.0.0.1:80
    servers:
      - { node: a, address: "10.0.0.2:80" }
`;

test('check: exit 0 on a good file', async (t) => {
  const r = await run('policy', 'check', file('good.yaml', GOOD));
  t.is(r.code, 0);
  t.regex(r.stdout, /good.yaml: ok \(1 service\)/);
});

test('check: exit 1 and every error listed', async (t) => {
  const bad = file('bad.yaml', GOOD.replace('tcp 10.0.0.1:80', 'tcp 10.0.0.1').replace('name: web', 'name: "w b"'));
  const r = await run('policy', 'check', bad);
  t.is(r.code, 1);
  t.deepEqual(r.stdout.trim().split('\n'), [
    `${bad}:3: services[0].name: "w b" must be 1..63 characters of A-Z a-z 0-9 . _ - (starting with a letter or digit)`,
    `${bad}:4: services[0].address: "tcp 10.0.0.1": "10.0.0.1" is not an address: expected IP:PORT, e.g. 192.0.2.21:8080 or [2001:db8::1]:8080`,
    '2 errors',
  ]);
});

test('explain: the compiled policy with every default, which compiles to the same policy', async (t) => {
  const r = await run('policy', 'explain', file('explain.yaml', GOOD));
  t.is(r.code, 0);
  t.regex(r.stdout, /slowStart:\n {6}duration: 10s\n {6}from: 0.1/);
  t.regex(r.stdout, /allZero: keep-last/);
  const limits = defaultEngines().limits();
  t.deepEqual(compilePolicy(r.stdout, 'x', limits), compilePolicy(GOOD, 'x', limits));
});

test('simulate: weights over time from a recorded trace, as CSV', async (t) => {
  const trace = file(
    'trace.jsonl',
    [
      { t: 0, type: 'hello', node: 'a', hello: { nodeId: 'a', cores: 2, memoryBytes: 1e9 } },
      { t: 1000, type: 'sample', node: 'a', sample: { seq: 1, cpuUtilization: 0.5, windowMs: 1000 } },
    ]
      .map((e) => JSON.stringify(e))
      .join('\n'),
  );
  const r = await run('policy', 'simulate', file('sim.yaml', GOOD.replace('    servers:', '    strategy: { name: headroom }\n    servers:')), '--trace', trace, '--format', 'csv');
  t.is(r.code, 0);
  t.deepEqual(r.stdout.trim().split('\n').slice(0, 3), [
    't_ms,service,server,node,from,to,state,reason',
    '0,web,10.0.0.2:80,a,,0,absent,"agent connected, no sample yet"',
    '1000,web,10.0.0.2:80,a,0,19,slow-start,cpu 0.5 of 2 cores; slow start 19%',
  ]);
  const missing = await run('policy', 'simulate', file('sim2.yaml', GOOD));
  t.is(missing.code, 2);
  t.regex(missing.stderr, /simulate needs --trace TRACE.jsonl/);
});

test('compiled policies round-trip for every option', (t) => {
  const full = `apiVersion: loadfeed/v1
liveness: { staleAfter: 1500ms }
agents: { interval: 250ms }
services:
  - name: api
    engine: memory
    address: tcp 10.0.0.1:443
    scheduler: wrr
    strategy: { name: orca, blackoutPeriod: 5s, weightExpirationPeriod: 2m, errorUtilizationPenalty: 2 }
    smoothing: { halfLife: 500ms }
    deadband: 0.1
    maxChangePerSecond: 0.25
    weights: { min: 0, max: 1000, quantum: 10 }
    meanBand: { min: 0.1, max: 5 }
    shareCap: 0.4
    slowStart: { duration: 1m, from: 0.05 }
    blackout: 3s
    guards:
      - { name: oom, when: "mem > 0.95", weight: 0 }
      - { when: "psi_io > 0.5", weight: 10 }
    stale: { action: hold, holdFor: 30s }
    allZero: equal
    servers:
      - { node: a, address: "10.0.0.2:443" }
      - { address: "[2001:db8::3]:443" }
      - { selector: { role: api, zone: a }, port: 443 }
  - name: ws
    strategy: { name: expression, score: "cores / (1 + connections)" }
    address: tcp 10.0.0.1:80
    servers: [{ node: b, address: "10.0.0.4:80" }]
  - name: pidsvc
    strategy: { name: pid, kp: 1, ki: 0, kd: 0.1, maxStep: 0.5, useConnections: false }
    address: tcp 10.0.0.1:81
    slowStart: null
    servers: [{ node: c, address: "10.0.0.5:80" }]
`;
  const limits = defaultEngines().limits();
  const once = compilePolicy(full, 'f', limits);
  const twice = compilePolicy(JSON.stringify(printPolicy(once)), 'f', limits);
  t.deepEqual(twice, once);
});

test('docs/policy.schema.json is the schema the code generates', async (t) => {
  const r = await run('policy', 'schema');
  t.is(r.code, 0);
  const published = readFileSync(path.join(REPO_ROOT, 'docs', 'policy.schema.json'), 'utf8');
  t.is(published, r.stdout, 'regenerate with: npx loadfeed policy schema > docs/policy.schema.json');
  const schema = JSON.parse(published) as { properties: Record<string, unknown> };
  t.deepEqual(Object.keys(schema.properties), ['apiVersion', 'engines', 'liveness', 'agents', 'reconcile', 'services']);
});
