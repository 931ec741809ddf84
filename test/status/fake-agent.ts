// An agent in the test process: a real gRPC stream to a real poller, whose
// samples the test chooses (the real agent's numbers follow the host's load).
import * as grpc from '@grpc/grpc-js';
import { createTelemetryClient, type SampleInit } from '@loadfeed/proto';

export interface FakeAgentOptions {
  readonly cores?: number;
  readonly services?: readonly { readonly name: string; readonly port: number }[];
}

export class FakeAgent {
  private readonly client;
  private readonly call;
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  readonly status: Promise<grpc.StatusObject>;

  constructor(port: number, readonly nodeId: string, options: FakeAgentOptions = {}) {
    // Its own connection, as each real agent has (grpc-js would otherwise
    // share one among the clients of a process, and the poller allows one
    // stream on a connection until its Hello is accepted).
    this.client = createTelemetryClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    this.call = this.client.report();
    this.call.resume(); // acks and config are of no interest; keep them from filling the window
    this.call.on('error', () => undefined);
    this.status = new Promise((resolve) => this.call.on('status', resolve));
    this.call.write({
      hello: {
        nodeId,
        hostname: `${nodeId}.test`,
        addresses: ['127.0.0.1'],
        cores: options.cores ?? 2,
        memoryBytes: 8 * 2 ** 30,
        services: (options.services ?? []).map((s) => ({ ...s })),
        agentVersion: 'test',
        intervalMs: 1000,
      },
    });
  }

  /** Send one sample; unset fields get quiet defaults. Returns its sequence number. */
  sample(values: Partial<SampleInit> = {}): number {
    this.seq += 1;
    this.call.write({
      sample: { seq: this.seq, timestampMs: Date.now(), cpuUtilization: 0.2, memUtilization: 0.3, windowMs: 1000, ...values },
    });
    return this.seq;
  }

  /** Send a sample now and then every `ms` until close(), with the values `next` gives each time. */
  keepSampling(next: () => Partial<SampleInit>, ms = 200): void {
    this.sample(next());
    this.timer = setInterval(() => this.sample(next()), ms);
  }

  /** Send a raw message (e.g. one that breaks the contract). */
  write(message: object): void {
    this.call.write(message);
  }

  /** Stop keepSampling's samples; the stream stays open, as a hung agent's does. */
  pause(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.pause();
    this.call.end();
    this.client.close();
  }
}
