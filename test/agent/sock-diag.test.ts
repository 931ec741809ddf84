import test from 'ava';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RawNetlinkSocket } from 'netlink';
import {
  AgentError,
  SockDiagErrno,
  createEstablishedCounter,
  createSampler,
  decodeSockDiagReply,
  encodeSockDiagRequest,
  encodeTcpDiagRequest,
  MAX_FILTERED_PORTS,
  type DatagramSocket,
} from '@loadfeed/agent';
import { sockDiagFixtures } from './fixture-tree.js';
import { openConnections } from './tcp-connections.js';

interface Capture {
  readonly seq: number;
  readonly port: number;
  readonly connections: number;
}
const captures = JSON.parse(readFileSync(path.join(sockDiagFixtures, 'capture.json'), 'utf8')) as Record<'inet' | 'inet6', Capture>;
const reply = (family: 'inet' | 'inet6'): Buffer => readFileSync(path.join(sockDiagFixtures, `${family}-established.bin`));
const MESSAGE_LEN = 124; // nlmsghdr + inet_diag_msg + attributes, as captured
const DONE_LEN = 20;

function decodeAll(bytes: Uint8Array, seq: number): { ports: number[]; done: boolean } {
  const ports: number[] = [];
  const done = decodeSockDiagReply(bytes, seq, (port) => ports.push(port));
  return { ports, done };
}

for (const family of ['inet', 'inet6'] as const) {
  test(`decoder: captured ${family} dump lists the server's accepted connections by local port`, (t) => {
    const { seq, port, connections } = captures[family];
    const bytes = reply(family);
    const { ports, done } = decodeAll(bytes, seq);
    t.true(done);
    // The capture holds the server's accepted sockets and the clients' sockets (ephemeral local ports).
    t.is(ports.length, (bytes.length - DONE_LEN) / MESSAGE_LEN);
    t.is(ports.filter((p) => p === port).length, connections);
    t.is(ports.filter((p) => p !== port).length, connections);
  });
}

test('decoder: a dump split over datagrams is done only at NLMSG_DONE', (t) => {
  const { seq, port } = captures.inet;
  const bytes = reply('inet');
  const first = decodeAll(bytes.subarray(0, bytes.length - DONE_LEN), seq);
  const last = decodeAll(bytes.subarray(bytes.length - DONE_LEN), seq);
  t.false(first.done);
  t.true(last.done);
  t.deepEqual(last.ports, []);
  t.true(first.ports.includes(port));
});

test('decoder: messages of another sequence number (an abandoned dump) are skipped', (t) => {
  t.deepEqual(decodeAll(reply('inet'), captures.inet.seq + 1000), { ports: [], done: false });
});

test('decoder: truncated or inconsistent buffers are parse errors', (t) => {
  const bytes = reply('inet');
  const { seq } = captures.inet;
  t.throws(() => decodeAll(bytes.subarray(0, 10), seq), { instanceOf: AgentError, message: /truncated header at byte 0/ });
  t.throws(() => decodeAll(bytes.subarray(0, MESSAGE_LEN - 4), seq), { instanceOf: AgentError, message: /bad message length 124 at byte 0 of 120/ });
  const shortMessage = Buffer.from(bytes.subarray(0, MESSAGE_LEN));
  shortMessage.writeUInt32LE(40, 0); // claims to be a SOCK_DIAG message of 40 bytes: no room for inet_diag_msg
  t.throws(() => decodeAll(shortMessage.subarray(0, 40), seq), { instanceOf: AgentError, message: /truncated inet_diag_msg/ });
  const tooShort = Buffer.from(bytes.subarray(0, MESSAGE_LEN));
  tooShort.writeUInt32LE(8, 0);
  const err = t.throws(() => decodeAll(tooShort, seq), { instanceOf: AgentError, message: /bad message length 8/ });
  t.is(err?.code, 'AGENT_PROC_PARSE');
});

test('decoder: an NLMSG_ERROR reply throws its errno', (t) => {
  const error = Buffer.alloc(36);
  error.writeUInt32LE(36, 0); // nlmsghdr
  error.writeUInt16LE(2, 4); // NLMSG_ERROR
  error.writeUInt32LE(7, 8); // seq
  error.writeInt32LE(-22, 16); // -EINVAL, then the offending request's header
  const err = t.throws(() => decodeAll(error, 7), { instanceOf: SockDiagErrno, message: /EINVAL \(22\)/ });
  t.is(err?.errno, 22);
  t.is(err?.code, 'AGENT_SOCK_DIAG');
});

test('request: nlmsghdr + inet_diag_req_v2 as in linux/inet_diag.h, plus the port filter attribute', (t) => {
  const plain = Buffer.from(encodeSockDiagRequest(2, 9, []));
  t.is(plain.length, 72);
  t.is(plain.readUInt32LE(0), 72); // nlmsg_len
  t.is(plain.readUInt16LE(4), 20); // SOCK_DIAG_BY_FAMILY
  t.is(plain.readUInt16LE(6), 0x301); // NLM_F_REQUEST | NLM_F_DUMP
  t.is(plain.readUInt32LE(8), 9); // seq
  t.deepEqual([plain[16], plain[17]], [2, 6]); // AF_INET, IPPROTO_TCP
  t.is(plain.readUInt32LE(20), 1 << 1); // TCPF_ESTABLISHED
  const filtered = Buffer.from(encodeSockDiagRequest(10, 9, [80, 443]));
  // 2 ports: S_GE+port, S_LE+port, JMP, S_GE+port, S_LE+port = 36 bytes of bytecode.
  t.is(filtered.length, 72 + 4 + 36);
  t.is(filtered.readUInt32LE(0), filtered.length);
  t.is(filtered[16], 10);
  t.is(filtered.readUInt16LE(72), 4 + 36); // nla_len
  t.is(filtered.readUInt16LE(74), 1); // INET_DIAG_REQ_BYTECODE
  // Too many ports for one attribute: no filter (the counter still counts only configured ports).
  t.is(encodeSockDiagRequest(2, 9, Array.from({ length: MAX_FILTERED_PORTS + 1 }, (_, i) => i + 1)).length, 72);
});

/** The real SOCK_DIAG socket, with a spy that decodes every reply the kernel sends. */
function tappedSockDiagSocket(seen: number[]): DatagramSocket {
  const real = new RawNetlinkSocket(4);
  let seq = -1;
  real.on('message', (datagram) => decodeSockDiagReply(datagram, seq, (port) => seen.push(port)));
  const send = real.send.bind(real);
  real.send = (message, options, callback) => {
    const first = Array.isArray(message) ? message[0] : message;
    if (first !== undefined) seq = Buffer.from(first.buffer, first.byteOffset, first.byteLength).readUInt32LE(8);
    send(message, options, callback);
  };
  return real;
}

test('live: the kernel accepts the port filter and returns only sockets on the configured ports, IPv4 and IPv6', async (t) => {
  const [a, b, other, a6] = await Promise.all([
    openConnections('127.0.0.1', 3),
    openConnections('127.0.0.1', 2),
    openConnections('127.0.0.1', 4),
    openConnections('::1', 2),
  ]);
  t.teardown(() => Promise.all([a, b, other, a6].map((c) => c.close())));
  const errors: AgentError[] = [];
  const seen: number[] = [];
  const counter = createEstablishedCounter([a.port, b.port, a6.port], (e) => errors.push(e), { openSocket: () => tappedSockDiagSocket(seen) });
  t.teardown(() => counter.close());
  const counts = await counter.count();
  t.deepEqual(errors, []);
  t.deepEqual(counts, new Map([[a.port, 3], [b.port, 2], [a6.port, 2]].sort((x, y) => (x[0] ?? 0) - (y[0] ?? 0)) as [number, number][]));
  // The kernel sent nothing else: not `other`'s connections, not the clients' ephemeral ends.
  t.deepEqual(seen.sort((x, y) => x - y), [...Array(3).fill(a.port), ...Array(2).fill(b.port), ...Array(2).fill(a6.port)].sort((x, y) => x - y));
});

test('live: the sampler counts exactly N established connections on the service port, then 0 after they close', async (t) => {
  const N = 5;
  const conns = await openConnections('127.0.0.1', N);
  t.teardown(() => conns.close());
  const errors: AgentError[] = [];
  const sampler = await createSampler({
    scope: { kind: 'host' },
    procRoot: '/proc',
    sysRoot: '/sys',
    services: [{ name: 'web', port: conns.port }],
    onError: (e) => errors.push(e),
    // Exact counts on every sample: no CPU budget between dumps (sock-diag-budget.test.ts covers that).
    dumpBudget: null,
  });
  t.teardown(() => sampler.close());
  t.deepEqual((await sampler.sample()).services, [{ name: 'web', established: N }]);
  await conns.closeConnections();
  t.deepEqual((await sampler.sample()).services, [{ name: 'web', established: 0 }]);
  t.deepEqual(errors, []);
});

/** A fake SOCK_DIAG peer: records each request and answers with the datagrams `answer` returns. */
function fakeKernel(answer: (request: Buffer) => Buffer[]): DatagramSocket & { readonly requests: Buffer[] } {
  const events = new EventEmitter();
  const requests: Buffer[] = [];
  return {
    requests,
    send(message, _options, callback) {
      const request = Buffer.from(message);
      requests.push(request);
      callback();
      setImmediate(() => {
        for (const datagram of answer(request)) events.emit('message', datagram);
      });
    },
    on: events.on.bind(events) as DatagramSocket['on'],
    ref() {},
    unref() {},
    close() {},
  };
}

/** The captured reply re-addressed to the request's sequence number. */
function capturedReplyFor(request: Buffer, family: 'inet' | 'inet6'): Buffer[] {
  const bytes = Buffer.from(reply(family));
  for (let at = 0; at < bytes.length; at += bytes.readUInt32LE(at)) bytes.writeUInt32LE(request.readUInt32LE(8), at + 8);
  return [bytes];
}

function errorReply(request: Buffer, errno: number): Buffer[] {
  const error = Buffer.alloc(36);
  error.writeUInt32LE(36, 0);
  error.writeUInt16LE(2, 4);
  error.writeUInt32LE(request.readUInt32LE(8), 8);
  error.writeInt32LE(-errno, 16);
  request.copy(error, 20, 0, 16);
  return [error];
}

test('no SOCK_DIAG socket (netlink blocked): counts are null, not 0, and the error is reported once', async (t) => {
  const errors: AgentError[] = [];
  const counter = createEstablishedCounter([80], (e) => errors.push(e), {
    openSocket: () => {
      throw Object.assign(new Error('socket: Operation not permitted'), { code: 'EPERM' });
    },
  });
  t.is(await counter.count(), null);
  t.is(await counter.count(), null);
  t.is(errors.length, 1);
  t.is(errors[0]?.code, 'AGENT_SOCK_DIAG');
  t.regex(errors[0]?.message ?? '', /cannot open a NETLINK_SOCK_DIAG socket: socket: Operation not permitted/);
  counter.close();
});

test('fake kernel: one TCPDIAG_GETSOCK dump covers IPv4 and IPv6; a failing dump is null and reported once per run', async (t) => {
  const { port } = captures.inet;
  let failWith: number | null = 1; // EPERM
  const kernel = fakeKernel((request) => (failWith !== null ? errorReply(request, failWith) : capturedReplyFor(request, 'inet')));
  const errors: AgentError[] = [];
  const counter = createEstablishedCounter([port], (e) => errors.push(e), { openSocket: () => kernel });
  t.is(await counter.count(), null);
  t.is(await counter.count(), null);
  t.is(errors.length, 1);
  t.is(errors[0]?.code, 'AGENT_SOCK_DIAG');
  t.regex(errors[0]?.message ?? '', /EPERM \(1\)/);
  failWith = null;
  t.deepEqual(await counter.count(), new Map([[port, captures.inet.connections]]));
  failWith = 16; // EBUSY
  t.is(await counter.count(), null);
  t.is(errors.length, 2);
  // EPERM and EBUSY are failures of this dump, not a kernel without the request: it stays one dump per count.
  const kinds = kernel.requests.map((r) => ({ type: r.readUInt16LE(4), flags: r.readUInt16LE(6), length: r.length }));
  t.deepEqual(kinds, Array(4).fill({ type: 18, flags: 0x301, length: 16 + 60 + 4 + 16 }));
  t.is(kernel.requests[0]?.readUInt32LE(16 + 52), 1 << 1, 'idiag_states: TCPF_ESTABLISHED');
  t.is(new Set(kernel.requests.map((r) => r.readUInt32LE(8))).size, kernel.requests.length, 'every dump has its own sequence number');
  counter.close();
});

test('fake kernel: a kernel refusing TCPDIAG_GETSOCK (EINVAL) gets SOCK_DIAG_BY_FAMILY dumps of IPv4 then IPv6 from then on, without an error', async (t) => {
  const { port, connections } = captures.inet;
  const kernel = fakeKernel((request) =>
    request.readUInt16LE(4) === 18 ? errorReply(request, 22) : capturedReplyFor(request, request[16] === 2 ? 'inet' : 'inet6'),
  );
  const errors: AgentError[] = [];
  const counter = createEstablishedCounter([port], (e) => errors.push(e), { openSocket: () => kernel });
  // The IPv6 capture's server port differs, so only the IPv4 connections count here.
  t.deepEqual(await counter.count(), new Map([[port, connections]]));
  t.deepEqual(await counter.count(), new Map([[port, connections]]));
  t.deepEqual(errors, []);
  const kinds = kernel.requests.map((r) => ({ type: r.readUInt16LE(4), flags: r.readUInt16LE(6), family: r[16], protocol: r[17] }));
  const v4 = { type: 20, flags: 0x301, family: 2, protocol: 6 };
  const v6 = { type: 20, flags: 0x301, family: 10, protocol: 6 };
  t.deepEqual(kinds, [{ type: 18, flags: 0x301, family: 0, protocol: 0 }, v4, v6, v4, v6]);
  counter.close();
});

test('decoder: replies to TCPDIAG_GETSOCK (type 18) count like SOCK_DIAG_BY_FAMILY ones', (t) => {
  const { seq, port, connections } = captures.inet;
  const bytes = Buffer.from(reply('inet'));
  for (let at = 0; at < bytes.length; at += bytes.readUInt32LE(at)) if (bytes.readUInt16LE(at + 4) === 20) bytes.writeUInt16LE(18, at + 4);
  const { ports, done } = decodeAll(bytes, seq);
  t.true(done);
  t.is(ports.filter((p) => p === port).length, connections);
});

test('request: TCPDIAG_GETSOCK is nlmsghdr + inet_diag_req (60 bytes) with the same port filter', (t) => {
  const r = Buffer.from(encodeTcpDiagRequest(9, [80, 443]));
  t.is(r.length, 16 + 60 + 4 + 36);
  t.is(r.readUInt32LE(0), r.length);
  t.is(r.readUInt16LE(4), 18);
  t.is(r.readUInt16LE(6), 0x301);
  t.is(r.readUInt32LE(8), 9);
  t.is(r[16], 0, 'idiag_family: ignored, both families');
  t.is(r.readUInt32LE(16 + 52), 1 << 1);
  t.is(r.readUInt16LE(76), 4 + 36);
  t.is(r.readUInt16LE(78), 1);
  t.deepEqual(r.subarray(80), Buffer.from(encodeSockDiagRequest(2, 9, [80, 443])).subarray(76));
});

test('fake kernel: ENOENT for IPv6 (a kernel without IPv6) counts IPv4 alone, without an error', async (t) => {
  const { port, connections } = captures.inet;
  const kernel = fakeKernel((request) => (request[16] === 2 ? capturedReplyFor(request, 'inet') : errorReply(request, 2)));
  const errors: AgentError[] = [];
  const counter = createEstablishedCounter([port], (e) => errors.push(e), { openSocket: () => kernel });
  t.deepEqual(await counter.count(), new Map([[port, connections]]));
  t.deepEqual(errors, []);
  counter.close();
});

test('close() ends the socket: later counts are null', async (t) => {
  const counter = createEstablishedCounter([1], () => t.fail('no error expected'));
  t.true((await counter.count()) instanceof Map);
  counter.close();
  t.is(await counter.count(), null);
});
