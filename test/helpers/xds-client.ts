// A proxyless gRPC client, run as its own process: @grpc/grpc-js-xds resolves
// `xds:///NAME` through the bootstrap file that GRPC_XDS_BOOTSTRAP names and
// calls the echo backends (xds-fleet.ts) at a steady rate, remembering which
// backend answered each call and when it started. Commands on stdin, one JSON
// object a line: {"id":N,"from":MS,"to":MS} answers {"id":N,"counts":{...}}
// with the answers per backend of the calls started in [from, to) (epoch ms),
// failed calls counted as "error:CODE".
// Usage: node xds-client.js xds:///web CALLS_PER_SECOND
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { ECHO_PATH } from './xds-echo.js';

const KEEP_MS = 120_000;
const CALL_TIMEOUT_MS = 2_000;

const [target = '', rateText = '200'] = process.argv.slice(2);
register();
const client = new grpc.Client(target, grpc.credentials.createInsecure());
const picks: { at: number; backend: string }[] = [];
let announced = false;

function call(): void {
  const at = Date.now();
  client.makeUnaryRequest(
    ECHO_PATH,
    (b: Buffer) => b,
    (b: Buffer) => b.toString(),
    Buffer.alloc(0),
    { deadline: at + CALL_TIMEOUT_MS },
    (err: grpc.ServiceError | null, reply?: string) => {
      picks.push({ at, backend: err === null ? (reply ?? '') : `error:${err.code}` });
      if (err === null && !announced) {
        announced = true;
        process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
      }
      while (picks.length > 0 && (picks[0]?.at ?? at) < at - KEEP_MS) picks.shift();
    },
  );
}

const timer = setInterval(call, 1000 / Number(rateText));
createInterface({ input: process.stdin }).on('line', (line) => {
  const { id, from, to } = JSON.parse(line) as { id: number; from: number; to: number };
  const counts: Record<string, number> = {};
  for (const p of picks) if (p.at >= from && p.at < to) counts[p.backend] = (counts[p.backend] ?? 0) + 1;
  process.stdout.write(`${JSON.stringify({ id, counts })}\n`);
}).on('close', () => {
  clearInterval(timer);
  client.close();
  process.exit(0);
});
