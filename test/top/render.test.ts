// `loadfeed top`'s screen as a pure function of the status document and the
// terminal width.
import test from 'ava';
import { renderTop, topSummary } from '@loadfeed/poller';
import { cluster, decision, doc, node } from './fixture.js';

const rowsOf = (screen: string): string[] => screen.split('\n').filter((l) => /^web-\d /.test(l));
const names = (screen: string): string[] => rowsOf(screen).map((l) => l.split(' ')[0] ?? '');
const widest = (screen: string): number => Math.max(...screen.split('\n').map((l) => [...l].length));

test('80 columns: title, cluster totals, one row per server with every column, nothing wider than the terminal', (t) => {
  const screen = renderTop(cluster(), 80, { source: '127.0.0.1:7416' });
  t.log(`\n${screen}`);
  t.true(widest(screen) <= 80, `widest line ${widest(screen)}`);
  const lines = screen.split('\n');
  t.is(lines[0], 'loadfeed top  127.0.0.1:7416  ok  12:00:01Z  sort cpu ▼');
  t.is(lines[1], 'nodes 2 (2 live)  cpu 50% of 8 cores  mem 23%  conns 24  weight 120');
  t.true(lines.includes('web  tcp 10.0.0.100:80  fastpath  3 servers  weight 120'));
  // The metric columns are the catalog's, in its order: cpu, mem, psi (the highest of three).
  t.regex(screen, /^NAME +ADDRESS +STATE +CPU +MEM +PSI +CONN +WEIGHT +SHARE/m);
  t.deepEqual(
    rowsOf(screen).map((l) => l.split(/ +/).slice(0, 9)),
    [
      ['web-1', '10.0.0.1:80', 'live', '90%', '40%', '5.0%', '12', '20', '17%'],
      ['web-2', '10.0.0.2:80', 'slow-start', '10%', '5.0%', '30%', '12', '100', '83%'],
      ['web-3', '10.0.0.3:80', 'absent', '-', '-', '-', '-', '0', '0%'],
    ],
  );
  t.is(lines.at(-2), 'keys: c m p n w s a sort (cpu mem psi conn weight share name)  r reverse  q quit');
});

test('sorting: by each key, descending by default, names ascending, unknown values last either way', (t) => {
  const d = cluster();
  t.deepEqual(names(renderTop(d, 80)), ['web-1', 'web-2', 'web-3'], 'cpu');
  t.deepEqual(names(renderTop(d, 80, { sort: 'weight' })), ['web-2', 'web-1', 'web-3']);
  t.deepEqual(names(renderTop(d, 80, { sort: 'share', reverse: true })), ['web-3', 'web-1', 'web-2']);
  t.deepEqual(names(renderTop(d, 80, { sort: 'cpu', reverse: true })), ['web-2', 'web-1', 'web-3'], 'no CPU stays last');
  t.deepEqual(names(renderTop(d, 80, { sort: 'psi' })), ['web-2', 'web-1', 'web-3']);
  t.deepEqual(names(renderTop(d, 80, { sort: 'mem' })), ['web-1', 'web-2', 'web-3']);
  t.deepEqual(names(renderTop(d, 80, { sort: 'name' })), ['web-1', 'web-2', 'web-3']);
  t.deepEqual(names(renderTop(d, 80, { sort: 'name', reverse: true })), ['web-3', 'web-2', 'web-1']);
  t.regex(renderTop(d, 80, { sort: 'weight' }), /sort weight ▼/);
  t.regex(renderTop(d, 80, { sort: 'weight', reverse: true }), /sort weight ▲/);
});

test('wider terminals also show why each server has its weight', (t) => {
  const screen = renderTop(cluster(), 120);
  t.true(widest(screen) <= 120);
  t.regex(screen, /SHARE WHY/);
  t.regex(screen, /slow-start .* cpu 0\.4 of 4 cores; slow start 80%/);
  t.notRegex(renderTop(cluster(), 80), /slow start 80%/, 'at 80 columns the reason is cut');
});

test('long names and addresses are cut with an ellipsis, never wrapped', (t) => {
  const long = 'a-very-long-node-name-from-a-kubernetes-cluster-0123456789';
  const screen = renderTop(
    doc({ nodes: [node(long, 0.5)], decisions: [decision(long, '[2001:db8:1234:5678:9abc:def0:1234:5678]:8443', 50)] }),
    80,
  );
  t.true(widest(screen) <= 80);
  t.regex(screen, /a-very-long-n\S*… /);
  t.regex(screen, /\[2001:db8:\S*…/);
});

test('degraded: the reason under the title; narrow terminals are treated as 60 columns', (t) => {
  const screen = renderTop(doc({ nodes: [node('web-1', 0.5)], decisions: [decision('web-1', '10.0.0.1:80', 100)], refused: true, engineError: 'fastpath: listen EADDRINUSE' }), 60);
  const lines = screen.split('\n');
  t.regex(lines[0] ?? '', / degraded /);
  t.regex(lines[2] ?? '', /^DEGRADED: policy web\.yaml refused: web\.yaml:7: services\[0\]/);
  t.regex(lines[3] ?? '', /^DEGRADED: engine failing: fastpath: listen EADDRINUSE/);
  t.true(widest(screen) <= 60);
  t.true(widest(renderTop(cluster(), 30)) <= 60);
});

test('a short terminal shows what fits and says how much is hidden', (t) => {
  const many = doc({
    nodes: Array.from({ length: 30 }, (_, i) => node(`web-${i}`, i / 30)),
    decisions: Array.from({ length: 30 }, (_, i) => decision(`web-${i}`, `10.0.1.${i}:80`, i + 1)),
  });
  const screen = renderTop(many, 80, { rows: 24 });
  const lines = screen.replace(/\n$/, '').split('\n');
  t.is(lines.length, 24);
  t.regex(lines.at(-2) ?? '', /^… \d+ more lines: a taller terminal shows them$/);
  t.regex(lines.at(-1) ?? '', /^keys:/);
});

test('agents that serve no service get their own section; an empty cluster says so', (t) => {
  const d = doc({ nodes: [node('web-1', 0.5), node('batch-7', 0.7, { state: 'stale' })], decisions: [decision('web-1', '10.0.0.1:80', 100)] });
  const screen = renderTop(d, 80);
  t.regex(screen, /^agents in no service {2}1$/m);
  t.regex(screen, /^batch-7 +batch-7\.example +stale +70%/m);
  t.is(topSummary(d), 'nodes 2 (1 live, 1 stale)  cpu 60% of 8 cores  mem 40%  conns 12  weight 100');
  t.regex(renderTop(doc({ nodes: [], decisions: [] }), 80), /no services in the policy and no agent connected|0 servers/);
});

test('colour is opt-in: plain text unless asked', (t) => {
  t.false(renderTop(cluster(), 80).includes('\x1b['));
  const coloured = renderTop(cluster(), 80, { color: true });
  t.true(coloured.includes('\x1b[1m'), 'bold headings');
  t.regex(coloured, new RegExp(`${String.fromCharCode(0x1b)}\\[31mweb-3 .*absent`), 'a server without an agent in red');
});

test('the application metrics a policy reads get a column before the reason', (t) => {
  const d = doc({
    nodes: [
      node('web-1', 0.05, { namedMetrics: { in_flight: 12, latency_seconds: 0.25 } }),
      node('web-2', 0.05),
    ],
    decisions: [decision('web-1', '10.0.0.1:80', 20, 'live', 'in flight 12 of 8 workers'), decision('web-2', '10.0.0.2:80', 100, 'live', 'no app.in_flight')],
    appMetrics: ['app.in_flight', 'app.latency_seconds'],
  });
  const screen = renderTop(d, 140);
  t.true(widest(screen) <= 140);
  t.regex(screen, /SHARE APP +WHY/);
  t.regex(screen, /^web-1 .* in_flight 12 latency_seconds 0\.25 +in flight 12 of 8 workers/m);
  t.regex(screen, /^web-2 .* in_flight - latency_seconds - +no app\.in_flight/m);
  t.notRegex(renderTop(cluster(), 140), /APP/, 'no column when the policy reads none');
});
