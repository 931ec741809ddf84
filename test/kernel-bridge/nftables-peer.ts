// A process the nftables tests start inside a network namespace (Node cannot
// switch namespaces itself). It speaks newline-delimited JSON: requests on
// stdin, one answer each on stdout, in order.
//
//   node nftables-peer.js backends PORT ADDRESS...
//     listens on every ADDRESS:PORT; each connection is greeted with the
//     address it reached ("10.77.2.3\n"), then every line received is echoed
//     back as "<address> <line>". Prints {"ready":true} once listening.
//   node nftables-peer.js client
//     {"count":N,"concurrency":K,"host":H,"port":P} → {"counts":{address:n},"errors":{code:n}}
//       N connections, K at a time, each reads the greeting and closes.
//     {"open":ID,"host":H,"port":P} → {"greeting":address}   a long-lived connection
//     {"send":ID,"line":TEXT} → {"echo":"<address> TEXT"}
//     {"close":ID} → {"closed":ID}
//   Any failure answers {"error":"…"}.
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

/** Bound on each connection attempt and exchange inside the peer. */
const PEER_WAIT_MS = 5_000;

type Request =
  | { count: number; concurrency: number; host: string; port: number }
  | { open: string; host: string; port: number }
  | { send: string; line: string }
  | { close: string };

function answer(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** A reader of lines from a socket: `next()` resolves with the next line, or rejects on close/timeout. */
function lines(socket: Socket): { next(): Promise<string> } {
  let buffered = '';
  const waiting: Array<(line: string | Error) => void> = [];
  const ready: string[] = [];
  let ended: Error | null = null;
  const deliver = (item: string | Error): void => {
    const waiter = waiting.shift();
    if (waiter !== undefined) waiter(item);
    else if (typeof item === 'string') ready.push(item);
    else ended = item;
  };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      deliver(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
    }
  });
  socket.on('close', () => deliver(new Error('connection closed')));
  socket.on('error', (error) => deliver(error));
  return {
    next() {
      const line = ready.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (ended !== null) return Promise.reject(ended);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line within ${PEER_WAIT_MS} ms`)), PEER_WAIT_MS);
        waiting.push((item) => {
          clearTimeout(timer);
          if (typeof item === 'string') resolve(item);
          else reject(item);
        });
      });
    },
  };
}

async function openConnection(host: string, port: number): Promise<{ socket: Socket; next(): Promise<string> }> {
  const socket = connect({ host, port });
  const reader = lines(socket);
  await once(socket, 'connect', { signal: AbortSignal.timeout(PEER_WAIT_MS) });
  return { socket, ...reader };
}

async function backends(port: number, addresses: readonly string[]): Promise<void> {
  await Promise.all(
    addresses.map(async (address) => {
      const server = createServer((socket) => {
        socket.on('error', () => {});
        socket.write(`${address}\n`);
        let buffered = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          buffered += chunk;
          for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
            socket.write(`${address} ${buffered.slice(0, i)}\n`);
            buffered = buffered.slice(i + 1);
          }
        });
        socket.on('end', () => socket.end());
      });
      server.listen(port, address);
      await once(server, 'listening');
    }),
  );
  answer({ ready: true });
}

async function client(): Promise<void> {
  const open = new Map<string, { socket: Socket; next(): Promise<string> }>();
  for await (const text of createInterface({ input: process.stdin })) {
    try {
      const request = JSON.parse(text) as Request;
      if ('count' in request) {
        const counts: Record<string, number> = {};
        const errors: Record<string, number> = {};
        let started = 0;
        const worker = async (): Promise<void> => {
          while (started < request.count) {
            started++;
            try {
              const connection = await openConnection(request.host, request.port);
              const greeting = await connection.next();
              counts[greeting] = (counts[greeting] ?? 0) + 1;
              connection.socket.end();
            } catch (error) {
              const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
              errors[code] = (errors[code] ?? 0) + 1;
            }
          }
        };
        await Promise.all(Array.from({ length: request.concurrency }, worker));
        answer({ counts, errors });
      } else if ('open' in request) {
        const connection = await openConnection(request.host, request.port);
        open.set(request.open, connection);
        answer({ greeting: await connection.next() });
      } else if ('send' in request) {
        const connection = open.get(request.send);
        if (connection === undefined) throw new Error(`no connection ${request.send}`);
        connection.socket.write(`${request.line}\n`);
        answer({ echo: await connection.next() });
      } else {
        open.get(request.close)?.socket.end();
        open.delete(request.close);
        answer({ closed: request.close });
      }
    } catch (error) {
      answer({ error: (error as Error).message });
    }
  }
  for (const { socket } of open.values()) socket.destroy();
}

const [role, ...args] = process.argv.slice(2);
if (role === 'backends') {
  const [port, ...addresses] = args;
  await backends(Number(port), addresses);
} else if (role === 'client') {
  await client();
} else {
  process.stderr.write(`usage: nftables-peer.js backends PORT ADDRESS... | client\n`);
  process.exit(2);
}
