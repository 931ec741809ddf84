// From engine ops to HAProxy commands (pure): what is written, what is left
// out because it is in force already, where the plan stops, and how commands
// are grouped into lines.
import test from 'ava';
import {
  AddressError,
  ConflictError,
  ConnectionLimitError,
  UnknownTargetError,
  UnsupportedError,
  checkHaproxyOps,
  groupHaproxyLines,
  haproxyCommandBytes,
  planHaproxyCommands,
  serverNamedByAddress,
  type EngineOp,
  type HaproxyPlannedOp,
  type HaproxyStatBackend,
} from '@loadfeed/kernel-bridge';

const server = (name: string, weight: number, maxConnections = 0): HaproxyStatBackend['servers'][number] => ({
  name,
  weight,
  maxConnections,
  currentSessions: 0,
  totalSessions: 0,
  status: 'UP',
});
const BACKENDS: HaproxyStatBackend[] = [
  { name: 'web', algorithm: 'roundrobin', servers: [server('s1', 10), server('s2', 10, 50)] },
  { name: 'api', algorithm: 'leastconn', servers: [] },
];
const setWeight = (destination: string, weight: number, extra: { maxConnections?: number; service?: string } = {}): EngineOp => ({
  op: 'set-weight',
  service: extra.service ?? 'web',
  destination,
  weight,
  ...(extra.maxConnections === undefined ? {} : { maxConnections: extra.maxConnections }),
});
const commandsOf = (ops: readonly HaproxyPlannedOp[]): string[][] => ops.map((op) => [...op.commands]);
const plan = (ops: readonly EngineOp[]) => planHaproxyCommands(ops, BACKENDS, serverNamedByAddress);

test('weights and limits are written only where they change', (t) => {
  const result = plan([
    setWeight('s1', 20),
    setWeight('s2', 10),
    setWeight('s2', 10, { maxConnections: 50 }),
    setWeight('s2', 10, { maxConnections: 0 }),
    setWeight('s1', 20, { maxConnections: 7 }),
  ]);
  t.is(result.error, null);
  t.deepEqual(commandsOf(result.ops), [
    ['set server web/s1 weight 20'],
    ['set maxconn server web/s2 0'],
    ['set maxconn server web/s1 7'],
  ]);
  t.deepEqual(
    result.ops.map((op) => [op.index, op.backend, op.endsLine]),
    [
      [0, 'web', false],
      [3, 'web', false],
      [4, 'web', false],
    ],
  );
  t.deepEqual(commandsOf(plan([setWeight('s1', 10), setWeight('s2', 10)]).ops), [], 'nothing changes');
});

test('the plan stops at the first op that cannot apply, keeping the ops before it', (t) => {
  const cases: ReadonlyArray<readonly [string, EngineOp, new (...args: never[]) => Error, RegExp]> = [
    ['unknown server', setWeight('s9', 1), UnknownTargetError, /backend "web" has no server "s9"/],
    ['unknown backend', setWeight('s1', 1, { service: 'nope' }), UnknownTargetError, /no HAProxy backend "nope"/],
    [
      'server exists',
      { op: 'add-destination', service: 'web', destination: 's2', weight: 1 },
      ConflictError,
      /has server "s2" already/,
    ],
    ['remove unknown', { op: 'remove-destination', service: 'web', destination: 's9' }, UnknownTargetError, /"s9"/],
    ['add-service', { op: 'add-service', service: { address: 'new' } }, UnsupportedError, /haproxy\.cfg/],
    ['remove-service', { op: 'remove-service', service: 'api' }, UnsupportedError, /haproxy\.cfg/],
    ['remove unknown service', { op: 'remove-service', service: 'nope' }, UnknownTargetError, /"nope"/],
    [
      'server not named by an address',
      { op: 'add-destination', service: 'web', destination: 'web3', weight: 1 },
      UnsupportedError,
      /IPv4 address .* resolveServer/,
    ],
  ];
  for (const [name, failing, type, message] of cases) {
    const result = plan([setWeight('s1', 30), failing, setWeight('s2', 40)]);
    t.deepEqual(commandsOf(result.ops), [['set server web/s1 weight 30']], name);
    t.true(result.error instanceof type, name);
    t.regex(result.error?.message ?? '', message, name);
  }
});

test('servers are added ready and removed through maintenance, each ending its line', (t) => {
  const result = plan([
    { op: 'add-destination', service: 'api', destination: '10.0.0.1:8080', weight: 0 },
    { op: 'remove-destination', service: 'web', destination: 's1' },
    { op: 'add-destination', service: 'web', destination: 's1', weight: 3 },
  ]);
  t.true(result.error instanceof UnsupportedError, 's1 is not an address: the default resolver refuses it');
  t.deepEqual(commandsOf(result.ops), [
    ['add server api/10.0.0.1:8080 10.0.0.1:8080 weight 0', 'set server api/10.0.0.1:8080 state ready'],
    ['set server web/s1 state maint', 'del server web/s1'],
  ]);
  t.true(result.ops.every((op) => op.endsLine));

  const resolved = planHaproxyCommands(
    [
      { op: 'remove-destination', service: 'web', destination: 's1' },
      { op: 'add-destination', service: 'web', destination: 's1', weight: 3 },
      setWeight('s1', 4),
    ],
    BACKENDS,
    (backend, name) => (backend === 'web' && name === 's1' ? '[2001:db8::1]:80' : 'nowhere'),
  );
  t.is(resolved.error, null);
  t.deepEqual(commandsOf(resolved.ops), [
    ['set server web/s1 state maint', 'del server web/s1'],
    ['add server web/s1 [2001:db8::1]:80 weight 3', 'set server web/s1 state ready'],
    ['set server web/s1 weight 4'],
  ]);
});

test('names that are not HAProxy names and bad limits are refused before anything is planned', (t) => {
  for (const name of ['', 'a b', 'a;b', 'a\nb', 'a/b', 'é', 'x'.repeat(201)]) {
    t.throws(() => checkHaproxyOps([setWeight(name, 1)]), { instanceOf: AddressError }, JSON.stringify(name));
    t.throws(() => checkHaproxyOps([setWeight('s1', 1, { service: name })]), { instanceOf: AddressError });
  }
  t.throws(() => checkHaproxyOps([{ op: 'add-service', service: { address: 'web; shutdown' } }]), { instanceOf: AddressError });
  for (const limit of [-1, 1.5, Number.NaN, 2 ** 31]) {
    const error = t.throws(() => checkHaproxyOps([setWeight('s1', 1, { maxConnections: limit })]), {
      instanceOf: ConnectionLimitError,
    });
    t.is(error?.code, 'BRIDGE_CONNECTION_LIMIT_RANGE');
  }
  t.notThrows(() =>
    checkHaproxyOps([setWeight('10.0.0.1:80', 1, { maxConnections: 0 }), setWeight('a-b_c.d:e', 1, { maxConnections: 2 ** 31 - 1 })]),
  );
});

test('set-weight ops share a line until it would pass the limit; add and remove end theirs', (t) => {
  const op = (index: number, commands: string[], endsLine = false): HaproxyPlannedOp => ({
    index,
    backend: 'web',
    label: `op ${index}`,
    commands,
    endsLine,
  });
  const weight = (i: number): HaproxyPlannedOp => op(i, [`set server web/s${i} weight ${i}`]);
  const indexes = (lines: HaproxyPlannedOp[][]): number[][] => lines.map((line) => line.map((o) => o.index));

  const ops = [weight(0), weight(1), op(2, ['set server web/x state maint', 'del server web/x'], true), weight(3), weight(4)];
  t.deepEqual(indexes(groupHaproxyLines(ops, 15_000)), [[0, 1, 2], [3, 4]]);

  // "show cli level" (14 bytes) + 18 + 26 bytes per command: two fit in 100 bytes, three do not.
  t.is(haproxyCommandBytes('set server web/s0 weight 0'), 44);
  t.deepEqual(indexes(groupHaproxyLines([0, 1, 2, 3, 4].map(weight), 14 + 2 * 44)), [[0, 1], [2, 3], [4]]);
  t.deepEqual(indexes(groupHaproxyLines([0, 1].map(weight), 10)), [[0], [1]], 'an op longer than the limit gets its own line');
  t.deepEqual(groupHaproxyLines([], 100), []);
});
