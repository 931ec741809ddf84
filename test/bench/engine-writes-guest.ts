// The IPVS half of bench:engine-writes, run inside the QEMU guest (real
// IPVS): N weight changes through generic netlink in one batch, through one
// `ipvsadm -R` process, and through N separate `ipvsadm -e` processes.
// Prints one JSON line with the per-round milliseconds of each way.
import { execFileSync } from 'node:child_process';
import { createIpvsEngine, type EngineOp } from '@loadfeed/kernel-bridge';

const N = Number(process.env['LOADFEED_BENCH_N'] ?? 1000);
const ROUNDS = Number(process.env['LOADFEED_BENCH_ROUNDS'] ?? 5);
const SERVICE = 'tcp 127.0.0.1:80';
const dests = Array.from({ length: N }, (_, i) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}:8080`);

execFileSync('ipvsadm', ['-R'], {
  input: [`-A -t 127.0.0.1:80 -s wlc`, ...dests.map((d) => `-a -t 127.0.0.1:80 -r ${d} -m -w 1`), ''].join('\n'),
});

const ops = (weight: number): EngineOp[] => dests.map((destination) => ({ op: 'set-weight', service: SERVICE, destination, weight }));
const time = async (fn: () => Promise<void> | void): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};
const weightsAre = (w: number): boolean => execFileSync('ipvsadm', ['-Ln', '-t', '127.0.0.1:80'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('->') && l.includes(':8080')).every((l) => l.trim().split(/\s+/)[3] === String(w));

const netlink = await createIpvsEngine({ driver: 'netlink' });
const ipvsadm = await createIpvsEngine({ driver: 'ipvsadm' });
const result: Record<string, number[]> = { netlinkBatch: [], ipvsadmRestore: [], ipvsadmEach: [] };
let w = 2;
for (let r = 0; r < ROUNDS; r += 1) {
  result['netlinkBatch']?.push(await time(() => netlink.apply(ops(w))));
  if (!weightsAre(w)) throw new Error(`netlink: weights are not ${w}`);
  w += 1;
  result['ipvsadmRestore']?.push(await time(() => ipvsadm.apply(ops(w))));
  if (!weightsAre(w)) throw new Error(`ipvsadm -R: weights are not ${w}`);
  w += 1;
  const each = w;
  result['ipvsadmEach']?.push(
    await time(() => {
      for (const d of dests) execFileSync('ipvsadm', ['-e', '-t', '127.0.0.1:80', '-r', d, '-m', '-w', String(each)]);
    }),
  );
  if (!weightsAre(w)) throw new Error(`ipvsadm -e: weights are not ${w}`);
  w += 1;
}
await netlink.close();
await ipvsadm.close();
process.stdout.write(`${JSON.stringify({ n: N, rounds: ROUNDS, ms: result })}\n`);
