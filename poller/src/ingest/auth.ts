// Who may report for which node. A weight is a promise of traffic, so an
// agent may only speak for the node id its credentials name:
// - mutual TLS: the client certificate (verified against the CA) names the
//   node in its subject CN or a DNS subjectAltName;
// - bearer token: `authorization: Bearer <token>` metadata, looked up in the
//   tokens file (stored as SHA-256 digests, never in clear);
// - plaintext without either: only from a loopback peer, unless the operator
//   explicitly allows it (`--allow-plaintext`).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { PeerCertificate } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { parse as parseYaml } from 'yaml';
import { PollerError } from '../errors.js';
import { getOrCreate } from '../util/maps.js';

export interface AuthOptions {
  /** node id → SHA-256 digests (hex) of the tokens that may report for it. */
  readonly tokens: ReadonlyMap<string, readonly Buffer[]>;
  /** The server verifies client certificates (mutual TLS). */
  readonly mutualTls: boolean;
  /** Accept unauthenticated plaintext streams from non-loopback peers. */
  readonly allowPlaintext: boolean;
}

export type AuthVerdict =
  | { readonly ok: true; readonly via: 'certificate' | 'token' | 'loopback' | 'plaintext-allowed' }
  | { readonly ok: false; readonly code: 'unauthenticated' | 'permission-denied'; readonly reason: string };

/** Check that the stream's credentials may report for `nodeId`. */
export function authorize(call: grpc.ServerDuplexStream<unknown, unknown>, nodeId: string, options: AuthOptions): AuthVerdict {
  const auth = call.getAuthContext();
  const header = call.metadata.get('authorization')[0];
  const token = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
  if (token !== undefined) {
    const digest = sha256(token);
    const allowed = options.tokens.get(nodeId) ?? [];
    if (allowed.some((d) => d.length === digest.length && timingSafeEqual(d, digest))) return { ok: true, via: 'token' };
    const known = [...options.tokens.values()].some((ds) => ds.some((d) => timingSafeEqual(d, digest)));
    return known
      ? { ok: false, code: 'permission-denied', reason: `this token may not report for node "${nodeId}"` }
      : { ok: false, code: 'unauthenticated', reason: 'unknown bearer token' };
  }
  const cert = auth.sslPeerCertificate;
  if (options.mutualTls && cert && Object.keys(cert).length > 0) {
    const names = certificateNames(cert);
    if (names.includes(nodeId)) return { ok: true, via: 'certificate' };
    return { ok: false, code: 'permission-denied', reason: `the client certificate names ${names.map((n) => `"${n}"`).join(', ') || 'nothing'}, not "${nodeId}"` };
  }
  if (options.tokens.size > 0 || options.mutualTls) {
    return { ok: false, code: 'unauthenticated', reason: 'no client certificate or bearer token' };
  }
  if (isLoopbackPeer(call.getPeer())) return { ok: true, via: 'loopback' };
  if (options.allowPlaintext) return { ok: true, via: 'plaintext-allowed' };
  return {
    ok: false,
    code: 'unauthenticated',
    reason: 'unauthenticated plaintext is accepted from loopback only: configure TLS (loadfeed certs) or tokens, or start the poller with --allow-plaintext',
  };
}

/** Subject CN and DNS subjectAltNames of a peer certificate. */
function certificateNames(cert: PeerCertificate): string[] {
  const names: string[] = [];
  const cn: unknown = cert.subject?.CN;
  if (typeof cn === 'string') names.push(cn);
  else if (Array.isArray(cn)) names.push(...cn.filter((x): x is string => typeof x === 'string'));
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m?.[1]) names.push(m[1].trim());
  }
  return [...new Set(names)];
}

export function isLoopbackPeer(peer: string): boolean {
  const host = peer.startsWith('[') ? peer.slice(1, peer.indexOf(']')) : peer.slice(0, peer.lastIndexOf(':'));
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === '::ffff:127.0.0.1' || /^::ffff:127\./.test(host) || peer.startsWith('unix:');
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The tokens file: YAML `tokens: [{ node: web-1, sha256: <hex> }, …]`.
 * Digests only, so the file on the director does not hold usable secrets;
 * make one with `printf %s "$TOKEN" | sha256sum`.
 */
export async function loadTokens(file: string): Promise<Map<string, Buffer[]>> {
  const bad = (msg: string): never => {
    throw new PollerError('AUTH_CONFIG_INVALID', `${file}: ${msg}`);
  };
  let doc: unknown;
  try {
    doc = parseYaml(await readFile(file, 'utf8'));
  } catch (err) {
    return bad((err as Error).message);
  }
  const list = (doc as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(list)) return bad('expected "tokens:" with a list of { node, sha256 }');
  const out = new Map<string, Buffer[]>();
  list.forEach((entry: unknown, i) => {
    const e = entry as { node?: unknown; sha256?: unknown };
    if (typeof e.node !== 'string' || !/^[A-Za-z0-9._:-]{1,253}$/.test(e.node)) bad(`tokens[${i}].node: ${JSON.stringify(e.node)} must be a node id`);
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(e.sha256)) bad(`tokens[${i}].sha256: must be 64 hex digits (printf %s "$TOKEN" | sha256sum)`);
    getOrCreate(out, e.node as string, () => []).push(Buffer.from(e.sha256 as string, 'hex'));
  });
  return out;
}
