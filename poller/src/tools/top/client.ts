// Reads a poller's /status over HTTP for `loadfeed top`. No keep-alive, so
// quitting never waits for an idle socket; bounded in time and size.
import http from 'node:http';
import { STATUS_VERSION, type StatusDocument } from '../../status/document.js';
import { ExternalError, OptionError } from '../../errors.js';

export const FETCH_TIMEOUT_MS = 3_000;
export const MAX_STATUS_BYTES = 32 * 1024 * 1024;

/** `HOST:PORT`, `[IPv6]:PORT` or an http:// URL → the status server's base URL. */
export function statusBaseUrl(text: string): URL {
  const candidate = /^https?:\/\//.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    throw new OptionError(`--status: "${text}" must be HOST:PORT of a poller's status server, e.g. 127.0.0.1:7416`);
  }
  if (url.protocol !== 'http:' || url.port === '' || url.hostname === '') {
    throw new OptionError(`--status: "${text}" must be HOST:PORT of a poller's status server, e.g. 127.0.0.1:7416`);
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

export async function fetchStatus(base: URL, timeoutMs = FETCH_TIMEOUT_MS): Promise<StatusDocument> {
  const url = new URL('status', base);
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_STATUS_BYTES) req.destroy(new ExternalError(`${url.href}: more than ${MAX_STATUS_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === 200) resolve(text);
        else reject(new ExternalError(`${url.href}: HTTP ${res.statusCode ?? '?'} ${text.trim().slice(0, 200)}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new ExternalError(`${url.href}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
  let doc: StatusDocument;
  try {
    doc = JSON.parse(body) as StatusDocument;
  } catch {
    throw new ExternalError(`${url.href} did not answer with JSON: is this a loadfeed poller's status server?`);
  }
  if (doc.version !== STATUS_VERSION) {
    throw new ExternalError(`${url.href} speaks status version ${String(doc.version)}; this loadfeed top reads version ${STATUS_VERSION}: use the same loadfeed version as the poller`);
  }
  return doc;
}
