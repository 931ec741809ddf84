/**
 * Simulated xDS clients for bench:xds: `--count` ADS streams, each on its own
 * HTTP/2 connection as separate proxies or gRPC processes would open them.
 * Each subscribes to every cluster (wildcard) and to the load assignments of
 * svc-0 … svc-(S-1), and ACKs every response as a real client does. The wire
 * is gRPC's (length-prefixed protobuf on a POST to the ADS path), written with
 * node:http2: grpc-js's client machinery would cost these processes more CPU
 * than the server they measure, on a machine where both share two cores.
 * Resources are not decoded (a client's own cost, not the server's).
 * Prints "ready N" once every stream is open; on "report" prints one JSON
 * line: per load-assignment version, how many streams received it and when
 * the first and the last did (epoch ms). Exits when stdin closes.
 */
import http2 from 'node:http2';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ADS_STREAM_PATH, CLUSTER_TYPE, ENDPOINT_TYPE, xdsTypes } from '@loadfeed/kernel-bridge';

const { values } = parseArgs({ options: { target: { type: 'string' }, count: { type: 'string' }, services: { type: 'string' }, 'first-id': { type: 'string', default: '0' } } });
const count = Number(values.count);
const firstId = Number(values['first-id']);
const names = Array.from({ length: Number(values.services) }, (_, s) => `svc-${s}`);
/** Connections opened per 100 ms, so the connect storm does not overflow the listen backlog. */
const OPEN_BATCH = 25;

const types = xdsTypes();
const received = new Map<string, { n: number; first: number; last: number }>();
const now = (): number => performance.timeOrigin + performance.now();
const sessions: http2.ClientHttp2Session[] = [];

function frame(request: Record<string, unknown>): Buffer {
  const body = types.discoveryRequest.encode(types.discoveryRequest.fromObject(request)).finish();
  const header = Buffer.alloc(5);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

function open(id: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${values.target ?? ''}`);
    sessions.push(session);
    session.once('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': ADS_STREAM_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    stream.write(frame({ node: { id: `bench-client-${id}` }, typeUrl: CLUSTER_TYPE }));
    stream.write(frame({ typeUrl: ENDPOINT_TYPE, resourceNames: names }));
    let pending: Buffer = Buffer.alloc(0);
    stream.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 5) {
        const length = pending.readUInt32BE(1);
        if (pending.length < 5 + length) break;
        const message = types.discoveryResponse.decode(pending.subarray(5, 5 + length)) as unknown as { versionInfo: string; typeUrl: string; nonce: string };
        pending = pending.subarray(5 + length);
        if (message.typeUrl === ENDPOINT_TYPE) {
          const at = now();
          const r = received.get(message.versionInfo);
          if (r === undefined) received.set(message.versionInfo, { n: 1, first: at, last: at });
          else {
            r.n++;
            r.last = Math.max(r.last, at);
          }
        }
        stream.write(
          frame({ typeUrl: message.typeUrl, versionInfo: message.versionInfo, responseNonce: message.nonce, resourceNames: message.typeUrl === ENDPOINT_TYPE ? names : [] }),
        );
      }
    });
    stream.on('error', () => undefined);
    session.once('connect', () => resolve());
  });
}

for (let i = 0; i < count; i += OPEN_BATCH) {
  await Promise.all(Array.from({ length: Math.min(OPEN_BATCH, count - i) }, (_, k) => open(firstId + i + k)));
  await new Promise((r) => setTimeout(r, 100));
}
process.stdout.write(`ready ${count}\n`);
createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line === 'report') process.stdout.write(`${JSON.stringify(Object.fromEntries(received))}\n`);
  })
  .on('close', () => {
    for (const s of sessions) s.destroy();
    process.exit(0);
  });
