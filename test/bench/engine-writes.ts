// bench:engine-writes: what one cycle of weight changes costs per engine.
// - IPVS (real kernel, in the QEMU guest): N changes through generic netlink
//   in one batch, through one `ipvsadm -R`, and through N `ipvsadm -e` calls.
// - HAProxy (Debian's, on loopback): N changes batched on one runtime-API
//   line, against one connection per command.
// Medians of several rounds, as ratios against the slowest way measured in
// the same run. LOADFEED_BENCH_QUICK=1: a short run that only proves it works.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHaproxyEngine, createRuntimeApiClient, type EngineOp } from '@loadfeed/kernel-bridge';
import { runInGuest } from '../ipvs-vm/run.js';
import { machineLine, median, QUICK } from './lib/measure.js';

const N = Number(process.env['LOADFEED_BENCH_N'] ?? (QUICK ? 50 : 1000));
const ROUNDS = Number(process.env['LOADFEED_BENCH_ROUNDS'] ?? (QUICK ? 1 : 5));
const HAPROXY_SERVERS = QUICK ? 10 : 100;

function ratio(a: number, b: number): string {
  return `${(b / a).toFixed(1)}×`;
}

async function haproxy(): Promise<Record<string, number[]>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lf-bench-haproxy-'));
  const socket = path.join(dir, 'admin.sock');
  const servers = Array.from({ length: HAPROXY_SERVERS }, (_, i) => `    server s${i} 127.0.0.1:${10_000 + i} weight 1`);
  writeFileSync(
    path.join(dir, 'h.cfg'),
    ['global', `    stats socket ${socket} mode 600 level admin`, 'defaults', '    mode tcp', '    timeout connect 1s', '    timeout client 1s', '    timeout server 1s', 'backend b', '    balance roundrobin', ...servers, ''].join('\n'),
  );
  const child = spawn('haproxy', ['-db', '-f', path.join(dir, 'h.cfg')], { stdio: 'ignore' });
  try {
    const client = createRuntimeApiClient({ socket, timeoutMs: 5000 });
    for (let i = 0; ; i += 1) {
      try {
        await client.send('show cli level');
        break;
      } catch (err) {
        if (i > 200) throw err;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    const engine = createHaproxyEngine({ socket });
    const ops = (w: number): EngineOp[] => Array.from({ length: N }, (_, i) => ({ op: 'set-weight', service: 'b', destination: `s${i % HAPROXY_SERVERS}`, weight: 1 + ((w + i) % 200) }));
    const oneEach = async (list: EngineOp[]): Promise<void> => {
      for (const op of list) {
        if (op.op !== 'set-weight') continue;
        // One connection per command, the way a shell loop over socat would.
        await new Promise<void>((resolve, reject) => {
          const c = createConnection(socket, () => c.end(`set server b/${op.destination} weight ${op.weight}\n`));
          c.on('data', () => undefined).on('end', resolve).on('error', reject);
        });
      }
    };
    const out: Record<string, number[]> = { batched: [], perCommand: [] };
    for (let r = 0; r < ROUNDS; r += 1) {
      let t0 = performance.now();
      await engine.apply(ops(2 * r));
      out['batched']?.push(performance.now() - t0);
      t0 = performance.now();
      await oneEach(ops(2 * r + 1));
      out['perCommand']?.push(performance.now() - t0);
    }
    await engine.close();
    return out;
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function ipvs(): Promise<Record<string, number[]>> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'engine-writes-guest.js');
  const r = await runInGuest({
    command: [process.execPath, script],
    env: { LOADFEED_BENCH_N: String(N), LOADFEED_BENCH_ROUNDS: String(ROUNDS) },
    preload: ['@loadfeed/kernel-bridge', 'netlink'],
  });
  if (r.exitCode !== 0) throw new Error(`guest run failed (${r.failure ?? r.exitCode}): ${r.stderr.slice(-2000)}`);
  const line = r.stdout.trim().split('\n').at(-1) ?? '{}';
  return (JSON.parse(line) as { ms: Record<string, number[]> }).ms;
}

const med = (xs: number[] | undefined): number => median(xs ?? []);
process.stdout.write(`bench:engine-writes  ${machineLine()}  ${N} weight changes, median of ${ROUNDS} round(s)${QUICK ? ' (quick)' : ''}\n`);
const h = await haproxy();
const hb = med(h['batched']);
const hp = med(h['perCommand']);
process.stdout.write(`haproxy  batched on one line: ${hb.toFixed(1)} ms   one connection per command: ${hp.toFixed(1)} ms   batched is ${ratio(hb, hp)} faster\n`);
const v = await ipvs();
const nb = med(v['netlinkBatch']);
const rs = med(v['ipvsadmRestore']);
const ea = med(v['ipvsadmEach']);
process.stdout.write(
  `ipvs (QEMU TCG guest)  netlink batch: ${nb.toFixed(1)} ms   one ipvsadm -R: ${rs.toFixed(1)} ms   ${N} × ipvsadm -e: ${ea.toFixed(0)} ms\n` +
    `ipvs ratios vs ${N} × ipvsadm -e: netlink ${ratio(nb, ea)} faster, ipvsadm -R ${ratio(rs, ea)} faster; netlink vs ipvsadm -R: ${ratio(nb, rs)}\n`,
);
