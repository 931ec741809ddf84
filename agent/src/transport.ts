// Channel credentials and call metadata for the agent's streams, from the
// files named in its configuration (read once at start).
import { readFileSync } from 'node:fs';
import { grpc } from '@loadfeed/proto';
import type { TransportConfig } from './config.js';
import { AgentError } from './errors.js';

export interface Transport {
  readonly credentials: grpc.ChannelCredentials;
  readonly channelOptions: grpc.ChannelOptions;
  /** Per-call metadata: the bearer token, when there is one. */
  metadata(): grpc.Metadata;
}

export function loadTransport(t: TransportConfig): Transport {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new AgentError('AGENT_CONFIG_INVALID', `${what} ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  const credentials =
    t.tlsCa === null
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(
          read('tlsCa', t.tlsCa),
          t.tlsKey === null ? null : read('tlsKey', t.tlsKey),
          t.tlsCert === null ? null : read('tlsCert', t.tlsCert),
        );
  const token = t.tokenFile === null ? null : read('tokenFile', t.tokenFile).toString('utf8').trim();
  if (token !== null && !/^[\x21-\x7e]{16,4096}$/.test(token)) {
    throw new AgentError('AGENT_CONFIG_INVALID', `tokenFile ${t.tokenFile}: the token must be 16..4096 printable characters without spaces`);
  }
  return {
    credentials,
    channelOptions: t.tlsServerName === null ? {} : { 'grpc.ssl_target_name_override': t.tlsServerName, 'grpc.default_authority': t.tlsServerName },
    metadata: () => {
      const m = new grpc.Metadata();
      if (token !== null) m.set('authorization', `Bearer ${token}`);
      return m;
    },
  };
}
