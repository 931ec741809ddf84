// `loadfeed certs`: a development CA and certificates for mutual TLS between
// agents and pollers, made with the system's openssl (EC P-256). For
// production, use your own PKI: the poller only needs a server certificate,
// the CA of the agents' client certificates, and each agent's certificate to
// name its node id in CN or a DNS subjectAltName.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { ExternalError, OptionError } from '../errors.js';

const run = promisify(execFile);

export const DEFAULT_CERT_DAYS = 825;

export const CERTS_USAGE = `Usage: loadfeed certs --out DIR [--node ID]... [--poller-name NAME]... [--days N]

Makes a development CA (DIR/ca.pem, ca.key; reused if present), a poller
server certificate (DIR/poller.pem, poller.key) for the given names (default:
localhost, 127.0.0.1, ::1), and one client certificate per --node
(DIR/ID.pem, ID.key) that lets an agent report for that node id only.

  poller:  loadfeed-poller --tls-cert DIR/poller.pem --tls-key DIR/poller.key --tls-client-ca DIR/ca.pem …
  agent:   loadfeed-agent --tls-ca DIR/ca.pem --tls-cert DIR/ID.pem --tls-key DIR/ID.key --node-id ID …
`;

export async function certsMain(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      out: { type: 'string' },
      node: { type: 'string', multiple: true, default: [] },
      'poller-name': { type: 'string', multiple: true, default: [] },
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
  }
  const names = values['poller-name'].length > 0 ? values['poller-name'] : ['localhost', '127.0.0.1', '::1'];
  const made = await makeCertificates(values.out, { nodes: values.node, pollerNames: names, days });
  for (const f of made) process.stdout.write(`${f}\n`);
  return 0;
}

export interface CertificateRequest {
  readonly nodes: readonly string[];
  readonly pollerNames: readonly string[];
  readonly days: number;
}

/** Returns the files written. */
export async function makeCertificates(dir: string, req: CertificateRequest): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'loadfeed-certs-'));
  const written: string[] = [];
  const f = (name: string): string => path.join(dir, name);
  try {
    if (!existsSync(f('ca.pem')) || !existsSync(f('ca.key'))) {
      await openssl([
        'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', String(req.days),
        '-subj', '/CN=loadfeed development CA',
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      ]);
      written.push(f('ca.pem'), f('ca.key'));
    }
    const leaf = async (name: string, cn: string, sans: readonly string[], usage: string): Promise<void> => {
      const ext = path.join(tmp, `${name}.ext`);
      const san = sans.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      await writeFile(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${usage}\nsubjectAltName=${san}\n`);
      const csr = path.join(tmp, `${name}.csr`);
      await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${name}.key`), '-out', csr, '-subj', `/CN=${cn}`]);
      await openssl([
        'x509', '-req', '-in', csr, '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-set_serial', `0x${randomSerial()}`,
        '-days', String(req.days), '-extfile', ext, '-out', f(`${name}.pem`),
      ]);
      written.push(f(`${name}.pem`), f(`${name}.key`));
    };
    await leaf('poller', req.pollerNames[0] ?? 'localhost', req.pollerNames, 'serverAuth');
    for (const node of req.nodes) await leaf(node, node, [node], 'clientAuth');
    await Promise.all(written.filter((w) => w.endsWith('.key')).map((k) => chmod(k, 0o600)));
    return written;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new ExternalError('openssl is not installed: install it (Debian: apt-get install openssl) or bring your own certificates', { cause: err });
    throw new ExternalError(`openssl ${args[0]} failed: ${e.stderr?.trim() ?? e.message}`, { cause: err });
  }
}

function randomSerial(): string {
  return Array.from({ length: 16 }, () => Math.floor(Math.random() * 16).toString(16)).join('').replace(/^0/, '1');
}
