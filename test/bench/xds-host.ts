/**
 * The serving side of bench:xds, alone in a process: `--mode xds` is the xds
 * engine, `--mode bare` the floor it is compared with: a grpc-js server that
 * encodes the same load assignments once per tick and writes them to every
 * stream, with no subscriptions, versions or ACK bookkeeping. Every second
 * (on "start"), every endpoint gets a new weight. Prints "ready PORT"; on
 * "streams" prints the number of streams that sent a request, on "report"
 * one JSON line: CPU used since "start" and each tick's decision time.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { ADS_STREAM_PATH, createXdsEngine, ENDPOINT_TYPE, xdsLoadAssignment, xdsTypes, type EngineOp } from '@loadfeed/kernel-bridge';

const { values } = parseArgs({ options: { mode: { type: 'string' }, services: { type: 'string' }, endpoints: { type: 'string' } } });
const mode = values.mode;
const services = Number(values.services);
const perService = Number(values.endpoints) / services;
const TICK_MS = 1_000;

const serviceName = (s: number): string => `svc-${s}`;
const destination = (s: number, i: number): string => `10.${s >> 8}.${s & 255}.${i + 1}:8080`;
/** A new weight for every endpoint each tick, never the one it had. */
const weightAt = (tick: number, s: number, i: number): number => 1 + ((tick * 7919 + s * 104_729 + i * 31) % 1000);

const ticks: { version: string; decidedAt: number; applyMs: number }[] = [];
const now = (): number => performance.timeOrigin + performance.now();

interface Host {
  readonly port: number;
  streams(): number;
  tick(tick: number): Promise<string>;
}

async function xdsHost(): Promise<Host> {
  const engine = await createXdsEngine({ listen: '127.0.0.1:0', credentials: grpc.ServerCredentials.createInsecure(), stateFile: null }).listening();
  const ops: EngineOp[] = [];
  for (let s = 0; s < services; s++) {
    ops.push({ op: 'add-service', service: { address: serviceName(s) } });
    for (let i = 0; i < perService; i++) ops.push({ op: 'add-destination', service: serviceName(s), destination: destination(s, i), weight: weightAt(0, s, i) });
  }
  await engine.apply(ops);
  return {
    port: engine.boundAddress().port,
    streams: () => engine.clients().length,
    tick: async (tick) => {
      const batch: EngineOp[] = [];
      for (let s = 0; s < services; s++) for (let i = 0; i < perService; i++) batch.push({ op: 'set-weight', service: serviceName(s), destination: destination(s, i), weight: weightAt(tick, s, i) });
      await engine.apply(batch);
      return String(engine.counts().version);
    },
  };
}

async function bareHost(): Promise<Host> {
  const types = xdsTypes();
  const calls = new Set<grpc.ServerDuplexStream<Buffer, Buffer>>();
  const server = new grpc.Server();
  server.addService(
    {
      StreamAggregatedResources: {
        path: ADS_STREAM_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.once('data', () => calls.add(call));
        call.on('data', () => undefined);
        const drop = (): void => void calls.delete(call);
        call.on('end', drop).on('cancelled', drop).on('error', drop);
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  let nonce = 0;
  return {
    port,
    streams: () => calls.size,
    tick: async (tick) => {
      const resources = [];
      for (let s = 0; s < services; s++) {
        const endpoints = [];
        for (let i = 0; i < perService; i++) {
          const [host = '', p = '0'] = destination(s, i).split(':');
          endpoints.push({ host, port: Number(p), weight: weightAt(tick, s, i) });
        }
        const cla = types.loadAssignment;
        resources.push({ type_url: ENDPOINT_TYPE, value: cla.encode(cla.fromObject(xdsLoadAssignment(serviceName(s), endpoints))).finish() });
      }
      const body = types.discoveryResponse.encode({ resources }).finish();
      const version = String(tick);
      for (const call of calls) {
        const header = types.discoveryResponse.encode({ versionInfo: version, typeUrl: ENDPOINT_TYPE, nonce: String(++nonce) }).finish();
        call.write(Buffer.concat([header, body]));
      }
      return version;
    },
  };
}

const host = mode === 'xds' ? await xdsHost() : await bareHost();
let cpuAtStart = process.cpuUsage();
let timer: NodeJS.Timeout | null = null;
let tick = 0;
process.stdout.write(`ready ${host.port}\n`);
createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line === 'streams') process.stdout.write(`${host.streams()}\n`);
    if (line === 'start') {
      cpuAtStart = process.cpuUsage();
      timer = setInterval(() => {
        const decidedAt = now();
        void host.tick(++tick).then((version) => ticks.push({ version, decidedAt, applyMs: now() - decidedAt }));
      }, TICK_MS);
    }
    if (line === 'report') {
      const cpu = process.cpuUsage(cpuAtStart);
      process.stdout.write(`${JSON.stringify({ cpuUs: cpu.user + cpu.system, ticks })}\n`);
    }
  })
  .on('close', () => {
    if (timer !== null) clearInterval(timer);
    process.exit(0);
  });
