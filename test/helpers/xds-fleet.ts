// A proxyless gRPC client process (xds-client.ts) pointed at an xDS server by
// a bootstrap file, and the questions a test asks it.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

/** Bounds a question: a loaded machine slows the client's calls, a broken one stops them. */
const PICKS_TIMEOUT_MS = 90_000;
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'xds-client.js');

export interface XdsClientProcess {
  /** Resolves once a call through xDS has succeeded. */
  readonly ready: Promise<void>;
  /** Answers per backend of the first `count` calls started at or after `fromMs` (epoch ms), once they have finished. */
  picks(fromMs: number, count: number): Promise<Record<string, number>>;
}

/** The bootstrap a gRPC client needs, and nothing else: where the xDS server is and who the client is. */
export function grpcBootstrap(serverUri: string, nodeId: string): Record<string, unknown> {
  return {
    xds_servers: [{ server_uri: serverUri, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, locality: {} },
  };
}

export function startXdsClient(t: ExecutionContext, serverUri: string, target: string, callsPerSecond: number): XdsClientProcess {
  const dir = mkdtempSync(path.join(tmpdir(), 'loadfeed-xds-client-'));
  const bootstrap = path.join(dir, 'bootstrap.json');
  writeFileSync(bootstrap, JSON.stringify(grpcBootstrap(serverUri, `test-client-${process.pid}`)));
  const child = spawn(process.execPath, [CLIENT, target, String(callsPerSecond)], {
    env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrap },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  t.teardown(() => {
    child.stdin.end();
    child.kill('SIGKILL');
  });
  const waiting = new Map<number, { resolve: (counts: Record<string, number>) => void; reject: (err: Error) => void }>();
  let nextId = 1;
  let onReady: () => void = () => {};
  let onExit: (err: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onExit = reject;
  });
  child.on('exit', (code, signal) => {
    const err = new Error(`xds client exited (${code ?? signal}): ${stderr}`);
    onExit(err);
    for (const w of waiting.values()) w.reject(err);
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const message = JSON.parse(line) as { ready?: boolean; id?: number; counts?: Record<string, number> };
    if (message.ready === true) onReady();
    if (message.id !== undefined) {
      waiting.get(message.id)?.resolve(message.counts ?? {});
      waiting.delete(message.id);
    }
  });
  return {
    ready,
    picks: (fromMs, count) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => reject(new Error(`no ${count} calls from the xds client within ${PICKS_TIMEOUT_MS} ms: ${stderr}`)), PICKS_TIMEOUT_MS);
        waiting.set(id, {
          resolve: (counts) => {
            clearTimeout(timer);
            resolve(counts);
          },
          reject,
        });
        child.stdin.write(`${JSON.stringify({ id, from: fromMs, count })}\n`);
      }),
  };
}

/** Picks per share measurement. */
export const PICKS = 400;
/**
 * Share tolerance, absolute: random hashing on a 4096-entry ring gives each
 * backend its weight's share within about 1 %, and 400 picks add a sampling
 * error of at most 2.5 % (one standard deviation), so 0.09 is more than
 * three and a half of them.
 */
export const SHARE_TOLERANCE = 0.09;

/** Each backend's share of the picks against its weight's share. */
function shareGaps(counts: Record<string, number>, backends: readonly string[], weights: readonly number[]): { backend: string; share: number; want: number }[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const picked = backends.reduce((sum, b) => sum + (counts[b] ?? 0), 0);
  return backends.map((backend, i) => ({ backend, share: picked === 0 ? 0 : (counts[backend] ?? 0) / picked, want: (weights[i] ?? 0) / total }));
}

/** Whether no call failed and every share is within SHARE_TOLERANCE of its weight's share. */
export function sharesMatch(counts: Record<string, number>, backends: readonly string[], weights: readonly number[]): boolean {
  return (
    !Object.keys(counts).some((k) => k.startsWith('error')) &&
    shareGaps(counts, backends, weights).every((g) => Math.abs(g.share - g.want) <= SHARE_TOLERANCE)
  );
}

/** No call failed, and each backend's share of the picks is its weight's share within SHARE_TOLERANCE. */
export function assertShares(t: ExecutionContext, counts: Record<string, number>, backends: readonly string[], weights: readonly number[], what: string): void {
  t.deepEqual(Object.keys(counts).filter((k) => k.startsWith('error')), [], `${what}: no call failed (${JSON.stringify(counts)})`);
  for (const { backend, share, want } of shareGaps(counts, backends, weights)) {
    t.true(Math.abs(share - want) <= SHARE_TOLERANCE, `${what}: ${backend} share ${share.toFixed(3)}, weight share ${want.toFixed(3)}, weights ${weights.join(':')} (${JSON.stringify(counts)})`);
  }
}
