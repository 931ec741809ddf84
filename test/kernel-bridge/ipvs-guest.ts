// For the IPVS tests that need a kernel with IPVS: they run inside the QEMU
// guest that ipvs-vm.test.ts boots (LOADFEED_IPVS_GUEST=1), serially, and
// check what the engine did against ipvsadm's own listing, read here with a
// parser of its own (not the driver's). Elsewhere each such file registers
// one skipped test, so the summary counts it once.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { ipvsUapi, openIpvsSocket, type IpvsSocket } from '@loadfeed/kernel-bridge';

export const GUEST_VARIABLE = 'LOADFEED_IPVS_GUEST';
export const IN_GUEST = process.env[GUEST_VARIABLE] === '1';

/**
 * Register the file's tests when in the guest; otherwise one skipped test
 * named `what`, saying where they run.
 */
export function guestOnly(what: string, register: () => void): void {
  if (IN_GUEST) {
    register();
    return;
  }
  const skip = test.skip;
  skip(`${what} (run inside the IPVS guest by ipvs-vm.test.ts, ${GUEST_VARIABLE}=1)`, () => {});
}

export function ipvsadm(...args: string[]): string {
  return execFileSync('ipvsadm', args, { encoding: 'utf8' });
}

let flusher: Promise<IpvsSocket> | null = null;

/**
 * Remove every IPVS service (IPVS_CMD_FLUSH, as ipvsadm -C does), so each test
 * starts from an empty table. Over netlink: a process spawned from Node costs
 * about 0.3 s under TCG, and this runs before every test.
 */
export async function flushIpvs(): Promise<void> {
  flusher ??= openIpvsSocket();
  await (await flusher).execute(ipvsUapi.IPVS_CMD.FLUSH, {});
}

export interface ListedDestination {
  readonly forward: string;
  readonly weight: number;
  /** The column after Forward in `--tun-info` listings (`n/a`, `gue:6080:-c`); undefined otherwise. */
  readonly tunnel?: string;
}

/**
 * `ipvsadm -Ln [--tun-info]` as {"TCP 127.0.0.1:80 wrr": {"127.0.0.2:8080": {forward, weight}}}.
 * Service lines keep ipvsadm's own spelling (protocol in capitals, flags after the scheduler).
 */
export function listedWeights(tunInfo = false): Record<string, Record<string, ListedDestination>> {
  const out: Record<string, Record<string, ListedDestination>> = {};
  let service: Record<string, ListedDestination> | undefined;
  for (const line of ipvsadm('-Ln', ...(tunInfo ? ['--tun-info'] : [])).split('\n')) {
    const dest = /^\s+->\s+(\S+)\s+(Masq|Route|Tunnel|Local|Bypass)\s+(?:(\S+)\s+)?(\d+)\s+\d+\s+\d+\s*$/.exec(line);
    if (dest?.[1] !== undefined && dest[2] !== undefined && dest[4] !== undefined && service !== undefined) {
      service[dest[1]] = { forward: dest[2], weight: Number(dest[4]), ...(tunInfo ? { tunnel: dest[3] } : {}) };
      continue;
    }
    if (/^(TCP|UDP|SCTP|FWM)\s/.test(line)) out[line.trim().replace(/\s+/g, ' ')] = service = {};
  }
  return out;
}

/** `ipvsadm -Ln --thresholds` as {"127.0.0.2:8080": [upper, lower]} for every destination of every service. */
export function listedThresholds(): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const line of ipvsadm('-Ln', '--thresholds').split('\n')) {
    const m = /^\s+->\s+(\S+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+\s*$/.exec(line);
    if (m?.[1] !== undefined) out[m[1]] = [Number(m[2]), Number(m[3])];
  }
  return out;
}
