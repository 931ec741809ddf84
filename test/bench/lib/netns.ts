// Network namespaces as "hosts" for benches: each gets its own network stack
// (so its agent's /proc/net/snmp and SOCK_DIAG see only its own connections)
// and a veth pair to the bench's namespace, host side 10.<net>.<i>.1/24, inside
// 10.<net>.<i>.2/24, with <net> chosen per run (benchNetOctet), as the names
// carry the pid: two runs on one machine never share an address or a name.
// Processes enter with `nsenter --net=`, never `ip netns exec`, which remounts
// /sys and would hide the cgroup hierarchy from agents. Needs root and iproute2.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { findExecutable } from '../../helpers/system-tools.js';

const IP = findExecutable('ip') ?? 'ip';
const NSENTER = findExecutable('nsenter') ?? 'nsenter';

/** Second octets the bench subnets may take: 10.200.0.0/16 to 10.254.0.0/16. */
const FIRST_OCTET = 200;
const OCTETS = 55;
let chosenOctet: number | undefined;

/**
 * The second octet of this run's subnets: the first, from a start derived from
 * the pid, that no IPv4 address on the host uses yet. Chosen once per process.
 */
export function benchNetOctet(): number {
  if (chosenOctet !== undefined) return chosenOctet;
  const listing = execFileSync(IP, ['-4', '-o', 'addr', 'show'], { encoding: 'utf8', timeout: 10_000 });
  const used = new Set([...listing.matchAll(/inet 10\.(\d+)\./g)].map((m) => Number(m[1])));
  for (let i = 0; i < OCTETS; i++) {
    const octet = FIRST_OCTET + ((process.pid + i) % OCTETS);
    if (!used.has(octet)) return (chosenOctet = octet);
  }
  throw new Error(`every subnet 10.${FIRST_OCTET}-${FIRST_OCTET + OCTETS - 1}.0.0/16 is in use on this host`);
}

export class NetNs {
  private removed = false;

  private constructor(
    readonly name: string,
    /** Address of the bench side, reachable from inside. */
    readonly hostAddress: string,
    /** Address inside the namespace. */
    readonly address: string,
    /** The host side of the veth pair. */
    readonly hostInterface: string,
  ) {}

  /** Namespace `lfb<pid>-<i>` with veth `lfb<pid>h<i>` (host) ↔ `eth0` (inside), index 1..250. */
  static create(index: number): NetNs {
    const name = `lfb${process.pid}-${index}`;
    const hostIf = `lfb${process.pid % 100000}h${index}`;
    const net = `10.${benchNetOctet()}.${index}`;
    const ns = new NetNs(name, `${net}.1`, `${net}.2`, hostIf);
    try {
      ip('netns', 'add', name);
      ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
      ip('addr', 'add', `${net}.1/24`, 'dev', hostIf);
      ip('link', 'set', hostIf, 'up');
      ip('-n', name, 'addr', 'add', `${net}.2/24`, 'dev', 'eth0');
      ip('-n', name, 'link', 'set', 'eth0', 'up');
      ip('-n', name, 'link', 'set', 'lo', 'up');
    } catch (err) {
      ns.remove();
      throw err;
    }
    return ns;
  }

  /** Command prefix that runs a program inside: `nsenter --net=/run/netns/NAME --`. */
  enter(): string[] {
    return [NSENTER, `--net=/run/netns/${this.name}`, '--'];
  }

  /** Cut (or restore) the namespace's only link: its host is partitioned, its sockets see silence. */
  setLink(up: boolean): void {
    ip('link', 'set', this.hostInterface, up ? 'up' : 'down');
  }

  /** Deletes the namespace (its veth pair goes with it). Safe to call twice. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    if (existsSync(`/run/netns/${this.name}`)) {
      try {
        ip('netns', 'delete', this.name);
      } catch {
        // best effort: nothing else can be done here
      }
    }
  }
}

/** Why namespaces cannot be made here, or undefined. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    execFileSync(NSENTER, ['--version'], { stdio: 'ignore' });
  } catch {
    return 'no nsenter (util-linux)';
  }
  const probe = NetNsProbe.tryCreate();
  return probe;
}

const NetNsProbe = {
  tryCreate(): string | undefined {
    const name = `lfbprobe${process.pid}`;
    try {
      ip('netns', 'add', name);
      ip('netns', 'delete', name);
      return undefined;
    } catch (err) {
      return `ip netns add failed: ${(err as Error).message.split('\n')[0] ?? ''}`;
    }
  },
};

function ip(...args: string[]): void {
  execFileSync(IP, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}
