// partialMessage reads grpc-js internals (its message decoder's state),
// because no public API tells a handler that a stream ended inside a message
// or that grpc-js refused one over the size limit. This drives a real grpc-js
// server with raw HTTP/2 frames and fails, naming the installed grpc-js, when
// that state is no longer where partialMessage reads it.
import test from 'ava';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { AgentMessage, TELEMETRY_REPORT_PATH, telemetryService, type TelemetryReportCall } from '@loadfeed/proto';
import { partialMessage, type PartialMessage } from '@loadfeed/poller';

const GRPC_JS = (createRequire(import.meta.url)('@grpc/grpc-js/package.json') as { version: string }).version;
const MAX = 1024;

/** Where the decoder stood when the call ended ('end') or was cancelled, after sending `chunks` and ending our side. */
async function decoderAtEnd(chunks: Buffer[]): Promise<{ event: string; at: PartialMessage | null | undefined }> {
  let seen: (r: { event: string; at: PartialMessage | null | undefined }) => void = () => undefined;
  const result = new Promise<{ event: string; at: PartialMessage | null | undefined }>((resolve) => (seen = resolve));
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX });
  server.addService(telemetryService, {
    report: (call: TelemetryReportCall) => {
      call.on('data', () => undefined);
      call.on('end', () => {
        seen({ event: 'end', at: partialMessage(call) });
        call.end();
      });
      call.on('cancelled', () => seen({ event: 'cancelled', at: partialMessage(call) }));
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  try {
    const stream = session.request({ ':method': 'POST', ':path': TELEMETRY_REPORT_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    stream.on('error', () => undefined);
    stream.resume();
    for (const c of chunks) stream.write(c);
    stream.end();
    await once(stream, 'close');
    return await result;
  } finally {
    session.destroy();
    server.forceShutdown();
  }
}

function prefix(length: number): Buffer {
  const out = Buffer.alloc(5);
  out.writeUInt32BE(length, 1);
  return out;
}

const changed = `grpc-js ${GRPC_JS} keeps its decoder state elsewhere: truncated and oversize messages would go uncounted (poller/src/ingest/grpc-decoder.ts)`;

test('between messages: a stream ended after a whole message', async (t) => {
  const body = AgentMessage.encode({ hello: { nodeId: 'n1', cores: 1, memoryBytes: 1 } }).finish();
  const { event, at } = await decoderAtEnd([Buffer.concat([prefix(body.length), body])]);
  t.is(event, 'end');
  t.not(at, undefined, changed);
  t.is(at, null);
});

test('inside the 5-byte prefix', async (t) => {
  const { event, at } = await decoderAtEnd([Buffer.from([0, 0, 0])]);
  t.is(event, 'end');
  t.not(at, undefined, changed);
  t.deepEqual(at, { announced: null, received: 3 });
});

test('inside a message body: received of announced', async (t) => {
  const { event, at } = await decoderAtEnd([prefix(100), Buffer.alloc(40)]);
  t.is(event, 'end');
  t.not(at, undefined, changed);
  t.deepEqual(at, { announced: 100, received: 40 });
});

test('a prefix over grpc.max_receive_message_length: the call is cancelled and the announced length is readable', async (t) => {
  const { event, at } = await decoderAtEnd([prefix(100 * MAX), Buffer.alloc(10)]);
  t.is(event, 'cancelled');
  t.not(at, undefined, changed);
  t.deepEqual(at, { announced: 100 * MAX, received: 0 });
});
