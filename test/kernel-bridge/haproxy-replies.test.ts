// The HAProxy reply parsers, on replies captured from HAProxy 2.6.12 (Debian 12)
// and on malformed ones; the marked-reply reader is also fed one byte at a
// time and in every two-chunk split.
import test from 'ava';
import {
  HaproxyReplyFormatError,
  MarkedReplyReader,
  classifyHaproxyReply,
  markedLine,
  parseMarkedReplies,
  parseServersState,
  parseShowBackend,
  parseShowStat,
  splitCsvLine,
} from '@loadfeed/kernel-bridge';

// `show cli level; set server web/s1 weight 5; show cli level; set server web/s9 weight 5; show cli level;
//  set server web/s1 weight abc; show cli level; set server web/s1 weight 500; show cli level;
//  del server web/q; show cli level; add server web/q 127.0.0.1:4; show cli level; del server web/s1;
//  show cli level` as HAProxy 2.6.12 answered it (captured).
const CAPTURED_BATCH =
  'admin\n\n' +
  '\nadmin\n\n' +
  'No such server.\n\nadmin\n\n' +
  'Empty weight string empty or preceded by garbage\nadmin\n\n' +
  'Absolute weight can only be between 0 and 256 inclusive.\n\nadmin\n\n' +
  'No such server.\nadmin\n\n' +
  'New server registered.\n\nadmin\n\n' +
  'Only servers in maintenance mode can be deleted.\nadmin\n\n';
const CAPTURED_REPLIES = [
  '',
  'No such server.',
  'Empty weight string empty or preceded by garbage',
  'Absolute weight can only be between 0 and 256 inclusive.',
  'No such server.',
  'New server registered.',
  'Only servers in maintenance mode can be deleted.',
];

test('markedLine interleaves the marker around every command', (t) => {
  t.is(markedLine([]), 'show cli level');
  t.is(
    markedLine(['set server a/b weight 1', 'set server a/c weight 2']),
    'show cli level; set server a/b weight 1; show cli level; set server a/c weight 2; show cli level',
  );
});

test('a captured batch answer splits into one reply per command', (t) => {
  t.deepEqual(parseMarkedReplies(CAPTURED_BATCH, 7), { level: 'admin', replies: CAPTURED_REPLIES });
});

test('the reader gives the same replies fed one byte at a time and in any two chunks', (t) => {
  const bytes = Buffer.from(CAPTURED_BATCH);
  const byByte = new MarkedReplyReader(7);
  for (const byte of bytes) byByte.push(Buffer.from([byte]));
  t.deepEqual(byByte.end(), { level: 'admin', replies: CAPTURED_REPLIES });
  for (let cut = 0; cut <= bytes.length; cut++) {
    const reader = new MarkedReplyReader(7);
    reader.push(bytes.subarray(0, cut));
    reader.push(bytes.subarray(cut));
    t.deepEqual(reader.end().replies, CAPTURED_REPLIES, `cut at ${cut}`);
  }
});

test('replies complete so far are available before the end', (t) => {
  const reader = new MarkedReplyReader(2);
  reader.push('admin\n\n\nadmin\n\nNo such ser');
  t.deepEqual(reader.replies, ['']);
  reader.push('ver.\n\nadmin\n\n');
  t.deepEqual(reader.end().replies, ['', 'No such server.']);
});

test('a multi-byte character split between chunks is decoded whole', (t) => {
  const bytes = Buffer.from('admin\n\nserveur « é » inconnu\nadmin\n\n');
  const reader = new MarkedReplyReader(1);
  const split = bytes.indexOf(Buffer.from('é')) + 1;
  reader.push(bytes.subarray(0, split));
  reader.push(bytes.subarray(split));
  t.deepEqual(reader.end().replies, ['serveur « é » inconnu']);
});

test('the level of a user socket is read from the first marker', (t) => {
  t.deepEqual(parseMarkedReplies('user\n\nPermission denied\n\nuser\n\n', 1), {
    level: 'user',
    replies: ['Permission denied'],
  });
});

test('malformed marked answers are refused with what went wrong', (t) => {
  const cases: ReadonlyArray<readonly [string, string, number, RegExp]> = [
    ['empty', '', 1, /without answering/],
    ['no level first', 'Unknown command, but maybe…\nadmin\n\n', 0, /did not answer "show cli level" with a CLI level/],
    ['truncated after one of two', 'admin\n\n\nadmin\n\n', 2, /answered 1 of 2 commands before closing/],
    ['truncated inside a reply', 'admin\n\nNo such serv', 1, /answered 0 of 1 commands, then: No such serv/],
    ['more than asked', 'admin\n\n\nadmin\n\n\nadmin\n\n', 1, /answered 1 of 1 commands, then: admin/],
    ['text after the last marker', 'admin\n\n\nadmin\n\nsurprise\n', 1, /then: surprise/],
  ];
  for (const [name, text, expected, message] of cases) {
    const error = t.throws(() => parseMarkedReplies(text, expected), { instanceOf: HaproxyReplyFormatError }, name);
    t.regex(error?.message ?? '', message, name);
  }
});

test('replies are classified from HAProxy 2.6 messages', (t) => {
  const cases: ReadonlyArray<readonly [string, ReturnType<typeof classifyHaproxyReply>]> = [
    ['', { ok: true }],
    ['New server registered.', { ok: true }],
    ['Server deleted.', { ok: true }],
    ['No such server.', { ok: false, kind: 'no-such-server', message: 'No such server.' }],
    ['No such backend.', { ok: false, kind: 'no-such-backend', message: 'No such backend.' }],
    ['Permission denied', { ok: false, kind: 'permission-denied', message: 'Permission denied' }],
    [
      'Already exists a server with the same name in backend.',
      { ok: false, kind: 'server-exists', message: 'Already exists a server with the same name in backend.' },
    ],
    [
      'Server still has connections attached to it, cannot remove it.',
      { ok: false, kind: 'server-busy', message: 'Server still has connections attached to it, cannot remove it.' },
    ],
    [
      'Backend must use a dynamic load balancing to support dynamic servers.',
      { ok: false, kind: 'not-dynamic', message: 'Backend must use a dynamic load balancing to support dynamic servers.' },
    ],
    [
      'Absolute weight can only be between 0 and 256 inclusive.',
      { ok: false, kind: 'other', message: 'Absolute weight can only be between 0 and 256 inclusive.' },
    ],
    ['No such server. Really', { ok: false, kind: 'other', message: 'No such server. Really' }],
  ];
  for (const [reply, outcome] of cases) t.deepEqual(classifyHaproxyReply(reply), outcome, JSON.stringify(reply));
});

const STATE_HEADER =
  '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight ' +
  'srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state ' +
  'bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr ' +
  'srv_agent_addr srv_agent_port';

test('show servers state: version 1, the header, one line per server (captured)', (t) => {
  const text =
    `1\n${STATE_HEADER}\n` +
    '3 b 1 s1 127.0.0.1 2 0 50 10 3 1 0 2 0 0 0 0 - 18081 - 0 0 - - 0\n' +
    '3 b 3 127.0.0.1:18083 127.0.0.1 0 1 5 5 1 1 0 0 0 0 0 0 - 18083 - 0 0 - - 0\n\n';
  t.deepEqual(parseServersState(text), [
    {
      backendId: 3,
      backend: 'b',
      serverId: 1,
      server: 's1',
      address: '127.0.0.1',
      port: 18081,
      operationalState: 2,
      adminState: 0,
      userWeight: 50,
      initialWeight: 10,
    },
    {
      backendId: 3,
      backend: 'b',
      serverId: 3,
      server: '127.0.0.1:18083',
      address: '127.0.0.1',
      port: 18083,
      operationalState: 0,
      adminState: 1,
      userWeight: 5,
      initialWeight: 5,
    },
  ]);
  t.deepEqual(parseServersState(`1\n${STATE_HEADER}\n\n`), [], 'no servers');
});

test('show servers state: malformed input is refused', (t) => {
  const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['empty', '', /empty reply/],
    ['other version', `2\n${STATE_HEADER}\n`, /format version "2", expected 1/],
    ['no header', '1\n3 b 1 s1 127.0.0.1 2 0 50 10\n', /header field 1 is "", expected be_id/],
    ['moved column', `1\n${STATE_HEADER.replace('srv_uweight srv_iweight', 'srv_iweight srv_uweight')}\n`, /field 8 .* srv_uweight/],
    ['truncated line', `1\n${STATE_HEADER}\n3 b 1 s1 127.0.0.1 2 0 50\n`, /line 3: 8 fields, expected 25/],
    ['bad number', `1\n${STATE_HEADER}\n3 b 1 s1 127.0.0.1 2 0 fifty 10 3 1 0 2 0 0 0 0 - 18081 - 0 0 - - 0\n`, /srv_uweight: "fifty"/],
    ['error text', 'Permission denied\n\n', /format version "Permission denied"/],
  ];
  for (const [name, text, message] of cases) {
    const error = t.throws(() => parseServersState(text), { instanceOf: HaproxyReplyFormatError }, name);
    t.regex(error?.message ?? '', message, name);
  }
});

test('show backend', (t) => {
  t.deepEqual(parseShowBackend('# name\nb\nempty\nsrc\n\n'), ['b', 'empty', 'src']);
  t.deepEqual(parseShowBackend('# name\n\n'), []);
  t.throws(() => parseShowBackend('Unknown command\n'), { instanceOf: HaproxyReplyFormatError });
  t.throws(() => parseShowBackend(''), { instanceOf: HaproxyReplyFormatError });
});

// Captured from `show stat -1 6 -1` (backends and servers), trimmed to a few
// columns in the order HAProxy 2.6 writes them plus columns it does not have,
// which must not matter.
const STAT_HEADER = '# pxname,svname,qcur,scur,slim,stot,status,weight,type,check_desc,algo,uweight,newcolumn,';
test('show stat: backends in order with their servers; frontends left out', (t) => {
  const text =
    `${STAT_HEADER}\n` +
    'fe,FRONTEND,,0,9985,0,OPEN,,0,,,,x,\n' +
    'b,s1,0,2,4294967295,7,UP,10,2,"Layer4 check passed, ok",,10,x,\n' +
    'b,127.0.0.1:18083,0,0,,0,MAINT,5,2,,,5,x,\n' +
    'b,BACKEND,0,2,999,7,UP,25,1,,roundrobin,25,x,\n' +
    'empty,BACKEND,0,0,1,0,DOWN,0,1,,leastconn,0,x,\n' +
    'stats,BACKEND,0,0,1,0,UP,0,1,,roundrobin,0,x,\n\n';
  t.deepEqual(parseShowStat(text), [
    {
      name: 'b',
      algorithm: 'roundrobin',
      servers: [
        { name: 's1', weight: 10, currentSessions: 2, totalSessions: 7, maxConnections: 4294967295, status: 'UP' },
        { name: '127.0.0.1:18083', weight: 5, currentSessions: 0, totalSessions: 0, maxConnections: 0, status: 'MAINT' },
      ],
    },
    { name: 'empty', algorithm: 'leastconn', servers: [] },
    { name: 'stats', algorithm: 'roundrobin', servers: [] },
  ]);
  t.deepEqual(parseShowStat(`${STAT_HEADER}\n\n`), [], 'nothing but the header');
});

test('show stat: malformed input is refused', (t) => {
  const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['empty', '', /header ""/],
    ['error text', 'Permission denied\n\n', /header "Permission denied"/],
    ['no uweight (HAProxy before 2.5)', '# pxname,svname,scur,slim,stot,status,type,algo,\n', /no "uweight" column/],
    ['truncated line', `${STAT_HEADER}\nb,s1,0,2\n`, /line 2: 4 fields/],
    ['bad counter', `${STAT_HEADER}\nb,s1,0,two,,7,UP,10,2,,,10,x,\n`, /line 2 scur: "two"/],
    ['unterminated quote', `${STAT_HEADER}\nb,s1,0,2,,7,UP,10,2,"oops,,10,x,\n`, /unterminated quoted CSV field/],
  ];
  for (const [name, text, message] of cases) {
    const error = t.throws(() => parseShowStat(text), { instanceOf: HaproxyReplyFormatError }, name);
    t.regex(error?.message ?? '', message, name);
  }
});

test('CSV lines split as HAProxy quotes them', (t) => {
  t.deepEqual(splitCsvLine('a,b,,c,'), ['a', 'b', '', 'c', '']);
  t.deepEqual(splitCsvLine(''), ['']);
  t.deepEqual(splitCsvLine('"x, y",z'), ['x, y', 'z']);
  t.deepEqual(splitCsvLine('"say ""hi""",'), ['say "hi"', '']);
  t.throws(() => splitCsvLine('"a"b'), { instanceOf: HaproxyReplyFormatError, message: /expected ","/ });
});
