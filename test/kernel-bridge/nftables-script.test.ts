// The nftables engine's pure parts: ops on the model, the script written, and
// the JSON read back (captured from nft 1.0.6 on Debian 12), including
// malformed tables and a property round trip. No root needed.
import test from 'ava';
import fc from 'fast-check';
import {
  ConflictError,
  MalformedReplyError,
  NFT_ZERO_WEIGHT_KEY_BASE,
  UnknownTargetError,
  UnsupportedError,
  AddressError,
  applyNftSteps,
  compileNftSteps,
  nftMapElements,
  nftMapName,
  parseNftMapName,
  parseNftRuleset,
  parseNftServiceAddress,
  renderNftScript,
  sortNftServices,
  type EngineOp,
  type NftService,
} from '@loadfeed/kernel-bridge';

// `nft -j list table inet loadfeed` after the engine wrote STATE (captured).
const CAPTURED =
  '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, ' +
  '{"table": {"family": "inet", "name": "loadfeed", "handle": 2}}, ' +
  '{"map": {"family": "inet", "name": "svc4_tcp_c000020a_443", "table": "loadfeed", "type": "integer", "handle": 4, ' +
  '"map": "ipv4_addr . inet_service", "flags": ["interval"]}}, ' +
  '{"map": {"family": "inet", "name": "svc4_tcp_c000020a_80", "table": "loadfeed", "type": "integer", "handle": 5, ' +
  '"map": "ipv4_addr . inet_service", "flags": ["interval"], "elem": [[{"range": [0, 2]}, {"concat": ["192.0.2.21", 8080]}], ' +
  '[3, {"concat": ["192.0.2.23", 8080]}], [2147483648, {"concat": ["192.0.2.22", 8080]}]]}}, ' +
  '{"map": {"family": "inet", "name": "svc6_udp_20010db8000000000000000000000010_53", "table": "loadfeed", "type": "integer", ' +
  '"handle": 6, "map": "ipv6_addr . inet_service", "flags": ["interval"], "elem": [[2147483648, {"concat": ["2001:db8::21", 53]}]]}}, ' +
  '{"chain": {"family": "inet", "table": "loadfeed", "name": "services", "handle": 1}}, ' +
  '{"chain": {"family": "inet", "table": "loadfeed", "name": "prerouting", "handle": 2, "type": "nat", "hook": "prerouting", ' +
  '"prio": -100, "policy": "accept"}}, ' +
  '{"chain": {"family": "inet", "table": "loadfeed", "name": "output", "handle": 3, "type": "nat", "hook": "output", "prio": -100, ' +
  '"policy": "accept"}}, ' +
  '{"rule": {"family": "inet", "table": "loadfeed", "chain": "services", "handle": 7, "expr": [' +
  '{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.0.2.10"}}, ' +
  '{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, ' +
  '{"dnat": {"family": "ip", "addr": {"map": {"key": {"numgen": {"mode": "random", "mod": 4, "offset": 0}}, ' +
  '"data": "@svc4_tcp_c000020a_80"}}}}]}}, ' +
  '{"rule": {"family": "inet", "table": "loadfeed", "chain": "prerouting", "handle": 8, "expr": [' +
  '{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, {"jump": {"target": "services"}}]}}, ' +
  '{"rule": {"family": "inet", "table": "loadfeed", "chain": "output", "handle": 9, "expr": [' +
  '{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, {"jump": {"target": "services"}}]}}]}\n';

const STATE: NftService[] = [
  { key: { protocol: 'tcp', family: 'ip', host: '192.0.2.10', port: 443 }, destinations: [] },
  {
    key: { protocol: 'tcp', family: 'ip', host: '192.0.2.10', port: 80 },
    destinations: [
      { host: '192.0.2.21', port: 8080, weight: 3 },
      { host: '192.0.2.22', port: 8080, weight: 0 },
      { host: '192.0.2.23', port: 8080, weight: 1 },
    ],
  },
  {
    key: { protocol: 'udp', family: 'ip6', host: '2001:db8::10', port: 53 },
    destinations: [{ host: '2001:db8::21', port: 53, weight: 0 }],
  },
];

test('the captured table reads back as the state that was written', (t) => {
  t.deepEqual(parseNftRuleset(CAPTURED, 'loadfeed'), STATE);
  t.deepEqual(parseNftRuleset(CAPTURED, 'other'), [], 'another table name: nothing of ours');
});

test('the script for that state (what the engine piped to nft -f -)', (t) => {
  t.is(
    renderNftScript('loadfeed', STATE),
    [
      'add table inet loadfeed',
      'delete table inet loadfeed',
      'table inet loadfeed {',
      '\tmap svc4_tcp_c000020a_443 {',
      '\t\ttypeof numgen random mod 2 : ip daddr . tcp dport',
      '\t\tflags interval',
      '\t}',
      '\tmap svc4_tcp_c000020a_80 {',
      '\t\ttypeof numgen random mod 2 : ip daddr . tcp dport',
      '\t\tflags interval',
      '\t\telements = { 0-2 : 192.0.2.21 . 8080, 2147483648 : 192.0.2.22 . 8080, 3 : 192.0.2.23 . 8080 }',
      '\t}',
      '\tmap svc6_udp_20010db8000000000000000000000010_53 {',
      '\t\ttypeof numgen random mod 2 : ip6 daddr . udp dport',
      '\t\tflags interval',
      '\t\telements = { 2147483648 : 2001:db8::21 . 53 }',
      '\t}',
      '\tchain services {',
      '\t\tip daddr 192.0.2.10 tcp dport 80 dnat ip to numgen random mod 4 map @svc4_tcp_c000020a_80',
      '\t}',
      '\tchain prerouting {',
      '\t\ttype nat hook prerouting priority -100; policy accept;',
      '\t\tct state new jump services',
      '\t}',
      '\tchain output {',
      '\t\ttype nat hook output priority -100; policy accept;',
      '\t\tct state new jump services',
      '\t}',
      '}',
      '',
    ].join('\n'),
  );
  t.throws(() => renderNftScript('bad name', STATE), { instanceOf: UnsupportedError });
});

test('weights become contiguous ranges of the modulus; weight 0 a key it never draws', (t) => {
  const service = (weights: number[]): NftService => ({
    key: { protocol: 'tcp', family: 'ip', host: '192.0.2.10', port: 80 },
    destinations: weights.map((weight, i) => ({ host: `192.0.2.${i + 1}`, port: 80, weight })),
  });
  const ranges = (weights: number[]): Array<[number, number]> =>
    nftMapElements(service(weights)).elements.map((e) => [e.from, e.to]);
  t.deepEqual(ranges([1, 2, 3]), [
    [0, 0],
    [1, 2],
    [3, 5],
  ]);
  t.deepEqual(ranges([0, 65535, 0, 1]), [
    [NFT_ZERO_WEIGHT_KEY_BASE, NFT_ZERO_WEIGHT_KEY_BASE],
    [0, 65534],
    [NFT_ZERO_WEIGHT_KEY_BASE + 1, NFT_ZERO_WEIGHT_KEY_BASE + 1],
    [65535, 65535],
  ]);
  t.is(nftMapElements(service([0, 0])).total, 0);
  t.is(nftMapElements(service([])).total, 0);
  t.throws(() => nftMapElements(service(new Array<number>(32_769).fill(65_535))), { instanceOf: UnsupportedError });
});

test('map names carry the service address both ways', (t) => {
  for (const address of ['tcp 192.0.2.10:80', 'udp 0.0.0.1:65535', 'tcp [2001:db8::1]:443', 'udp [::]:1', 'tcp [::ffff:192.0.2.1]:8']) {
    const key = parseNftServiceAddress(address);
    t.deepEqual(parseNftMapName(nftMapName(key)), key, address);
  }
  t.is(nftMapName(parseNftServiceAddress('tcp [2001:DB8:0:0::1]:443')), 'svc6_tcp_20010db8000000000000000000000001_443');
  for (const name of ['services', 'svc4_tcp_c000020a', 'svc4_sctp_c000020a_80', 'svc6_tcp_c000020a_80', 'svc4_tcp_c000020a_0', 'svc4_tcp_c000020a_70000']) {
    t.is(parseNftMapName(name), null, name);
  }
});

// Hand-edited nft JSON: any shape goes, that is the point of these cases.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;
type Items = Array<Record<string, Loose>>;

/** Change the captured JSON: `edit` gets its parsed form. */
function edited(edit: (items: Items) => void): string {
  const document = JSON.parse(CAPTURED) as { nftables: Items };
  edit(document.nftables);
  return JSON.stringify(document);
}
const mapNamed = (items: Items, name: string): Loose => items.find((i) => i.map?.name === name)?.map;
const serviceRule = (items: Items): Loose => items.find((i) => i.rule?.chain === 'services')?.rule;
const MAP80 = 'svc4_tcp_c000020a_80';

test('tables that break the layout are refused, saying where', (t) => {
  const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['not JSON', '{"nftables": [', /not JSON/],
    ['no nftables array', '{"other": []}', /no "nftables" array/],
    ['modulus differs', edited((items) => (serviceRule(items).expr[2].dnat.addr.map.key.numgen.mod = 5)), /cover 0\.\.3 but the rule draws mod 5/],
    ['range gap', edited((items) => (mapNamed(items, MAP80).elem[1][0] = 4)), /do not cover 0\.\.3 one after another \(at 4-4\)/],
    ['no rule but weights', edited((items) => items.splice(items.findIndex((i) => i.rule?.chain === 'services'), 1)), /there is no rule/],
    ['rule without its map', edited((items) => items.splice(items.findIndex((i) => i.map?.name === MAP80), 1)), /uses map svc4_tcp_c000020a_80, which the table does not have/],
    ['rule for another address', edited((items) => (serviceRule(items).expr[0].match.right = '192.0.2.11')), /not that service's/],
    ['duplicate destination', edited((items) => (mapNamed(items, MAP80).elem[1][1].concat = ['192.0.2.21', 8080])), /appears twice/],
    ['weight-0 key as a range', edited((items) => (mapNamed(items, MAP80).elem[2][0] = { range: [2147483648, 2147483649] })), /weight-0 key is a range/],
    ['wrong map type', edited((items) => (mapNamed(items, MAP80).map = 'ipv4_addr')), /expected integer : ipv4_addr \. inet_service/],
    ['IPv6 value in an IPv4 map', edited((items) => (mapNamed(items, MAP80).elem[1][1].concat = ['2001:db8::1', 80])), /not of the service's family/],
    ['bad element', edited((items) => (mapNamed(items, MAP80).elem[0] = ['x', 1])), /element 1: expected an integer or range/],
    ['numgen offset', edited((items) => (serviceRule(items).expr[2].dnat.addr.map.key.numgen.offset = 1)), /offset is not 0/],
  ];
  for (const [name, text, message] of cases) {
    const error = t.throws(() => parseNftRuleset(text, 'loadfeed'), { instanceOf: MalformedReplyError }, name);
    t.regex(error?.message ?? '', message, name);
  }
});

test('maps and rules the engine does not write are ignored', (t) => {
  const text = edited((items) => {
    items.push({ map: { family: 'inet', table: 'loadfeed', name: 'someone_else', type: 'ipv4_addr', map: 'mark', elem: [] } });
    items.push({ rule: { family: 'inet', table: 'loadfeed', chain: 'services', handle: 99, expr: [{ counter: { packets: 0, bytes: 0 } }] } });
  });
  t.deepEqual(parseNftRuleset(text, 'loadfeed'), STATE);
});

/** The JSON nft 1.0.6 prints for a table the engine wrote, built from the state (see CAPTURED for the real thing). */
function asNftJson(services: readonly NftService[]): string {
  const items: unknown[] = [{ table: { family: 'inet', name: 'loadfeed', handle: 1 } }];
  for (const service of services) {
    const name = nftMapName(service.key);
    const { elements, total } = nftMapElements(service);
    items.push({
      map: {
        family: 'inet',
        name,
        table: 'loadfeed',
        type: 'integer',
        map: service.key.family === 'ip' ? 'ipv4_addr . inet_service' : 'ipv6_addr . inet_service',
        flags: ['interval'],
        ...(elements.length === 0
          ? {}
          : { elem: elements.map((e) => [e.from === e.to ? e.from : { range: [e.from, e.to] }, { concat: [e.host, e.port] }]) }),
      },
    });
    if (total > 0) {
      items.push({
        rule: {
          family: 'inet',
          table: 'loadfeed',
          chain: 'services',
          expr: [
            { match: { op: '==', left: { payload: { protocol: service.key.family, field: 'daddr' } }, right: service.key.host } },
            { match: { op: '==', left: { payload: { protocol: service.key.protocol, field: 'dport' } }, right: service.key.port } },
            { dnat: { family: service.key.family, addr: { map: { key: { numgen: { mode: 'random', mod: total, offset: 0 } }, data: `@${name}` } } } },
          ],
        },
      });
    }
  }
  return JSON.stringify({ nftables: items });
}

test('property: any state reads back as written', (t) => {
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
  const service = fc
    .record({
      protocol: fc.constantFrom('tcp' as const, 'udp' as const),
      vip: ipv4,
      port: fc.integer({ min: 1, max: 65535 }),
      destinations: fc.uniqueArray(fc.record({ host: ipv4, port: fc.integer({ min: 1, max: 65535 }), weight: fc.integer({ min: 0, max: 65535 }) }), {
        maxLength: 8,
        selector: (d) => `${d.host}:${d.port}`,
      }),
    })
    .map(
      (s): NftService => ({
        key: { protocol: s.protocol, family: 'ip', host: s.vip, port: s.port },
        destinations: s.destinations,
      }),
    );
  const services = fc.uniqueArray(service, { maxLength: 5, selector: (s) => nftMapName(s.key) });
  fc.assert(
    fc.property(services, (state) => {
      const sorted = sortNftServices(state);
      t.deepEqual(parseNftRuleset(asNftJson(sorted), 'loadfeed'), sorted);
    }),
  );
});

const S = 'tcp 192.0.2.10:80';
const op = {
  addService: (address = S, scheduler?: string): EngineOp => ({ op: 'add-service', service: { address, ...(scheduler === undefined ? {} : { scheduler }) } }),
  add: (destination: string, weight: number, service = S): EngineOp => ({ op: 'add-destination', service, destination, weight }),
  set: (destination: string, weight: number, service = S): EngineOp => ({ op: 'set-weight', service, destination, weight }),
  remove: (destination: string, service = S): EngineOp => ({ op: 'remove-destination', service, destination }),
};

test('ops apply in order on the model, up to the first that cannot apply', (t) => {
  const plan = applyNftSteps(
    [],
    compileNftSteps([op.addService(), op.add('192.0.2.22:80', 1), op.add('192.0.2.21:80', 2), op.set('192.0.2.22:80', 0), op.set('192.0.2.99:80', 5), op.set('192.0.2.21:80', 9)]),
  );
  t.is(plan.applied, 4);
  t.true(plan.error instanceof UnknownTargetError);
  t.regex(plan.error?.message ?? '', /has no destination "192\.0\.2\.99:80"/);
  t.deepEqual(plan.services, [
    {
      key: { protocol: 'tcp', family: 'ip', host: '192.0.2.10', port: 80 },
      destinations: [
        { host: '192.0.2.21', port: 80, weight: 2 },
        { host: '192.0.2.22', port: 80, weight: 0 },
      ],
    },
  ]);
  const conflicts = applyNftSteps(plan.services, compileNftSteps([op.remove('192.0.2.22:80'), op.add('192.0.2.21:80', 1)]));
  t.is(conflicts.applied, 1);
  t.true(conflicts.error instanceof ConflictError);
  t.is(applyNftSteps(plan.services, compileNftSteps([op.addService()])).error?.code, 'BRIDGE_CONFLICT');
  t.is(applyNftSteps([], compileNftSteps([{ op: 'remove-service', service: S }])).error?.code, 'BRIDGE_UNKNOWN_TARGET');
});

test('addresses are canonical; other schedulers, families and bad addresses are refused before anything applies', (t) => {
  const [step] = compileNftSteps([op.add('[2001:DB8:0::21]:8080', 1, 'udp [2001:db8::0:10]:53')]);
  t.like(step, { key: { protocol: 'udp', family: 'ip6', host: '2001:db8::10', port: 53 }, host: '2001:db8::21', port: 8080 });
  t.throws(() => compileNftSteps([op.addService(S, 'wrr')]), { instanceOf: UnsupportedError, message: /only scheduler is "random"/ });
  t.notThrows(() => compileNftSteps([op.addService(S, 'random')]));
  t.throws(() => compileNftSteps([op.add('[2001:db8::1]:80', 1)]), { instanceOf: UnsupportedError, message: /IPv4 service needs IPv4/ });
  for (const bad of ['tcp 192.0.2.10', 'sctp 192.0.2.10:80', 'tcp 192.0.2.10:0', 'tcp 300.0.0.1:80']) {
    t.throws(() => compileNftSteps([op.addService(bad)]), { instanceOf: AddressError }, bad);
  }
  t.throws(() => compileNftSteps([op.add('192.0.2.1:0', 1)]), { instanceOf: AddressError });
});
