import test from 'ava';
import { once } from 'node:events';
import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AgentMessage, Hello, Sample } from '@loadfeed/proto';
import {
  NodeTable,
  DEPARTED_MAX,
  DEPARTED_MAX_BYTES,
  helloBytes,
  LIVENESS_SWEEP_MS,
  MAX_ADDRESSES,
  MAX_AGENT_VERSION_CHARS,
  MAX_CPU_MODEL_CHARS,
  MAX_HOSTNAME_CHARS,
  MAX_LABELS,
  MAX_LABEL_NAME_CHARS,
  MAX_LABEL_VALUE_CHARS,
  MAX_SERVICE_NAME_CHARS,
  MAX_SERVICES_PER_AGENT,
  type NodeEvent,
} from '@loadfeed/poller';

test('a node without samples for staleAfter turns stale, and live again on its next sample', async (t) => {
  const events: NodeEvent[] = [];
  let onStale: (() => void) | null = null;
  const table = new NodeTable(300, (e) => {
    events.push({ ...e });
    if (e.to === 'stale') onStale?.();
  });
  table.start();
  t.teardown(() => table.stop());
  const node = table.connect(Hello.create({ nodeId: 'n1', cores: 1, memoryBytes: 1 }));
  table.accept(node, Sample.create({ seq: 1, windowMs: 1 }));
  const acceptedAt = performance.now();
  await new Promise<void>((resolve) => {
    onStale = resolve;
  });
  const took = performance.now() - acceptedAt;
  // Not before staleAfter less one sweep; how late is up to the timers of a
  // machine that may be loaded (the sweep's period is checked in the liveness
  // figures of docs/RELIABILITY.md, not here).
  t.true(took >= 300 - LIVENESS_SWEEP_MS - 1, `stale after ${took} ms`);
  t.is(node.state, 'stale');
  table.accept(node, Sample.create({ seq: 2, windowMs: 1 }));
  t.is(node.state, 'live');
  t.deepEqual(
    events.filter((e) => e.from !== e.to).map((e) => [e.from, e.to]),
    [[null, 'live'], ['live', 'stale'], ['stale', 'live']],
  );
});

// Serial: it holds the event loop, which would hold up the timers of the staleness tests running beside it.
test.serial('a sample that came while a long task held the loop is read before its node is judged silent', async (t) => {
  const events: NodeEvent[] = [];
  const table = new NodeTable(300, (e) => events.push({ ...e }));
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [socket] = (await once(server, 'connection')) as [net.Socket];
  t.teardown(() => {
    table.stop();
    client.destroy();
    socket.destroy();
    server.close();
  });
  const node = table.connect(Hello.create({ nodeId: 'n1', cores: 1, memoryBytes: 1 }));
  table.accept(node, Sample.create({ seq: 1, windowMs: 1 }));
  const read = new Promise<void>((resolve) =>
    socket.on('data', () => {
      table.accept(node, Sample.create({ seq: 2, windowMs: 1 }));
      resolve();
    }),
  );
  table.start();
  // On loopback the bytes are in the poller's socket as write returns; then
  // the loop is held past staleAfter, as a long cycle on a busy core does.
  client.write('sample');
  const heldUntil = performance.now() + 600;
  while (performance.now() < heldUntil);
  await read;
  // The sweep due while the loop was held runs in this turn's check phase, before this.
  await new Promise(setImmediate);
  t.is(node.state, 'live');
  t.deepEqual(events.filter((e) => e.from !== e.to).map((e) => [e.from, e.to]), [[null, 'live']]);
});

test('a sample of a live node raises no event: it goes to onSample; one that revives a stale node is a change', (t) => {
  const events: string[] = [];
  const sampled: string[] = [];
  let now = 0;
  const table = new NodeTable(1000, (e) => events.push(`${e.from}->${e.to}`), () => now, (node) => sampled.push(node.id));
  const node = table.connect(Hello.create({ nodeId: 'n1', cores: 1, memoryBytes: 1 }));
  table.accept(node, Sample.create({ seq: 1, windowMs: 1 }));
  table.accept(node, Sample.create({ seq: 2, windowMs: 1 }));
  t.deepEqual(events, ['null->live']);
  t.deepEqual(sampled, ['n1', 'n1']);
  now = 5000;
  table.sweep();
  table.accept(node, Sample.create({ seq: 3, windowMs: 1 }));
  t.deepEqual(events, ['null->live', 'live->stale', 'stale->live']);
  t.deepEqual(sampled, ['n1', 'n1']);
});

test('a disconnect of an old stream does not remove the node that reconnected', (t) => {
  const table = new NodeTable(2000, () => undefined);
  const first = table.connect(Hello.create({ nodeId: 'n1', cores: 1, memoryBytes: 1 }));
  const second = table.connect(Hello.create({ nodeId: 'n1', cores: 2, memoryBytes: 1 }));
  table.disconnect(first);
  t.is(table.get('n1'), second);
  table.disconnect(second);
  t.is(table.get('n1'), undefined);
  t.is(table.departedInfo('n1')?.hello.cores, 2);
});

test('departed nodes are remembered in a bounded LRU: a flood of invented ids cannot grow memory', (t) => {
  const table = new NodeTable(2000, () => undefined);
  for (let i = 0; i < DEPARTED_MAX + 50; i += 1) {
    table.disconnect(table.connect(Hello.create({ nodeId: `flood-${i}`, cores: 1, memoryBytes: 1 })));
  }
  t.is(table.departedInfo('flood-0'), undefined, 'the oldest are forgotten');
  t.truthy(table.departedInfo(`flood-${DEPARTED_MAX + 49}`));
  t.is([...table.all()].length, 0);
});

// Serial: it fills the LRU synchronously, which would hold up the timers of the staleness tests running beside it.
test.serial('departed state is bounded in bytes too: the largest Hellos allowed fill it long before its entry count', (t) => {
  const table = new NodeTable(2000, () => undefined);
  const labels = Object.fromEntries(Array.from({ length: MAX_LABELS }, (_, i) => [`label-${i}`, 'v'.repeat(MAX_LABEL_VALUE_CHARS)]));
  const hello = (i: number): Hello => Hello.create({ nodeId: `big-${i}`, hostname: 'h'.repeat(MAX_HOSTNAME_CHARS), cores: 1, memoryBytes: 1, labels });
  const fits = Math.floor(DEPARTED_MAX_BYTES / helloBytes(hello(0)));
  t.true(fits < DEPARTED_MAX, `${fits} such Hellos fill ${DEPARTED_MAX_BYTES} bytes`);
  for (let i = 0; i < fits + 10; i += 1) table.disconnect(table.connect(hello(i)));
  t.is(table.departedInfo('big-0'), undefined, 'the oldest are forgotten once the bytes are spent');
  t.truthy(table.departedInfo(`big-${fits + 9}`));
});

// Serial: it measures the heap, which concurrent tests would grow.
test.serial('helloBytes counts the heap a decoded Hello holds: at least that, at most a quarter more', (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const pad = (s: string, n: number): string => s.padEnd(n, 'x');
  // Every field at its bound, strings of every length class protobufjs decodes differently, one beyond Latin-1.
  const wire = (i: number): Uint8Array =>
    AgentMessage.encode({
      hello: {
        nodeId: `node-${i}`,
        hostname: pad(`host-${i}.`, MAX_HOSTNAME_CHARS),
        cpuModel: pad(`cpu ${i} \u5904\u7406\u5668 `, MAX_CPU_MODEL_CHARS),
        agentVersion: pad(`v${i}`, MAX_AGENT_VERSION_CHARS),
        cores: 64,
        memoryBytes: 2 ** 40,
        addresses: Array.from({ length: MAX_ADDRESSES }, (_, j) => (j % 2 ? `2001:db8::${i.toString(16)}:${j.toString(16)}` : `10.${i & 255}.${(i >> 8) & 255}.${j}`)),
        labels: Object.fromEntries(Array.from({ length: MAX_LABELS }, (_, j) => [pad(`l${j}-${i}-`, j % 2 ? MAX_LABEL_NAME_CHARS : 20), pad(`v${j}`, (j * 7) % (MAX_LABEL_VALUE_CHARS + 1))])),
        services: Array.from({ length: MAX_SERVICES_PER_AGENT }, (_, j) => ({ name: pad(`s${j}-`, 1 + (j % MAX_SERVICE_NAME_CHARS)), port: 1000 + j })),
      },
    }).finish();
  const count = 300;
  const perHello: number[] = [];
  // Every run's Hellos stay held: one dropped meanwhile would be collected inside the next run's measure.
  const held: Hello[][] = [];
  for (let run = 0; run < 3; run += 1) {
    const encoded = Array.from({ length: count }, (_, i) => wire(run * count + i));
    gc();
    const before = process.memoryUsage().heapUsed;
    held.push(encoded.map((b) => AgentMessage.decode(b).hello as Hello));
    gc();
    perHello.push((process.memoryUsage().heapUsed - before) / count);
  }
  const estimate = held.flat().reduce((sum, h) => sum + helloBytes(h), 0) / held.flat().length;
  const heap = perHello.sort((a, b) => a - b)[1] ?? 0;
  t.true(estimate >= heap && estimate <= 1.25 * heap, `estimate ${Math.round(estimate)} bytes a Hello, heap ${Math.round(heap)} (runs ${perHello.map(Math.round).join(', ')})`);
});

test('a silent node is stale no later than staleAfter after its last sample, and not before staleAfter less one sweep interval', (t) => {
  let now = 0;
  const table = new NodeTable(2000, () => undefined, () => now);
  const node = table.connect(Hello.create({ nodeId: 'n1', cores: 1, memoryBytes: 1 }));
  table.accept(node, Sample.create({ seq: 1, windowMs: 1 }));
  now = 2000 - LIVENESS_SWEEP_MS;
  table.sweep();
  t.is(node.state, 'live');
  // The next sweep may come one interval later: by then the deadline has passed, not later.
  now = 2000 - LIVENESS_SWEEP_MS + 1;
  table.sweep();
  t.is(node.state, 'stale');
});

test('lookup().membership changes when a node connects, reconnects or leaves, not on samples, drains or staleness', (t) => {
  let now = 0;
  const table = new NodeTable(1000, () => undefined, () => now);
  const seen = [table.lookup().membership];
  const first = table.connect(Hello.create({ nodeId: 'n1', cores: 1, memoryBytes: 1 }));
  const connected = table.lookup().membership;
  seen.push(connected);
  table.accept(first, Sample.create({ seq: 1, windowMs: 1 }));
  table.setDrain(first, 'deploy');
  now = 5000;
  table.sweep();
  t.is(first.state, 'stale');
  t.is(table.lookup().membership, connected, 'the same records');
  const second = table.connect(Hello.create({ nodeId: 'n1', cores: 2, memoryBytes: 1 }));
  const replaced = table.lookup().membership;
  seen.push(replaced);
  table.disconnect(first);
  t.is(table.lookup().membership, replaced, 'ending a replaced stream changes nothing');
  table.disconnect(second);
  seen.push(table.lookup().membership);
  t.is(new Set(seen).size, 4, `every change is new: ${seen.join(', ')}`);
});

test("a node's latest sample is copied into one record, written over by each sample: the decoded messages are not kept", (t) => {
  const table = new NodeTable(60_000, () => undefined);
  const node = table.connect(Hello.create({ nodeId: 'n1', cores: 1, memoryBytes: 1, services: [{ name: 'web', port: 80 }, { name: 'api', port: 81 }] }));
  const decoded = (init: Parameters<typeof Sample.create>[0]): Sample => Sample.decode(Sample.encode(Sample.create(init)).finish());
  const first = decoded({ seq: 1, windowMs: 1000, cpuUtilization: 0.5, psiCpuSome: 0.1, services: [{ name: 'web', established: 5 }], namedMetrics: { in_flight: 3 } });
  table.accept(node, first);
  const record = node.sample;
  const services = record?.services;
  t.not(record as object | null, first as object);
  t.like(record, { seq: 1, windowMs: 1000, cpuUtilization: 0.5, psiCpuSome: 0.1, tcpEstablished: null, namedMetrics: { in_flight: 3 } });
  t.deepEqual(services, [{ name: 'web', established: 5 }]);

  table.accept(node, decoded({ seq: 2, windowMs: 500, cpuUtilization: 0.25, services: [{ name: 'web', established: 7 }] }));
  t.is(node.sample, record, 'the same record');
  t.is(node.sample?.services, services, 'the same services, written over');
  t.like(node.sample, { seq: 2, windowMs: 500, cpuUtilization: 0.25, psiCpuSome: null, services: [{ name: 'web', established: 7 }] });
  t.deepEqual({ ...node.sample?.namedMetrics }, {}, 'named metrics the sample no longer has are gone');
  t.is(node.samples, 2);

  table.accept(node, decoded({ seq: 3, windowMs: 500, services: [{ name: 'api', established: 1 }, { name: 'web' }] }));
  t.deepEqual(node.sample?.services, [{ name: 'api', established: 1 }, { name: 'web', established: null }], 'other services: a new list');
  t.deepEqual(services, [{ name: 'web', established: 7 }], 'the earlier list is left as it was');
});
