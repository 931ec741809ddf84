// Client channel security from PEM contents, one way for every loadfeed gRPC
// client (the agent to its pollers, the agent and the poller to ORCA servers).
import { grpc } from './grpc.js';

/** What a client channel is made with. */
export interface ClientChannel {
  readonly credentials: grpc.ChannelCredentials;
  readonly options: grpc.ChannelOptions;
}

export const PLAINTEXT_CHANNEL: ClientChannel = { credentials: grpc.credentials.createInsecure(), options: {} };

export interface ClientTls {
  /** CA that signs the server's certificate (PEM). */
  readonly ca: Buffer;
  /** Client certificate chain and key for mutual TLS (PEM), both or neither. */
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
  /** Name to expect in the server's certificate when it differs from the host dialled (e.g. dialling an IP). */
  readonly serverName: string | null;
}

export function tlsChannel(t: ClientTls): ClientChannel {
  return {
    credentials: grpc.credentials.createSsl(t.ca, t.key, t.cert),
    options: t.serverName === null ? {} : { 'grpc.ssl_target_name_override': t.serverName, 'grpc.default_authority': t.serverName },
  };
}
