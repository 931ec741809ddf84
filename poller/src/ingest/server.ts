// The agents' gRPC endpoint: grpc-js serves the Telemetry service on
// connections this module accepts itself (see start), so the listening
// socket's backlog and errors are ours.
import * as grpc from '@grpc/grpc-js';
import { createServer, type Socket } from 'node:net';
import { telemetryService } from '@loadfeed/proto';
import type { Logger } from 'pino';
import type { AuthOptions } from './auth.js';
import type { Ingest } from './ingest.js';
import { listenOn } from './listen.js';

/**
 * Server pings every agent connection this often (and waits this long for
 * the answer) to close the connections of hosts that vanished without a
 * FIN. It quiesces nothing: samples prove an agent alive, and the stale
 * deadline quiesces a silent one within `liveness.staleAfter`. A ping costs
 * about as much as a sample: every 10 s it was 3 % of a core at 10,000
 * agents (bench:poller-scale), for freeing a dead host's socket sooner.
 */
export const SERVER_KEEPALIVE_MS = 60_000;
export const SERVER_KEEPALIVE_TIMEOUT_MS = 5_000;
/**
 * On stop, calls get this long to end before their connections are closed.
 * Agents' streams never end by themselves: without a bound, a stop waited
 * until a keepalive ping happened to close each connection.
 */
export const STOP_GRACE_MS = 1_000;
/** Connections the kernel may queue for the poller to accept (capped by net.core.somaxconn, 4096 on current kernels). */
export const LISTEN_BACKLOG = 4096;

export interface PollerSecurity {
  readonly credentials: grpc.ServerCredentials;
  readonly auth: AuthOptions;
}

export class AgentServer {
  private readonly server: grpc.Server;
  /** Accepts agents' connections for `server` (see start). */
  private readonly listener = createServer();

  constructor(
    private readonly ingest: Ingest,
    private readonly credentials: grpc.ServerCredentials,
    private readonly logger: Logger,
  ) {
    this.server = new grpc.Server({
      'grpc.keepalive_time_ms': SERVER_KEEPALIVE_MS,
      'grpc.keepalive_timeout_ms': SERVER_KEEPALIVE_TIMEOUT_MS,
      // grpc-js refuses a larger message from its length prefix, before holding it.
      'grpc.max_receive_message_length': ingest.limits.maxMessageBytes,
      // HTTP/2 refuses streams beyond this itself (REFUSED_STREAM), before any
      // data: a stream the connection guard refuses still holds what its peer
      // sent (up to its flow-control window) until the connection closes.
      'grpc.max_concurrent_streams': ingest.limits.maxStreamsPerConnection,
    });
    this.server.addService(telemetryService, ingest.service);
  }

  /** Listen on `address` (IP:PORT, port 0 picks one); resolves with the bound port. */
  async start(address: string): Promise<number> {
    // Connections are accepted here and handed to grpc-js, which listens with
    // Node's default backlog of 511: after a poller restart every agent
    // reconnects at once, and while a cycle or GC holds the loop the kernel
    // dropped tens of thousands of SYNs (10,000 agents), each retried only
    // after 1, 3, 7 … s.
    const injector = this.server.createConnectionInjector(this.credentials);
    // Connections beyond the bounds before authentication are closed here (Ingest.admit).
    this.listener.on('connection', (socket: Socket) => {
      if (this.ingest.admit(socket)) injector.injectConnection(socket);
    });
    const { port } = await listenOn(this.listener, '--listen', address, { backlog: LISTEN_BACKLOG });
    // accept() failing (EMFILE) must not end the poller; the connections already served go on.
    this.listener.on('error', (err) => this.logger.error({ err }, 'accepting agent connections failed'));
    return port;
  }

  /** Stop accepting, give open calls STOP_GRACE_MS to finish, then end the rest. */
  async stop(): Promise<void> {
    this.listener.close();
    this.ingest.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.server.tryShutdown(() => resolve())),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, STOP_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    this.server.forceShutdown();
  }
}
