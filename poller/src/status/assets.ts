// The dashboard's files: ours from poller/assets/, uPlot from its npm
// package. Read once at start into memory, served from a fixed table (no
// path from a request ever reaches the file system), and shipped with the
// package: directors are often offline, so nothing comes from a CDN.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InstallError } from '../errors.js';

export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

// Found by package name (a self-reference), so that the workspace build and the
// packed tarball's bundle, whose files sit at other depths, both find them.
const OWN = new URL('assets/', import.meta.resolve('@loadfeed/poller/package.json'));

const FILES: readonly { readonly route: string; readonly type: string; readonly from: () => URL }[] = [
  { route: '/', type: 'text/html; charset=utf-8', from: () => new URL('dashboard.html', OWN) },
  { route: '/assets/dashboard.js', type: 'text/javascript; charset=utf-8', from: () => new URL('dashboard.js', OWN) },
  { route: '/assets/dashboard.css', type: 'text/css; charset=utf-8', from: () => new URL('dashboard.css', OWN) },
  { route: '/assets/favicon.svg', type: 'image/svg+xml', from: () => new URL('favicon.svg', OWN) },
  { route: '/assets/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8', from: () => new URL(import.meta.resolve('uplot/dist/uPlot.iife.min.js')) },
  { route: '/assets/uPlot.min.css', type: 'text/css; charset=utf-8', from: () => new URL(import.meta.resolve('uplot/dist/uPlot.min.css')) },
];

/** Every dashboard file by route; throws naming the file that is missing. */
export function loadAssets(): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const f of FILES) {
    try {
      out.set(f.route, { type: f.type, body: readFileSync(fileURLToPath(f.from())) });
    } catch (err) {
      throw new InstallError(`dashboard file for ${f.route} is missing (${(err as Error).message}); reinstall @loadfeed/poller`, { cause: err });
    }
  }
  return out;
}
