import test from 'ava';
import { compilePolicy, compilePolicyOffThread, defaultEngines, PolicyError, printPolicy, type PolicyProblem } from '@loadfeed/poller';

const engines = defaultEngines().limits();

const VALID = `apiVersion: loadfeed/v1
services:
  - name: web
    engine: fastpath
    address: tcp 127.0.0.1:8080
    servers:
      - node: web-1
        address: 127.0.0.1:9001
      - address: 127.0.0.2:9001
`;

test('a minimal policy compiles with every default filled in', (t) => {
  const p = compilePolicy(VALID, 'web.yaml', engines);
  t.deepEqual(p, {
    file: 'web.yaml',
    liveness: { staleAfterMs: 2000, restartGraceMs: 10000 },
    agents: { intervalMs: 1000 },
    reconcile: { everyMs: 1000, maxOpsPerCycle: 1000 },
    engines: {
      fastpath: { connectTimeout: 2000, downPeriod: 1000 },
      haproxy: { socket: null, timeout: 2000 },
      ipvs: { driver: 'auto', forward: 'masq' },
      nftables: { table: 'loadfeed', netns: null },
    },
    services: [
      {
        name: 'web',
        engine: 'fastpath',
        address: 'tcp 127.0.0.1:8080',
        scheduler: null,
        servers: [
          { by: 'node', node: 'web-1', address: '127.0.0.1:9001' },
          { by: 'address', host: '127.0.0.2', address: '127.0.0.2:9001' },
        ],
        strategy: { name: 'capacity', usePressure: true, minUtilization: 0.1, targetUtilization: 0.9, costHalfLife: 60_000 },
        smoothing: { halfLifeMs: 2000, halfLifeDownMs: 250 },
        deadband: 0.05,
        maxChangePerSecond: null,
        weights: { min: 1, max: 100, quantum: 1 },
        meanBand: null,
        shareCap: null,
        slowStart: { durationMs: 10000, from: 0.1 },
        blackoutMs: 0,
        guards: [],
        stale: { action: 'quiesce', holdForMs: 10000 },
        allZero: 'keep-last',
        drift: 'correct',
        owned: true,
        connectionLimit: null,
      },
    ],
  });
});

test('smoothing.halfLife defaults to 2s, and to 500ms with strategy queue (its inputs come averaged); a given one is kept', (t) => {
  const halfLife = (extra: string): number | undefined => compilePolicy(`${VALID}${extra}`, 'web.yaml', engines).services[0]?.smoothing.halfLifeMs;
  t.is(halfLife(''), 2000);
  t.is(halfLife('    strategy: { name: queue }\n'), 500);
  t.is(halfLife('    strategy: { name: queue }\n    smoothing: { halfLife: 3s }\n'), 3000);
  t.is(halfLife('    strategy: { name: queue }\n    smoothing: {}\n'), 500);
  t.is(halfLife('    strategy: { name: pid }\n    smoothing: { halfLife: 0s }\n'), 0);
});

test('JSON policies compile like YAML ones', (t) => {
  const json = JSON.stringify({
    apiVersion: 'loadfeed/v1',
    liveness: { staleAfter: '1500ms' },
    services: [{ name: 'web', address: 'tcp 127.0.0.1:8080', servers: [{ node: 'a', address: '127.0.0.1:1' }] }],
  });
  const p = compilePolicy(json, 'p.json', engines);
  t.is(p.liveness.staleAfterMs, 1500);
  t.is(p.services[0]?.engine, 'fastpath');
});

function problems(text: string): PolicyProblem[] {
  const err = expectPolicyError(() => compilePolicy(text, 'bad.yaml', engines));
  return [...err.problems];
}

function expectPolicyError(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('expected a PolicyError');
}

const INVALID: { name: string; text: string; expect: { line: number | null; path: string; message: RegExp }[] }[] = [
  { name: 'empty file', text: '', expect: [{ line: null, path: '', message: /expected object/ }] },
  {
    name: 'wrong apiVersion',
    text: VALID.replace('loadfeed/v1', 'loadfeed/v0'),
    expect: [{ line: 1, path: 'apiVersion', message: /"loadfeed\/v0".*must be "loadfeed\/v1"/ }],
  },
  {
    name: 'unknown field',
    text: VALID.replace('    engine: fastpath', '    engine: fastpath\n    wieght: 3'),
    expect: [{ line: 5, path: 'services[0]', message: /unknown field "wieght"/ }],
  },
  {
    name: 'min above max',
    text: `${VALID}    weights: { min: 120, max: 100 }\n`,
    expect: [{ line: 10, path: 'services[0].weights.min', message: /120 must be <= weights.max \(100\)/ }],
  },
  {
    name: 'bad duration',
    text: `${VALID}    smoothing: { halfLife: soon }\n`,
    expect: [{ line: 10, path: 'services[0].smoothing.halfLife', message: /"soon" is not a duration/ }],
  },
  {
    name: 'unknown engine',
    text: VALID.replace('engine: fastpath', 'engine: lvs'),
    expect: [{ line: 4, path: 'services[0].engine', message: /"lvs" is not an engine \(known: fastpath, memory, ipvs, nftables, haproxy, xds\)/ }],
  },
  {
    name: 'xds service addressed like an L4 service',
    text: VALID.replace('engine: fastpath', 'engine: xds'),
    expect: [{ line: 5, path: 'services[0].address', message: /"tcp 127.0.0.1:8080" is not an xds service name: .*xds:\/\/\/NAME/ }],
  },
  {
    name: 'xds scheduler the engine does not have',
    text: VALID.replace('engine: fastpath', 'engine: xds\n    scheduler: wlc').replace('tcp 127.0.0.1:8080', 'web'),
    expect: [{ line: 5, path: 'services[0].scheduler', message: /"wlc": not an xDS lb_policy \(ring_hash, round_robin, least_request\)/ }],
  },
  {
    name: 'bad server address',
    text: VALID.replace('127.0.0.2:9001', '127.0.0.2'),
    expect: [{ line: 9, path: 'services[0].servers[1].address', message: /"127.0.0.2" is not an address/ }],
  },
  {
    name: 'duplicate server',
    text: VALID.replace('127.0.0.2:9001', '127.0.0.1:9001'),
    expect: [{ line: 9, path: 'services[0].servers[1].address', message: /listed twice/ }],
  },
  {
    name: 'unknown strategy',
    text: `${VALID}    strategy: { name: magic }\n`,
    expect: [{ line: 10, path: 'services[0].strategy.name', message: /magic/ }],
  },
  {
    name: 'weight above the engine range',
    text: `${VALID}    weights: { max: 70000 }\n`,
    expect: [{ line: 10, path: 'services[0].weights.max', message: /70000 exceeds the fastpath engine's maximum weight \(65535\)/ }],
  },
  {
    name: 'duplicate key',
    text: VALID.replace('    engine: fastpath', '    engine: fastpath\n    engine: memory'),
    expect: [{ line: 5, path: '', message: /[Mm]ap keys must be unique/ }],
  },
  {
    name: 'guard with a bad expression',
    text: `${VALID}    guards:\n      - { when: "mem >> 1", weight: 0 }\n`,
    expect: [{ line: 11, path: 'services[0].guards[0].when', message: /"mem >> 1": expected a number, a name or "\(" at column 6/ }],
  },
  {
    name: 'guard weight above max',
    text: `${VALID}    guards:\n      - { when: "mem > 0.9", weight: 500 }\n`,
    expect: [{ line: 11, path: 'services[0].guards[0].weight', message: /500 must be <= weights.max \(100\)/ }],
  },
  {
    name: 'expression strategy with an unknown metric',
    text: `${VALID}    strategy: { name: expression, score: "cpus * 2" }\n`,
    expect: [{ line: 10, path: 'services[0].strategy.score', message: /unknown name "cpus"/ }],
  },
  {
    name: 'selector combined with node',
    text: VALID.replace('      - node: web-1\n        address: 127.0.0.1:9001', '      - node: web-1\n        selector: { role: web }\n        port: 80'),
    expect: [{ line: 7, path: 'services[0].servers[0]', message: /selector cannot be combined with node or address/ }],
  },
  {
    name: 'selector without port',
    text: VALID.replace('      - node: web-1\n        address: 127.0.0.1:9001', '      - selector: { role: web }'),
    expect: [{ line: 7, path: 'services[0].servers[0].port', message: /selector needs port/ }],
  },
  {
    name: 'server without address',
    text: VALID.replace('      - node: web-1\n        address: 127.0.0.1:9001', '      - node: web-1'),
    expect: [{ line: 7, path: 'services[0].servers[0].address', message: /needs address \(or selector and port\)/ }],
  },
  {
    name: 'stale action misspelt',
    text: `${VALID}    stale: { action: wait }\n`,
    expect: [{ line: 10, path: 'services[0].stale.action', message: /"wait"/ }],
  },
  {
    name: 'shareCap out of range',
    text: `${VALID}    shareCap: 1.5\n`,
    expect: [{ line: 10, path: 'services[0].shareCap', message: /1.5/ }],
  },
  {
    name: 'orca option on headroom',
    text: `${VALID}    strategy: { name: headroom, blackoutPeriod: 5s }\n`,
    expect: [{ line: 10, path: 'services[0].strategy', message: /unknown field "blackoutPeriod"/ }],
  },
  {
    name: 'two errors at once',
    text: VALID.replace('name: web', 'name: "web site"').replace('tcp 127.0.0.1:8080', 'tcp 127.0.0.1:99999'),
    expect: [
      { line: 3, path: 'services[0].name', message: /"web site".*must be 1..63 characters/ },
      { line: 5, path: 'services[0].address', message: /port 99999 must be 0..65535/ },
    ],
  },
];

for (const c of INVALID) {
  test(`refused: ${c.name}`, (t) => {
    const got = problems(c.text);
    t.is(got.length, c.expect.length, JSON.stringify(got));
    c.expect.forEach((e, i) => {
      const p = got[i];
      t.is(p?.file, 'bad.yaml');
      t.is(p?.line, e.line, JSON.stringify(p));
      t.is(p?.path, e.path, JSON.stringify(p));
      t.regex(p?.message ?? '', e.message);
    });
  });
}

test('compiled off the event loop (a reload): the same policy, the same problems with the same lines', async (t) => {
  t.deepEqual(printPolicy(await compilePolicyOffThread(VALID, 'web.yaml', engines)), printPolicy(compilePolicy(VALID, 'web.yaml', engines)));
  for (const text of [...INVALID.map((c) => c.text), '*nowhere', '&a [*a]', 'a: [']) {
    const offThread = await t.throwsAsync(compilePolicyOffThread(text, 'bad.yaml', engines), { instanceOf: PolicyError });
    t.deepEqual(offThread?.problems, problems(text), text);
  }
});

test('the error message names file, line, path and value', (t) => {
  const err = t.throws(() => compilePolicy(`${VALID}    weights: { min: 120, max: 100 }\n`, 'web.yaml', engines), {
    instanceOf: PolicyError,
  });
  t.is(err?.code, 'POLICY_INVALID');
  t.is(err?.message, 'web.yaml:10: services[0].weights.min: 120 must be <= weights.max (100)');
});

test('addresses are put in the canonical form engines report', (t) => {
  const p = compilePolicy(VALID.replace('tcp 127.0.0.1:8080', 'TCP   127.0.0.1:8080').replace('127.0.0.2:9001', ' 127.0.0.2:9001'), 'p.yaml', engines);
  t.is(p.services[0]?.address, 'tcp 127.0.0.1:8080');
  t.like(p.services[0]?.servers[1], { address: '127.0.0.2:9001' });
});

test('YAML tricks are refused with a problem, not an exception: unresolved aliases, alias bombs, self-reference', (t) => {
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');
  for (const [text, message] of [
    ['*nowhere', /Unresolved alias/],
    [bomb, /[Ee]xcessive alias count/],
    ['&a [*a]', /a policy is a mapping with apiVersion and services/],
  ] as const) {
    const err = t.throws(() => compilePolicy(text, 'trick.yaml', engines), { instanceOf: PolicyError });
    t.regex(err?.message ?? '', message);
  }
});

test('engine capabilities: what an engine cannot do is refused', (t) => {
  const haproxy = `apiVersion: loadfeed/v1
services:
  - name: web
    engine: haproxy
    address: web_backend
    owned: true
    servers: [{ node: n1, address: s1 }]
`;
  const err = t.throws(() => compilePolicy(haproxy, 'h.yaml', engines), { instanceOf: PolicyError });
  t.deepEqual(err?.problems.map((p) => `${p.line}: ${p.path}: ${p.message}`), [
    '6: services[0].owned: true: the haproxy engine cannot create services (they come from its own configuration)',
    '4: services[0].engine: haproxy needs engines.haproxy.socket: the runtime API socket (stats socket … level admin)',
  ]);
  const ok = compilePolicy(`apiVersion: loadfeed/v1
engines: { haproxy: { socket: /run/haproxy/admin.sock } }
services:
  - name: web
    engine: haproxy
    address: web_backend
    connectionLimit: "max(50, connections * (1.2 - cpu))"
    servers: [{ node: n1, address: s1 }]
`, 'h.yaml', engines);
  t.like(ok.services[0], { owned: false, address: 'web_backend' });
  t.is(ok.services[0]?.connectionLimit?.source, 'max(50, connections * (1.2 - cpu))');
  const limited = VALID.replace('    engine: fastpath', '    engine: fastpath\n    connectionLimit: "100"');
  t.is(compilePolicy(limited, 'f.yaml', engines).services[0]?.connectionLimit?.source, '100', 'the fast path has connection limits');
  const nft = t.throws(() => compilePolicy(limited.replace('engine: fastpath', 'engine: nftables').replace(/scheduler: \S+/, 'scheduler: random'), 'n.yaml', engines), { instanceOf: PolicyError });
  t.regex(nft?.message ?? '', /services\[0\].connectionLimit: the nftables engine has no per-server connection limit/);
});

test('ipvs: services are adopted by default, and wrr gets coarse weight steps', (t) => {
  const p = compilePolicy(`apiVersion: loadfeed/v1
services:
  - name: web
    engine: ipvs
    address: tcp 192.0.2.10:80
    scheduler: wrr
    weights: { max: 200 }
    servers: [{ node: n1, address: "192.0.2.21:80" }]
`, 'i.yaml', engines);
  t.like(p.services[0], { owned: false, weights: { min: 1, max: 200, quantum: 10 } });
});

test('scheduler: each engine takes its own names and refuses the others with why', (t) => {
  const svc = (engine: string, address: string, scheduler: string): string => `apiVersion: loadfeed/v1
engines: { haproxy: { socket: /run/haproxy/admin.sock } }
services:
  - name: web
    engine: ${engine}
    address: ${address}
    scheduler: ${scheduler}
    servers: [{ node: n1, address: ${engine === 'haproxy' ? 's1' : '"192.0.2.21:80"'} }]
`;
  const problem = (engine: string, address: string, scheduler: string): string => {
    const err = t.throws(() => compilePolicy(svc(engine, address, scheduler), 'p.yaml', engines), { instanceOf: PolicyError });
    return err?.problems.map((p) => `${p.line}: ${p.path}: ${p.message}`).join('\n') ?? '';
  };
  for (const s of ['wlc', 'swrr', 'sed', 'swrr-lc', 'swrr-sed', 'swrr-lead', 'peak-ewma']) t.is(compilePolicy(svc('fastpath', 'tcp 192.0.2.10:80', s), 'p.yaml', engines).services[0]?.scheduler, s);
  t.is(problem('fastpath', 'tcp 192.0.2.10:80', 'lc'), '7: services[0].scheduler: "lc": not a fast path scheduler (wlc, swrr, sed, swrr-lc, swrr-sed, swrr-lead, peak-ewma)');
  t.is(compilePolicy(svc('ipvs', 'tcp 192.0.2.10:80', 'sed'), 'p.yaml', engines).services[0]?.scheduler, 'sed');
  t.is(problem('ipvs', 'tcp 192.0.2.10:80', 'swrr-lc'), '7: services[0].scheduler: "swrr-lc": a fast path scheduler IPVS does not have; the nearest IPVS ones: sed or wlc');
  t.is(compilePolicy(svc('nftables', 'tcp 192.0.2.10:80', 'random'), 'p.yaml', engines).services[0]?.scheduler, 'random');
  t.regex(problem('nftables', 'tcp 192.0.2.10:80', 'sed'), /"sed": the nftables engine's only scheduler is "random"/);
  t.regex(problem('haproxy', 'web_backend', 'sed'), /"sed": HAProxy's algorithm is "balance" in haproxy.cfg .*no shortest expected delay/);
});
