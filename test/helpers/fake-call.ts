// A stand-in for grpc-js's server call: what Ingest uses of it, nothing more,
// for unit tests that drive the ingest path message by message.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { TelemetryReportCall } from '@loadfeed/proto';
import { Ingest, NodeTable, type IngestLimits } from '@loadfeed/poller';

export class FakeCall extends EventEmitter {
  readonly written: unknown[] = [];
  status: { code: number; details: string } | null = null;
  ended = false;
  readonly metadata = new grpc.Metadata();
  constructor() {
    super();
    // Ingest reports refusals by emitting 'error' with a status, as grpc-js expects.
    this.on('error', (e: { code: number; details: string }) => {
      this.status = e;
    });
  }
  write(m: unknown): boolean {
    this.written.push(m);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  getPeer(): string {
    return '127.0.0.1:40000';
  }
  getAuthContext(): ReturnType<TelemetryReportCall['getAuthContext']> {
    return {};
  }
}

/** An Ingest over a fresh node table; `open()` starts a stream on a FakeCall. */
export function fakeIngest(limits: IngestLimits) {
  const table = new NodeTable(2000, () => undefined);
  const ingest = new Ingest({
    table,
    auth: { tokens: new Map(), mutualTls: false, allowPlaintext: false },
    limits,
    intervalMs: () => 1000,
    log: () => undefined,
  });
  const open = (): FakeCall => {
    const call = new FakeCall();
    ingest.service.report(call as unknown as TelemetryReportCall);
    return call;
  };
  return { table, ingest, open };
}
