// Channel credentials and call metadata for the agent's streams, and the
// channel to the application's ORCA server, from the files named in its
// configuration (read once at start).
import { readFileSync } from 'node:fs';
import { grpc, PLAINTEXT_CHANNEL, tlsChannel, type ClientChannel } from '@loadfeed/proto';
import type { OrcaTlsConfig, TransportConfig } from './config.js';
import { AgentError } from './errors.js';

export interface Transport {
  readonly credentials: grpc.ChannelCredentials;
  readonly channelOptions: grpc.ChannelOptions;
  /** Per-call metadata: the bearer token, when there is one. */
  metadata(): grpc.Metadata;
}

function read(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new AgentError('AGENT_CONFIG_INVALID', `${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export function loadTransport(t: TransportConfig): Transport {
  const channel =
    t.tlsCa === null
      ? PLAINTEXT_CHANNEL
      : tlsChannel({
          ca: read('tlsCa', t.tlsCa),
          key: t.tlsKey === null ? null : read('tlsKey', t.tlsKey),
          cert: t.tlsCert === null ? null : read('tlsCert', t.tlsCert),
          serverName: t.tlsServerName,
        });
  const token = t.tokenFile === null ? null : read('tokenFile', t.tokenFile).toString('utf8').trim();
  if (token !== null && !/^[\x21-\x7e]{16,4096}$/.test(token)) {
    throw new AgentError('AGENT_CONFIG_INVALID', `tokenFile ${t.tokenFile}: the token must be 16..4096 printable characters without spaces`);
  }
  return {
    credentials: channel.credentials,
    channelOptions: channel.options,
    metadata: () => {
      const m = new grpc.Metadata();
      if (token !== null) m.set('authorization', `Bearer ${token}`);
      return m;
    },
  };
}

/** The channel to the application's ORCA server: TLS when configured. */
export function loadOrcaChannel(t: OrcaTlsConfig | null): ClientChannel {
  if (t === null) return PLAINTEXT_CHANNEL;
  return tlsChannel({
    ca: read('orcaTlsCa', t.ca),
    cert: t.cert === null ? null : read('orcaTlsCert', t.cert),
    key: t.key === null ? null : read('orcaTlsKey', t.key),
    serverName: t.serverName,
  });
}
