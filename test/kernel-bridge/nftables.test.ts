// The nftables engine driving the real kernel, in namespaces the test creates
// (nftables-fixture.ts): new connections through the director are spread by
// weight, an existing connection keeps its backend whatever the updates
// (conntrack holds its translation), the director's own connections are
// translated too, and observe() reads back what was written. Needs root,
// iproute2, nftables and a kernel with nf_tables and network namespaces.
//
// Tolerance: each new connection draws a backend independently (numgen
// random), so a backend's count over n connections is binomial(n, p) with
// p = weight / sum of weights. Counts must be within 5 standard deviations of
// n·p: with 600 connections at weights 1:2:3 that is ±46, ±58 and ±61 around
// 100, 200 and 300 (a false failure has odds of about 1 in 10^6 per count),
// while weights ignored (200 each) would miss by 100. A weight of 0 must get
// exactly 0.
import type { ExecutionContext } from 'ava';
import { createNftablesEngine, type EngineOp, type NftablesEngine } from '@loadfeed/kernel-bridge';
import {
  BACKEND_HOSTS,
  DESTINATIONS,
  NFT,
  SERVICE,
  VIP,
  VIP_PORT,
  connectMany,
  nftablesGate,
  startWorld,
  type Counts,
} from './nftables-fixture.js';

const { test } = nftablesGate;
const SIGMAS = 5;

function setWeights(weights: readonly number[]): EngineOp[] {
  return DESTINATIONS.map((destination, i) => ({ op: 'set-weight', service: SERVICE, destination, weight: weights[i] ?? 0 }));
}

async function createService(engine: NftablesEngine, weights: readonly number[]): Promise<void> {
  await engine.apply([
    { op: 'add-service', service: { address: SERVICE } },
    ...DESTINATIONS.map((destination, i) => ({
      op: 'add-destination' as const,
      service: SERVICE,
      destination,
      weight: weights[i] ?? 0,
    })),
  ]);
}

async function observedWeights(engine: NftablesEngine): Promise<Record<string, Record<string, number>>> {
  return Object.fromEntries(
    (await engine.observe()).services.map((s) => [s.address, Object.fromEntries(s.destinations.map((d) => [d.address, d.weight]))]),
  );
}

/** Every connection answered, and each backend's share within SIGMAS standard deviations of its weight's. */
function assertShares(t: ExecutionContext, result: Counts, weights: readonly number[], n: number): void {
  t.deepEqual(result.errors, {}, 'every connection was answered');
  const total = weights.reduce((a, b) => a + b, 0);
  BACKEND_HOSTS.forEach((host, i) => {
    const count = result.counts[host] ?? 0;
    const weight = weights[i] ?? 0;
    if (weight === 0) {
      t.is(count, 0, `${host} has weight 0`);
      return;
    }
    const p = weight / total;
    const expected = n * p;
    const bound = SIGMAS * Math.sqrt(n * p * (1 - p));
    t.true(Math.abs(count - expected) <= bound, `${host}: ${count} connections, expected ${expected.toFixed(0)} ± ${bound.toFixed(0)}`);
  });
  t.is(
    Object.values(result.counts).reduce((a, b) => a + b, 0),
    n,
  );
}

test('new connections through the director are spread by weight', async (t) => {
  const { engine, client } = await startWorld(t);
  await createService(engine, [1, 2, 3]);
  t.deepEqual(await observedWeights(engine), { [SERVICE]: { [DESTINATIONS[0]!]: 1, [DESTINATIONS[1]!]: 2, [DESTINATIONS[2]!]: 3 } });
  assertShares(t, await connectMany(client, 600), [1, 2, 3], 600);

  await engine.apply(setWeights([3, 0, 1]));
  assertShares(t, await connectMany(client, 400), [3, 0, 1], 400);
});

test('an existing connection keeps its backend across updates, removal and all weights 0', async (t) => {
  const { engine, client } = await startWorld(t);
  await createService(engine, [1, 1, 1]);
  const { greeting: pinned } = await client.request<{ greeting: string }>({ open: 'long', host: VIP, port: VIP_PORT });
  const index = BACKEND_HOSTS.findIndex((host) => host === pinned);
  t.true(index >= 0, `the long-lived connection reached a backend: ${pinned}`);
  const ping = async (line: string): Promise<void> => {
    t.deepEqual(await client.request({ send: 'long', line }), { echo: `${pinned} ${line}` }, line);
  };
  await ping('before');

  // Its backend gets no new connection, yet the connection still reaches it.
  await engine.apply(setWeights(BACKEND_HOSTS.map((_, i) => (i === index ? 0 : 1))));
  const after = await connectMany(client, 60);
  t.is(after.counts[pinned], undefined, `${pinned} at weight 0 takes no new connection`);
  await ping('after its weight went to 0');

  await engine.apply([{ op: 'remove-destination', service: SERVICE, destination: `${pinned}:8080` }]);
  await ping('after its destination was removed');

  const remaining = DESTINATIONS.filter((destination) => destination !== `${pinned}:8080`);
  await engine.apply(remaining.map((destination) => ({ op: 'set-weight', service: SERVICE, destination, weight: 0 })));
  await ping('with every weight 0, no DNAT rule left');
  const refused = await connectMany(client, 5, 5);
  t.deepEqual(refused.counts, {}, 'all weights 0: no DNAT rule, no new connection reaches a backend');
  // Untranslated, the connection reaches the director itself, where nothing listens on the VIP.
  t.deepEqual(refused.errors, { ECONNREFUSED: 5 });
  await ping('after new connections were refused');
  t.deepEqual(await client.request({ close: 'long' }), { closed: 'long' });
});

test("the director's own connections are translated too (output hook)", async (t) => {
  const world = await startWorld(t);
  await createService(world.engine, [0, 5, 0]);
  const result = await connectMany(world.directorClient(), 50, 10);
  t.deepEqual(result, { counts: { [BACKEND_HOSTS[1]]: 50 }, errors: {} });
});

test('observe() reads back exactly what one nft transaction per apply() wrote; a new engine adopts it', async (t) => {
  const world = await startWorld(t);
  const log = `/tmp/${world.lab.prefix}-nft.log`;
  t.teardown(() => world.lab.exec(world.director, ['rm', '-f', log]));
  // nft, run through a shell that writes down its arguments first.
  const logged = createNftablesEngine({
    command: ['sh', '-c', `printf '%s\\n' "$*" >> ${log}; exec "$@"`, 'sh', ...world.lab.prefixFor(world.director), NFT],
  });
  const second = `tcp [2001:db8::10]:443`;
  await logged.apply([
    { op: 'add-service', service: { address: SERVICE, scheduler: 'random' } },
    { op: 'add-destination', service: SERVICE, destination: DESTINATIONS[0]!, weight: 65535 },
    { op: 'add-destination', service: SERVICE, destination: DESTINATIONS[1]!, weight: 1 },
    { op: 'add-destination', service: SERVICE, destination: DESTINATIONS[2]!, weight: 0 },
    { op: 'set-weight', service: SERVICE, destination: DESTINATIONS[1]!, weight: 2 },
    { op: 'add-service', service: { address: 'udp 10.77.100.1:53' } },
    { op: 'add-service', service: { address: second } },
    { op: 'add-destination', service: second, destination: '[2001:DB8::20]:8443', weight: 7 },
  ]);
  const calls = (await world.lab.exec(world.director, ['cat', log])).trim().split('\n');
  t.is(calls.length, 2, `one read, one write: ${calls.join(' | ')}`);
  t.regex(calls[0] ?? '', /\/nft -j list table inet loadfeed$/);
  t.regex(calls[1] ?? '', /\/nft -f -$/, 'the update is one nft -f - transaction');

  const expected = {
    [SERVICE]: { [DESTINATIONS[0]!]: 65535, [DESTINATIONS[1]!]: 2, [DESTINATIONS[2]!]: 0 },
    'udp 10.77.100.1:53': {},
    [second]: { '[2001:db8::20]:8443': 7 },
  };
  t.deepEqual(await observedWeights(logged), expected);
  const listing = await world.lab.exec(world.director, [NFT, 'list', 'table', 'inet', 'loadfeed']);
  t.regex(listing, /ip daddr 10\.77\.100\.1 tcp dport 80 dnat ip to numgen random mod 65537 map @svc4_tcp_0a4d6401_80/);
  t.regex(listing, /ip6 daddr 2001:db8::10 tcp dport 443 dnat ip6 to numgen random mod 7 map @svc6_tcp_20010db8000000000000000000000010_443/);
  t.notRegex(listing, /udp dport 53/, 'a service without destinations has no rule');

  // A poller restart: a new engine adopts the kernel's state as it is.
  t.deepEqual(await observedWeights(world.engine), expected);
  t.deepEqual((await world.engine.observe()).services.map((s) => s.scheduler), ['random', 'random', 'random']);
});
