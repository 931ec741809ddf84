// A proxyless gRPC client, run as its own process: @grpc/grpc-js-xds resolves
// `xds:///NAME` through the bootstrap file that GRPC_XDS_BOOTSTRAP names and
// calls the echo backends (xds-fleet.ts) at a steady rate, remembering which
// backend answered each call and when it started. Commands on stdin, one JSON
// object a line: {"id":N,"from":MS,"count":C} answers {"id":N,"counts":{...}}
// as soon as C calls started at or after `from` (epoch ms) have finished: the
// answers of those C calls per backend, failed calls counted as "error:CODE".
// Counting calls rather than time keeps a starved client (a loaded machine)
// from answering with too few picks to judge.
// Usage: node xds-client.js xds:///web CALLS_PER_SECOND
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { ECHO_PATH } from './xds-echo.js';

const KEEP_MS = 30_000;
// Long: a call is judged by where it went; a loaded machine must not turn it into DEADLINE_EXCEEDED.
const CALL_TIMEOUT_MS = 15_000;

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
      answer();
    },
  );
}

interface Question {
  readonly id: number;
  readonly from: number;
  readonly count: number;
}
let questions: Question[] = [];

function answer(): void {
  questions = questions.filter((q) => {
    const since = picks.filter((p) => p.at >= q.from);
    if (since.length < q.count) return true;
    const counts: Record<string, number> = {};
    for (const p of since.slice(0, q.count)) counts[p.backend] = (counts[p.backend] ?? 0) + 1;
    process.stdout.write(`${JSON.stringify({ id: q.id, counts })}\n`);
    return false;
  });
}

const timer = setInterval(call, 1000 / Number(rateText));
createInterface({ input: process.stdin })
  .on('line', (line) => {
    questions.push(JSON.parse(line) as Question);
    answer();
  })
  .on('close', () => {
    clearInterval(timer);
    client.close();
    process.exit(0);
  });
