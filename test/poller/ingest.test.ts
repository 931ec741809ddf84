// The ingest path's per-stream rules that the fuzz tests do not pin down:
// how often samples are acknowledged, and how big a burst the rate limit lets
// through before it cuts the stream.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { AgentMessage } from '@loadfeed/proto';
import { ACK_INTERVAL_MS, DEFAULT_LIMITS, SAMPLE_BURST_SECONDS } from '@loadfeed/poller';
import { fakeIngest } from '../helpers/fake-call.js';

// As grpc-js hands it over: decoded, every field set.
const HELLO = AgentMessage.decode(AgentMessage.encode({ hello: { nodeId: 'n1', cores: 2, memoryBytes: 1e9 } }).finish());
const sample = (seq: number): object => ({ body: 'sample', sample: { seq, timestampMs: Date.now(), cpuUtilization: 0.5, memUtilization: 0.5, services: [], windowMs: 1000, namedMetrics: {} } });
const acks = (written: readonly unknown[]): number[] => (written as { ack?: { lastSeq: number } }[]).flatMap((m) => (m.ack ? [m.ack.lastSeq] : []));

test(`the first sample of a stream is acknowledged at once, the next ones at most every ${ACK_INTERVAL_MS} ms`, (t) => {
  const { open, table } = fakeIngest(DEFAULT_LIMITS);
  const call = open();
  call.emit('data', HELLO);
  for (let seq = 1; seq <= 10; seq++) call.emit('data', sample(seq));
  t.is(table.lookup().byId('n1')?.samples, 10);
  t.deepEqual(acks(call.written), [1]);
  t.is(call.status, null);
  // A new stream of the same node is acknowledged afresh.
  const again = open();
  again.emit('data', HELLO);
  again.emit('data', sample(1));
  t.deepEqual(acks(again.written), [1]);
});

test(`a backlog of up to ${SAMPLE_BURST_SECONDS} s worth of the rate limit arriving at once is accepted; a flood past it cuts the stream`, (t) => {
  const rate = 20;
  const burst = rate * SAMPLE_BURST_SECONDS;
  const { open, table } = fakeIngest({ ...DEFAULT_LIMITS, maxSamplesPerSecond: rate });
  const call = open();
  call.emit('data', HELLO);
  for (let seq = 1; seq <= burst; seq++) call.emit('data', sample(seq));
  t.is(call.status, null, 'the backlog is accepted');
  t.is(table.lookup().byId('n1')?.samples, burst);
  // The bucket refills at `rate` per second: a few more may pass while the loop runs, not twice the burst.
  for (let seq = burst + 1; seq <= 2 * burst && call.status === null; seq++) call.emit('data', sample(seq));
  t.is(call.status?.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(call.status?.details ?? '', /more than 20 samples per second/);
  t.true((table.lookup().byId('n1')?.samples ?? 0) < burst + 10);
});
