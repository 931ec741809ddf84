// Pins the wire contract: a field number or type that changes breaks every
// deployed agent or poller, so it must be a deliberate, visible edit here.
import test from 'ava';
import protobuf from 'protobufjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { AgentMessage, Sample, PollerMessage } from '@loadfeed/proto';

type Fields = Record<string, [number, string, ('repeated' | 'optional' | 'map')?]>;

interface Reflected {
  fields: Record<string, { id: number; type: string; rule?: string; keyType?: string; options?: Record<string, unknown> }>;
}

// pbjs static code carries the schema only in its encode/decode functions, so
// pin it from the .proto source, parsed by protobufjs itself, and check the
// generated codec agrees by round-tripping through it.
const require = createRequire(import.meta.url);
const protoRoot = path.join(path.dirname(require.resolve('@loadfeed/proto/package.json')), 'v1');
const root = protobuf.loadSync(path.join(protoRoot, 'loadfeed/agent/v1/telemetry.proto'));

const expected: Record<string, Fields> = {
  AgentMessage: { hello: [1, 'Hello'], sample: [2, 'Sample'], drain: [3, 'Drain'], undrain: [4, 'Undrain'] },
  PollerMessage: { ack: [1, 'Ack'], config: [2, 'Config'] },
  Hello: {
    nodeId: [1, 'string'],
    hostname: [2, 'string'],
    addresses: [3, 'string', 'repeated'],
    cores: [4, 'double'],
    memoryBytes: [5, 'uint64'],
    labels: [6, 'string', 'map'],
    services: [7, 'ServiceInfo', 'repeated'],
    agentVersion: [8, 'string'],
    scope: [9, 'Scope'],
    cpuModel: [10, 'string'],
    intervalMs: [11, 'uint32'],
  },
  ServiceInfo: { name: [1, 'string'], port: [2, 'uint32'] },
  Sample: {
    seq: [1, 'uint64'],
    timestampMs: [2, 'uint64'],
    cpuUtilization: [3, 'double'],
    memUtilization: [4, 'double'],
    load1: [5, 'double', 'optional'],
    runnable: [6, 'uint32', 'optional'],
    psiCpuSome: [7, 'double', 'optional'],
    psiMemorySome: [8, 'double', 'optional'],
    psiIoSome: [9, 'double', 'optional'],
    cpuThrottled: [10, 'double', 'optional'],
    tcpInuse: [11, 'uint32', 'optional'],
    services: [12, 'ServiceLoad', 'repeated'],
    windowMs: [13, 'uint32'],
    tcpEstablished: [14, 'uint32', 'optional'],
    tcpAcceptsPerSecond: [15, 'double', 'optional'],
    applicationUtilization: [16, 'double', 'optional'],
    rpsFractional: [17, 'double', 'optional'],
    eps: [18, 'double', 'optional'],
    namedMetrics: [19, 'double', 'map'],
  },
  ServiceLoad: { name: [1, 'string'], established: [2, 'uint32', 'optional'] },
  Drain: { reason: [1, 'string'] },
  Undrain: {},
  Ack: { lastSeq: [1, 'uint64'] },
  Config: { intervalMs: [1, 'uint32', 'optional'] },
};

for (const [name, fields] of Object.entries(expected)) {
  test(`${name} field numbers and types are pinned`, (t) => {
    const type = root.lookupType(`loadfeed.agent.v1.${name}`).toJSON() as Reflected;
    const actual: Fields = {};
    for (const [field, f] of Object.entries(type.fields ?? {})) {
      const camel = field.replace(/_(\w)/g, (_m, c: string) => c.toUpperCase());
      const kind = f.keyType ? 'map' : f.rule === 'repeated' ? 'repeated' : f.options?.['proto3_optional'] ? 'optional' : undefined;
      actual[camel] = kind ? [f.id, f.type, kind] : [f.id, f.type];
    }
    t.deepEqual(actual, fields);
  });
}

test('the Telemetry service has one bidi Report method', (t) => {
  const svc = root.lookupService('loadfeed.agent.v1.Telemetry').toJSON() as {
    methods: Record<string, { requestType: string; responseType: string; requestStream?: boolean; responseStream?: boolean }>;
  };
  t.deepEqual(svc.methods, {
    Report: { requestType: 'AgentMessage', requestStream: true, responseType: 'PollerMessage', responseStream: true },
  });
});

test('64-bit fields decode as plain numbers, not Long', (t) => {
  const ts = 1_795_393_938_081;
  const bytes = AgentMessage.encode({ sample: { seq: 2 ** 40 + 1, timestampMs: ts, windowMs: 1000 } }).finish();
  const back = AgentMessage.decode(bytes);
  t.is(back.body, 'sample');
  t.is(typeof back.sample?.seq, 'number');
  t.is(back.sample?.seq, 2 ** 40 + 1);
  t.is(back.sample?.timestampMs, ts);
  t.is(typeof Sample.create().seq, 'number');
  t.is(PollerMessage.decode(PollerMessage.encode({ ack: { lastSeq: 7 } }).finish()).ack?.lastSeq, 7);
});

test('absent optional metrics decode as null, present zeros stay 0', (t) => {
  const back = Sample.decode(Sample.encode({ seq: 1, psiCpuSome: 0 }).finish());
  t.is(back.psiCpuSome, 0);
  t.is(back.load1, null);
  t.is(back.tcpInuse, null);
});

test('the generated codec writes the field numbers the .proto declares', (t) => {
  const bytes = Sample.encode({ seq: 3, windowMs: 500, tcpAcceptsPerSecond: 2.5 }).finish();
  const reflected = root.lookupType('loadfeed.agent.v1.Sample').decode(bytes).toJSON();
  t.deepEqual(reflected, { seq: '3', windowMs: 500, tcpAcceptsPerSecond: 2.5 });
});

// The Sample of the contract before application metrics (fields 1..15), as an
// agent or poller built before them still encodes and decodes it.
const oldRoot = protobuf.parse(`
syntax = "proto3";
package old;
message Sample {
  uint64 seq = 1;
  uint64 timestamp_ms = 2;
  double cpu_utilization = 3;
  double mem_utilization = 4;
  optional double load1 = 5;
  uint32 window_ms = 13;
  optional double tcp_accepts_per_second = 15;
}`).root;
const OldSample = oldRoot.lookupType('old.Sample');

test('a sample from an agent without application metrics decodes with them absent', (t) => {
  const bytes = OldSample.encode(OldSample.fromObject({ seq: 4, cpuUtilization: 0.5, load1: 1.5, windowMs: 1000 })).finish();
  const back = Sample.decode(bytes);
  t.is(back.cpuUtilization, 0.5);
  t.is(back.load1, 1.5);
  t.is(back.applicationUtilization, null);
  t.is(back.rpsFractional, null);
  t.is(back.eps, null);
  t.deepEqual({ ...back.namedMetrics }, {});
});

test('a poller without application metrics reads a new sample and skips them', (t) => {
  const bytes = Sample.encode({
    seq: 5,
    cpuUtilization: 0.25,
    windowMs: 1000,
    tcpAcceptsPerSecond: 3,
    applicationUtilization: 0.7,
    rpsFractional: 120.5,
    eps: 0,
    namedMetrics: { in_flight: 12, latency_seconds: 0.08 },
  }).finish();
  const old = OldSample.toObject(OldSample.decode(bytes), { longs: Number });
  t.deepEqual(old, { seq: 5, cpuUtilization: 0.25, windowMs: 1000, tcpAcceptsPerSecond: 3 });
  const back = Sample.decode(bytes);
  t.is(back.eps, 0, 'a present 0 stays 0');
  t.is(back.rpsFractional, 120.5);
  t.deepEqual({ ...back.namedMetrics }, { in_flight: 12, latency_seconds: 0.08 });
});
