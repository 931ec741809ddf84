// Server-side transport security from the operator's files: TLS with an
// optional client CA (mutual TLS) and an optional tokens file.
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
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

export async function loadSecurity(f: SecurityFiles): Promise<PollerSecurity> {
  const read = async (what: string, file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new PollerError('AUTH_CONFIG_INVALID', `${what} ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
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
