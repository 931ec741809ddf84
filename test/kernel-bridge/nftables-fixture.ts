// The nftables tests' world: a director namespace whose ruleset the engine
// drives, a client namespace and a backend namespace on either side of it
// (veth pairs), processes inside them (nftables-peer.ts), all torn down at the
// end of the test (test/helpers/netns.ts).
//
//   client 10.77.1.2 ──veth── 10.77.1.1  director  10.77.2.1 ──veth── 10.77.2.2, .3, .4  backends
//   default via 10.77.1.1       VIP 10.77.100.1 on lo, ip_forward=1  default via 10.77.2.1
//
// The VIP 10.77.100.1 is on the director's lo, as on a real director: the
// client routes it to the director, whose prerouting chain translates it
// (forwarded traffic); replies come back through the director, where conntrack
// undoes the translation. The director's own connections find a route to the
// VIP (lo) and are translated by the output chain. Untranslated (all weights
// 0), a connection reaches the director itself, where nothing listens: refused.
import type { ExecutionContext } from 'ava';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createNftablesEngine, type NftablesEngine } from '@loadfeed/kernel-bridge';
import { createLab, type Lab } from '../helpers/netns.js';
import { NETNS_WITH_NFTABLES, ROOT, binary, findExecutable, realEngineGate } from '../helpers/real-engine.js';

export const nftablesGate = realEngineGate('nftables', [
  ROOT,
  binary('ip', 'iproute2'),
  binary('nft', 'nftables'),
  NETNS_WITH_NFTABLES,
]);

export const VIP = '10.77.100.1';
export const VIP_PORT = 80;
export const SERVICE = `tcp ${VIP}:${VIP_PORT}`;
export const BACKEND_PORT = 8080;
export const BACKEND_HOSTS = ['10.77.2.2', '10.77.2.3', '10.77.2.4'] as const;
export const DESTINATIONS = BACKEND_HOSTS.map((host) => `${host}:${BACKEND_PORT}`);
/** Bound on one answer from a peer process (a whole count of connections included). */
export const PEER_WAIT_MS = 30_000;

/** The system's nft by absolute path (PATH under npm may hold another `nft`). */
export const NFT = findExecutable('nft') ?? 'nft';
const PEER = fileURLToPath(new URL('./nftables-peer.js', import.meta.url));

/** A peer process (nftables-peer.ts) and its request/answer channel. */
export interface Peer {
  request<T>(message: object): Promise<T>;
}

function peer(child: ChildProcessWithoutNullStreams, what: string): Peer {
  const answers = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let queue: Promise<unknown> = Promise.resolve();
  const next = async (): Promise<unknown> => {
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: no answer within ${PEER_WAIT_MS} ms; stderr: ${stderr}`)), PEER_WAIT_MS).unref(),
    );
    const line = await Promise.race([answers.next(), timeout]);
    if (line.done === true) throw new Error(`${what} exited: ${stderr}`);
    const value = JSON.parse(line.value) as { error?: string };
    if (value.error !== undefined) throw new Error(`${what}: ${value.error}`);
    return value;
  };
  return {
    request<T>(message: object): Promise<T> {
      const run = queue.then(() => {
        child.stdin.write(`${JSON.stringify(message)}\n`);
        return next();
      });
      queue = run.catch(() => undefined);
      return run as Promise<T>;
    },
  };
}

export interface World {
  readonly lab: Lab;
  readonly director: string;
  readonly engine: NftablesEngine;
  /** Client process in the client namespace: its connections cross the director (prerouting). */
  readonly client: Peer;
  /** Start a client process inside the director (its connections take the output hook). */
  directorClient(): Peer;
}

export async function startWorld(t: ExecutionContext): Promise<World> {
  const lab = createLab(t);
  const director = await lab.namespace('director');
  const clientNs = await lab.namespace('client');
  const backendNs = await lab.namespace('backends');
  await lab.veth(
    { ns: clientNs, name: 'eth0', addresses: ['10.77.1.2/24'] },
    { ns: director, name: 'to-client', addresses: ['10.77.1.1/24'] },
  );
  await lab.veth(
    { ns: backendNs, name: 'eth0', addresses: BACKEND_HOSTS.map((h) => `${h}/24`) },
    { ns: director, name: 'to-backends', addresses: ['10.77.2.1/24'] },
  );
  await lab.exec(clientNs, ['ip', 'route', 'add', 'default', 'via', '10.77.1.1']);
  await lab.exec(backendNs, ['ip', 'route', 'add', 'default', 'via', '10.77.2.1']);
  await lab.exec(director, ['ip', 'address', 'add', `${VIP}/32`, 'dev', 'lo']);
  // /proc/sys/net is per namespace; written directly so that procps (sysctl) is not needed.
  await lab.exec(director, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);

  const backends = lab.spawn(backendNs, [process.execPath, PEER, 'backends', String(BACKEND_PORT), ...BACKEND_HOSTS]);
  const [ready] = (await once(createInterface({ input: backends.stdout }), 'line', {
    signal: AbortSignal.timeout(PEER_WAIT_MS),
  })) as [string];
  if (ready !== '{"ready":true}') throw new Error(`backends did not start: ${ready}`);

  const engine = createNftablesEngine({ command: [...lab.prefixFor(director), NFT] });
  t.teardown(() => engine.close());
  return {
    lab,
    director,
    engine,
    client: peer(lab.spawn(clientNs, [process.execPath, PEER, 'client']), 'client'),
    directorClient: () => peer(lab.spawn(director, [process.execPath, PEER, 'client']), 'director client'),
  };
}

export interface Counts {
  readonly counts: Record<string, number>;
  readonly errors: Record<string, number>;
}

/** `count` new connections to the VIP, `concurrency` at a time: which backend greeted each. */
export function connectMany(from: Peer, count: number, concurrency = 20): Promise<Counts> {
  return from.request<Counts>({ count, concurrency, host: VIP, port: VIP_PORT });
}
