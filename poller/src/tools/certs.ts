// `loadfeed certs`: a development CA and certificates for mutual TLS between
// agents and pollers (EC P-256, made in-process: no openssl needed). For
// production, use your own PKI: the poller only needs a server certificate,
// the CA of the agents' client certificates, and each agent's certificate to
// name its node id in CN or a DNS subjectAltName.
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isOrcaNodeId, ORCA_NODE_PREFIX } from '@loadfeed/proto';
import { OptionError } from '../errors.js';

export const DEFAULT_CERT_DAYS = 825;

export const CERTS_USAGE = `Usage: loadfeed certs --out DIR [--node ID]... [--poller-name NAME]... [--orca-server NAME]... [--days N]

Makes a development CA (DIR/ca.pem, ca.key; reused if present), a poller
server certificate (DIR/poller.pem, poller.key) for the given names (default:
localhost, 127.0.0.1, ::1), one client certificate per --node
(DIR/ID.pem, ID.key) that lets an agent report for that node id only, and
one server certificate per --orca-server (DIR/orca-NAME.pem, .key) for an
application's gRPC server that serves ORCA over TLS.
Keys are EC P-256 (PKCS#8 PEM, mode 0600); nothing but Node is needed.

  poller:  loadfeed-poller --tls-cert DIR/poller.pem --tls-key DIR/poller.key --tls-client-ca DIR/ca.pem …
  agent:   loadfeed-agent --tls-ca DIR/ca.pem --tls-cert DIR/ID.pem --tls-key DIR/ID.key --node-id ID …
  ORCA:    the application serves with DIR/orca-NAME.pem and .key (and DIR/ca.pem as its client CA,
           to take the agents' certificates); loadfeed-agent --orca NAME:PORT --orca-tls-ca DIR/ca.pem
           [--orca-tls-cert DIR/ID.pem --orca-tls-key DIR/ID.key], or the poller's --orca-tls-* alike
`;

export async function certsMain(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      out: { type: 'string' },
      node: { type: 'string', multiple: true, default: [] },
      'poller-name': { type: 'string', multiple: true, default: [] },
      'orca-server': { type: 'string', multiple: true, default: [] },
      days: { type: 'string', default: String(DEFAULT_CERT_DAYS) },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(CERTS_USAGE);
    return 0;
  }
  if (!values.out) throw new OptionError('--out DIR is required (see loadfeed certs --help)');
  const days = Number(values.days);
  if (!Number.isInteger(days) || days < 1) throw new OptionError(`--days: ${values.days} must be a positive number of days`);
  for (const id of values.node) {
    if (!/^[A-Za-z0-9._:-]{1,64}$/.test(id)) throw new OptionError(`--node: "${id}" must be a node id of A-Z a-z 0-9 . _ : - (at most 64 characters, the CN limit)`);
    if (isOrcaNodeId(id)) throw new OptionError(`--node: "${id}" starts with "${ORCA_NODE_PREFIX}": pollers keep those ids for the gRPC backends they read without an agent`);
  }
  for (const name of values['orca-server']) {
    if (!/^[A-Za-z0-9.:-]{1,64}$/.test(name)) throw new OptionError(`--orca-server: "${name}" must be a host name or IP address (at most 64 characters)`);
  }
  const names = values['poller-name'].length > 0 ? values['poller-name'] : ['localhost', '127.0.0.1', '::1'];
  const made = await makeCertificates(values.out, { nodes: values.node, pollerNames: names, orcaServers: values['orca-server'], days });
  for (const f of made) process.stdout.write(`${f}\n`);
  return 0;
}

export interface CertificateRequest {
  readonly nodes: readonly string[];
  readonly pollerNames: readonly string[];
  /** Host names or IPs of application gRPC servers serving ORCA: one server certificate each. */
  readonly orcaServers?: readonly string[];
  readonly days: number;
}

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { ...KEY_ALGORITHM, hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

/** Returns the files written. */
export async function makeCertificates(dir: string, req: CertificateRequest): Promise<string[]> {
  // Loaded here, not at the top: reflect-metadata (which @peculiar/x509's
  // dependency injection needs) patches the global Reflect, and only this
  // command should pay for that.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto);
  const { subtle } = webcrypto;

  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const f = (name: string): string => path.join(dir, name);
  const notBefore = new Date();
  const notAfter = new Date(notBefore.getTime() + req.days * DAY_MS);
  const pkcs8Pem = async (key: webcrypto.CryptoKey): Promise<string> =>
    x509.PemConverter.encode(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
  const save = async (name: string, cert: InstanceType<typeof x509.X509Certificate>, key: webcrypto.CryptoKey): Promise<void> => {
    await writeFile(f(`${name}.pem`), cert.toString('pem') + '\n');
    await writeFile(f(`${name}.key`), await pkcs8Pem(key), { mode: 0o600 });
    written.push(f(`${name}.pem`), f(`${name}.key`));
  };

  let ca: InstanceType<typeof x509.X509Certificate>;
  let caKey: webcrypto.CryptoKey;
  if (existsSync(f('ca.pem')) && existsSync(f('ca.key'))) {
    ca = new x509.X509Certificate(await readFile(f('ca.pem'), 'utf8'));
    caKey = await importCaKey(f('ca.key'));
  } else {
    const keys = await subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
    ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: 'CN=loadfeed development CA',
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    caKey = keys.privateKey;
    await save('ca', ca, caKey);
  }
  const authorityKey = await x509.AuthorityKeyIdentifierExtension.create(ca);

  const leaf = async (name: string, cn: string, sans: readonly string[], usage: string): Promise<void> => {
    const keys = await subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: new x509.Name([{ CN: [cn] }]).toString(),
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([usage]),
        new x509.SubjectAlternativeNameExtension(sans.map((n) => ({ type: isIP(n) ? 'ip' : 'dns', value: n }))),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        authorityKey,
      ],
    });
    await save(name, cert, keys.privateKey);
  };
  await leaf('poller', req.pollerNames[0] ?? 'localhost', req.pollerNames, x509.ExtendedKeyUsage.serverAuth);
  for (const node of req.nodes) await leaf(node, node, [node], x509.ExtendedKeyUsage.clientAuth);
  for (const server of req.orcaServers ?? []) await leaf(`orca-${server.replace(/:/g, '_')}`, server, [server], x509.ExtendedKeyUsage.serverAuth);
  return written;
}

/** The CA key of an earlier run (or openssl's, in PKCS#8 or SEC1 PEM), as a signing key. */
async function importCaKey(file: string): Promise<webcrypto.CryptoKey> {
  try {
    const key = createPrivateKey(await readFile(file));
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      throw new Error(`a ${key.asymmetricKeyType ?? 'unknown'}${curve === undefined ? '' : ` ${curve}`} key, not EC P-256`);
    }
    return await webcrypto.subtle.importKey('pkcs8', key.export({ format: 'der', type: 'pkcs8' }), KEY_ALGORITHM, false, ['sign']);
  } catch (err) {
    throw new OptionError(`--out: ${file}: cannot sign with this CA key (${(err as Error).message}); move ca.pem and ca.key away to make a new CA`, { cause: err });
  }
}

/** 16 random bytes, first bit clear so the serial is positive and keeps its length. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}
