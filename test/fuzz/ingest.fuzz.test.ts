// Fuzz the ingest path: arbitrary bytes as the wire would carry them, and
// structurally valid but hostile messages. Whatever comes in, the poller
// must not throw, must answer a refusal with a gRPC status on that stream
// only, and must never let a non-finite or out-of-range value reach the node
// table, nor a Hello field beyond its bound; and on the real wire, a stream
// that ends inside a message never ends with OK. LOADFEED_FUZZ_RUNS raises
// the count (`npm run fuzz`).
import test from 'ava';
import fc from 'fast-check';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { AgentMessage, APP_METRIC_NAME, MAX_NAMED_METRICS, TELEMETRY_REPORT_PATH } from '@loadfeed/proto';
import { fakeIngest } from '../helpers/fake-call.js';
import {
  compilePolicy,
  DEFAULT_LIMITS,
  defaultEngines,
  defaultStrategies,
  MAX_ADDRESSES,
  MAX_HOSTNAME_CHARS,
  MAX_LABELS,
  MAX_LABEL_VALUE_CHARS,
  Poller,
  WeightEvaluator,
  type CompiledService,
  type NodeTable,
} from '@loadfeed/poller';

const RUNS = Number(process.env['LOADFEED_FUZZ_RUNS'] ?? 10_000);

const setup = (): ReturnType<typeof fakeIngest> => fakeIngest({ ...DEFAULT_LIMITS, maxSamplesPerSecond: 1e9 });

const HELLO = { hello: { nodeId: 'fuzz', cores: 2, memoryBytes: 1e9, services: [{ name: 'http', port: 80 }] } };

function assertTableSane(table: NodeTable): boolean {
  for (const n of table.all()) {
    const s = n.sample;
    if (!s) continue;
    const ratios = [s.cpuUtilization, s.memUtilization];
    if (!ratios.every((x) => Number.isFinite(x) && x >= 0 && x <= 64)) return false;
    for (const x of [s.psiCpuSome, s.psiMemorySome, s.psiIoSome, s.cpuThrottled]) {
      if (x !== null && x !== undefined && !(Number.isFinite(x) && x >= 0 && x <= 1)) return false;
    }
    if (!Number.isFinite(n.hello.cores) || n.hello.cores <= 0) return false;
    const h = n.hello;
    if (h.hostname.length > MAX_HOSTNAME_CHARS || h.addresses.length > MAX_ADDRESSES) return false;
    const labels = Object.entries(h.labels);
    if (labels.length > MAX_LABELS || labels.some(([, v]) => v.length > MAX_LABEL_VALUE_CHARS)) return false;
    for (const x of [s.applicationUtilization, s.rpsFractional, s.eps]) {
      if (x !== null && x !== undefined && !(Number.isFinite(x) && x >= 0)) return false;
    }
    const named = Object.entries(s.namedMetrics);
    if (named.length > MAX_NAMED_METRICS || !named.every(([k, v]) => APP_METRIC_NAME.test(k) && Number.isFinite(v))) return false;
  }
  return true;
}

test('arbitrary bytes: decoded or refused by the codec, never a crash or a bad value in the table', (t) => {
  const { table, open } = setup();
  let decoded = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      let msg: AgentMessage;
      try {
        msg = AgentMessage.decode(bytes);
      } catch {
        return true; // grpc-js fails the stream with INTERNAL; nothing reaches ingest
      }
      decoded += 1;
      const call = open();
      call.emit('data', AgentMessage.decode(AgentMessage.encode(HELLO).finish()));
      call.emit('data', msg);
      call.emit('end');
      return assertTableSane(table);
    }),
    { numRuns: RUNS },
  );
  t.true(decoded > 0, 'some inputs decoded and reached ingest');
});

const hostileDouble = fc.oneof(
  fc.double(),
  fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, 1e308, 65, 1.0000001),
);
/** Mostly valid names (so some samples pass), plus the edge cases: too long, wrong alphabet, too many. */
const metricName = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/),
  fc.constantFrom('', 'In_Flight', '9x', 'a.b', '__proto__', 'constructor', 'a'.repeat(64), 'a'.repeat(65), 'x'.repeat(5000)),
  fc.string({ maxLength: 80 }),
);
const hostileNamedMetrics = fc.oneof(
  fc.dictionary(metricName, hostileDouble, { maxKeys: 6 }),
  fc.integer({ min: MAX_NAMED_METRICS - 1, max: MAX_NAMED_METRICS + 2 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`m${i}`, i]))),
);
const hostileSample = fc.record(
  {
    seq: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(2 ** 60)),
    timestampMs: fc.oneof(fc.constant(Date.now()), fc.integer({ min: 0, max: 2 ** 52 })),
    cpuUtilization: hostileDouble,
    memUtilization: hostileDouble,
    load1: fc.option(hostileDouble, { nil: null }),
    psiCpuSome: fc.option(hostileDouble, { nil: null }),
    psiMemorySome: fc.option(hostileDouble, { nil: null }),
    psiIoSome: fc.option(hostileDouble, { nil: null }),
    cpuThrottled: fc.option(hostileDouble, { nil: null }),
    tcpAcceptsPerSecond: fc.option(hostileDouble, { nil: null }),
    windowMs: fc.integer({ min: -1, max: 2 ** 32 - 1 }),
    services: fc.array(fc.record({ name: fc.oneof(fc.constant('http'), fc.string({ maxLength: 300 })), established: fc.option(fc.nat(), { nil: null }) }), { maxLength: 5 }),
    applicationUtilization: fc.option(hostileDouble, { nil: null }),
    rpsFractional: fc.option(hostileDouble, { nil: null }),
    eps: fc.option(hostileDouble, { nil: null }),
    namedMetrics: hostileNamedMetrics,
  },
  { requiredKeys: [] },
);
const hostileHello = fc.record(
  {
    nodeId: fc.oneof(fc.constant('fuzz'), fc.string({ maxLength: 300 }), fc.constantFrom('', '../../etc', '__proto__', 'a'.repeat(254))),
    cores: hostileDouble,
    memoryBytes: fc.oneof(fc.nat(), fc.constant(2 ** 60)),
    services: fc.array(fc.record({ name: fc.string({ maxLength: 50 }), port: fc.integer({ min: -1, max: 70_000 }) }), { maxLength: 80 }),
    labels: fc.oneof(
      fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), { maxKeys: 5 }),
      fc.integer({ min: 0, max: 1_000 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`l${i}`, 'v']))),
      fc.integer({ min: 0, max: 2_000 }).map((n) => ({ role: 'v'.repeat(n) })),
    ),
    hostname: fc.oneof(fc.string({ maxLength: 30 }), fc.integer({ min: 0, max: 20_000 }).map((n) => 'h'.repeat(n))),
    cpuModel: fc.integer({ min: 0, max: 10_000 }).map((n) => 'c'.repeat(n)),
    addresses: fc.oneof(fc.constant(['10.0.0.1']), fc.array(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 20 })), { maxLength: 100 })),
  },
  { requiredKeys: [] },
);
const hostileMessage = fc.oneof(
  hostileSample.map((sample) => ({ sample })),
  hostileHello.map((hello) => ({ hello })),
  fc.constant({ drain: { reason: 'x'.repeat(10_000) } }),
  fc.constant({ undrain: {} }),
  fc.constant({}),
);

test('hostile but well-formed messages: refused with a status or accepted within bounds', (t) => {
  const { table, open } = setup();
  let refused = 0;
  let accepted = 0;
  fc.assert(
    fc.property(fc.array(hostileMessage, { minLength: 1, maxLength: 6 }), fc.boolean(), (messages, helloFirst) => {
      const call = open();
      const wire = (m: object): AgentMessage => AgentMessage.decode(AgentMessage.encode(m).finish());
      if (helloFirst) call.emit('data', wire(HELLO));
      for (const m of messages) call.emit('data', wire(m));
      if (call.status) {
        refused += 1;
        if (!Object.values(grpc.status).includes(call.status.code) || call.status.code === grpc.status.OK || call.status.details === '') return false;
      } else {
        accepted += 1;
      }
      call.emit('end');
      return assertTableSane(table);
    }),
    { numRuns: RUNS },
  );
  t.true(refused > 0 && accepted > 0, `refused ${refused}, accepted ${accepted}`);
});

test('whatever was accepted, the policy computes finite weights within bounds', (t) => {
  const policy = compilePolicy(
    'apiVersion: loadfeed/v1\nservices:\n  - name: web\n    address: tcp 10.0.0.1:80\n    servers: [{ node: fuzz, address: "10.0.0.2:80" }, { node: other, address: "10.0.0.3:80" }]\n',
    'p.yaml',
    defaultEngines().limits(),
  );
  const service = policy.services[0] as CompiledService;
  fc.assert(
    fc.property(fc.array(hostileSample, { minLength: 1, maxLength: 5 }), (samples) => {
      const { table, open } = setup();
      const evaluator = new WeightEvaluator(defaultStrategies());
      const call = open();
      call.emit('data', AgentMessage.decode(AgentMessage.encode(HELLO).finish()));
      for (const sample of samples) call.emit('data', AgentMessage.decode(AgentMessage.encode({ sample }).finish()));
      return evaluator.evaluate(service, table.lookup(), performance.now()).every((d) => Number.isInteger(d.weight) && d.weight >= 0 && d.weight <= 100);
    }),
    { numRuns: Math.ceil(RUNS / 5) },
  );
  t.pass();
});

/** How a byte sequence ends for the gRPC framing (flag, 4-byte length, body): between messages or inside one. */
function endsInsideMessage(bytes: Uint8Array): boolean {
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 5) return true;
    const length = ((bytes[at + 1] ?? 0) * 2 ** 24) + ((bytes[at + 2] ?? 0) << 16) + ((bytes[at + 3] ?? 0) << 8) + (bytes[at + 4] ?? 0);
    if (bytes.length - at - 5 < length) return true;
    at += 5 + length;
  }
  return false;
}

const frame = (message: Parameters<typeof AgentMessage.encode>[0]): Uint8Array => {
  const body = AgentMessage.encode(message).finish();
  const out = new Uint8Array(5 + body.length);
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, 5);
  return out;
};

test('on the real wire, a stream that ends inside a message (truncated, or announced over the limit) never ends with OK', async (t) => {
  const engines = defaultEngines();
  const policy = compilePolicy('apiVersion: loadfeed/v1\nservices:\n  - name: web\n    engine: memory\n    address: tcp 10.0.0.1:80\n    servers: [{ node: fuzz, address: "10.0.0.2:80" }]\n', 'p.yaml', engines.limits());
  const poller = new Poller({ listen: '127.0.0.1:0', policy, engines, strategies: defaultStrategies(), logger: pino({ level: 'silent' }), limits: { ...DEFAULT_LIMITS, maxSamplesPerSecond: 1e9 } });
  const port = await poller.start();
  t.teardown(() => poller.stop());
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const send = (bytes: Uint8Array): Promise<number | null> =>
    new Promise((resolve) => {
      const stream = session.request({ ':method': 'POST', ':path': TELEMETRY_REPORT_PATH, 'content-type': 'application/grpc', te: 'trailers' });
      const take = (h: http2.IncomingHttpHeaders): void => {
        if (h['grpc-status'] !== undefined) resolve(Number(h['grpc-status']));
      };
      stream.on('response', take);
      stream.on('trailers', take);
      stream.on('error', () => undefined);
      stream.on('close', () => resolve(null));
      stream.resume();
      stream.end(bytes);
    });
  let cut = 0;
  await fc.assert(
    fc.asyncProperty(
      // A Hello or not, then whole frames, arbitrary bytes, or a frame cut short.
      fc.boolean(),
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.tuple(fc.nat({ max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 64 })).map(([length, body]) => {
          const out = new Uint8Array(5 + body.length);
          new DataView(out.buffer).setUint32(1, length);
          out.set(body, 5);
          return out;
        }),
        fc.integer({ min: 1, max: 30 }).map((n) => frame({ sample: { seq: 1, timestampMs: Date.now(), cpuUtilization: 0.5, windowMs: 1000 } }).slice(0, n)),
      ),
      async (hello, tail) => {
        const head = hello ? frame({ hello: { nodeId: 'fuzz', cores: 2, memoryBytes: 1e9 } }) : new Uint8Array(0);
        const bytes = new Uint8Array([...head, ...tail]);
        const code = await send(bytes);
        if (!endsInsideMessage(bytes)) return true;
        cut += 1;
        return code !== null && code !== grpc.status.OK;
      },
    ),
    { numRuns: Math.max(50, Math.ceil(RUNS / 50)) },
  );
  t.true(cut > 0, 'some streams ended inside a message');
});

test('application metrics within bounds are kept; a bad name or too many names is refused with the field named, and counted', (t) => {
  const { table, open, ingest } = setup();
  const call = open();
  const wire = (m: object): AgentMessage => AgentMessage.decode(AgentMessage.encode(m).finish());
  call.emit('data', wire(HELLO));
  call.emit('data', wire({ sample: { seq: 1, timestampMs: Date.now(), windowMs: 1000, rpsFractional: 5, namedMetrics: { in_flight: 3 } } }));
  t.deepEqual({ ...table.get('fuzz')?.sample?.namedMetrics }, { in_flight: 3 });
  call.emit('data', wire({ sample: { seq: 2, timestampMs: Date.now(), windowMs: 1000, namedMetrics: { 'Bad.Name': 1 } } }));
  t.is(call.status?.code, grpc.status.INVALID_ARGUMENT);
  t.regex(call.status?.details ?? '', /^sample\.named_metrics: name "Bad\.Name" must be 1\.\.64 characters/);
  t.is(ingest.counters.rejected.get('sample.named_metrics'), 1);
  const again = open();
  again.emit('data', wire(HELLO));
  again.emit('data', wire({ sample: { seq: 1, timestampMs: Date.now(), windowMs: 1000, namedMetrics: Object.fromEntries(Array.from({ length: MAX_NAMED_METRICS + 1 }, (_, i) => [`m${i}`, i])) } }));
  t.regex(again.status?.details ?? '', /named_metrics: 65 entries, at most 64/);
  t.is(ingest.counters.rejected.get('sample.named_metrics'), 2);
});
