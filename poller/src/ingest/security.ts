// Server-side transport security from the operator's files: TLS with an
// optional client CA (mutual TLS) and an optional tokens file.
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { PLAINTEXT_CHANNEL, tlsChannel, type ClientChannel } from '@loadfeed/proto';
import { loadTokens } from './auth.js';
import { PollerError } from '../errors.js';
import type { PollerSecurity } from './server.js';

export interface SecurityFiles {
  /** Server certificate chain and key (PEM); both or neither. */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** CA that signs agents' client certificates: turns on mutual TLS. */
  readonly clientCa?: string | undefined;
  /** Tokens file (see auth.ts). */
  readonly tokens?: string | undefined;
  readonly allowPlaintext: boolean;
}

async function read(what: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new PollerError('AUTH_CONFIG_INVALID', `${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export async function loadSecurity(f: SecurityFiles): Promise<PollerSecurity> {
  if ((f.cert === undefined) !== (f.key === undefined)) {
    throw new PollerError('AUTH_CONFIG_INVALID', '--tls-cert and --tls-key go together');
  }
  if (f.clientCa !== undefined && f.cert === undefined) {
    throw new PollerError('AUTH_CONFIG_INVALID', '--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)');
  }
  const tokens = f.tokens === undefined ? new Map<string, Buffer[]>() : await loadTokens(f.tokens);
  let credentials = grpc.ServerCredentials.createInsecure();
  if (f.cert !== undefined && f.key !== undefined) {
    const [cert, key, ca] = await Promise.all([
      read('--tls-cert', f.cert),
      read('--tls-key', f.key),
      f.clientCa === undefined ? Promise.resolve(null) : read('--tls-client-ca', f.clientCa),
    ]);
    credentials = grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null);
  }
  return { credentials, auth: { tokens, mutualTls: f.clientCa !== undefined, allowPlaintext: f.allowPlaintext } };
}

/** The poller's client side to agentless ORCA backends. */
export interface OrcaTlsFiles {
  /** CA of the backends' certificates: turns on TLS. */
  readonly ca?: string | undefined;
  /** Client certificate and key, for backends that ask for one (both or neither). */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** Name to expect in every backend's certificate instead of the host dialled. */
  readonly serverName?: string | undefined;
}

export async function loadOrcaChannel(f: OrcaTlsFiles): Promise<ClientChannel> {
  if (f.ca === undefined) {
    const other = f.cert !== undefined ? '--orca-tls-cert' : f.key !== undefined ? '--orca-tls-key' : f.serverName !== undefined ? '--orca-tls-server-name' : null;
    if (other !== null) throw new PollerError('AUTH_CONFIG_INVALID', `${other} needs --orca-tls-ca, the CA of the ORCA backends' certificates`);
    return PLAINTEXT_CHANNEL;
  }
  if ((f.cert === undefined) !== (f.key === undefined)) throw new PollerError('AUTH_CONFIG_INVALID', '--orca-tls-cert and --orca-tls-key go together');
  const [ca, cert, key] = await Promise.all([
    read('--orca-tls-ca', f.ca),
    f.cert === undefined ? null : read('--orca-tls-cert', f.cert),
    f.key === undefined ? null : read('--orca-tls-key', f.key),
  ]);
  return tlsChannel({ ca, cert, key, serverName: f.serverName ?? null });
}
