import test from 'ava';
import { AgentError, acceptsPerSecond, parseSnmp, parseSockstat } from '@loadfeed/agent';
import { fixtureText } from './fixture-tree.js';

test('parseSockstat reads TCP inuse from sockstat and TCP6 inuse from sockstat6 (real captures)', (t) => {
  t.is(parseSockstat(fixtureText('proc/net/sockstat')), Number(/^TCP: inuse (\d+)/m.exec(fixtureText('proc/net/sockstat'))?.[1]));
  t.is(parseSockstat(fixtureText('proc/net/sockstat6'), '/proc/net/sockstat6'), 0);
});

test('parseSnmp pairs the Tcp header line with its value line (real capture)', (t) => {
  const text = fixtureText('proc/net/snmp');
  const lines = text.split('\n').filter((l) => l.startsWith('Tcp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const expect = (name: string): number => Number(values[names.indexOf(name)]);
  t.deepEqual(parseSnmp(text), { currEstab: expect('CurrEstab'), passiveOpens: expect('PassiveOpens'), activeOpens: expect('ActiveOpens') });
  t.true(expect('PassiveOpens') > 0);
});

test('acceptsPerSecond: PassiveOpens delta over the window; null when the counter went backwards', (t) => {
  t.is(acceptsPerSecond(100, 150, 500), 100);
  t.is(acceptsPerSecond(100, 100, 1000), 0);
  t.is(acceptsPerSecond(150, 100, 1000), null);
});

const SNMP_HEADER = 'Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab';
const malformed: readonly { name: string; parse: () => unknown; message: RegExp }[] = [
  { name: 'sockstat empty', parse: () => parseSockstat(''), message: /\/proc\/net\/sockstat: empty file/ },
  { name: 'sockstat without a TCP line', parse: () => parseSockstat('sockets: used 10\nUDP: inuse 0 mem 0\n'), message: /no TCP line/ },
  { name: 'sockstat TCP line without inuse', parse: () => parseSockstat('TCP: orphan 0 tw 6\n'), message: /no inuse in line/ },
  { name: 'sockstat truncated', parse: () => parseSockstat('TCP: inuse\n'), message: /truncated line "TCP: inuse"/ },
  { name: 'sockstat non-numeric', parse: () => parseSockstat('TCP: inuse many orphan 0\n'), message: /bad value "many"/ },
  { name: 'snmp empty', parse: () => parseSnmp(''), message: /\/proc\/net\/snmp: empty file/ },
  { name: 'snmp without Tcp lines', parse: () => parseSnmp('Ip: Forwarding\nIp: 2\n'), message: /no Tcp lines/ },
  { name: 'snmp truncated after the header', parse: () => parseSnmp(`${SNMP_HEADER}\n`), message: /Tcp header without a value line/ },
  { name: 'snmp value line too short', parse: () => parseSnmp(`${SNMP_HEADER}\nTcp: 1 200 120000 -1 5 7\n`), message: /has 10 fields/ },
  { name: 'snmp non-numeric', parse: () => parseSnmp(`${SNMP_HEADER}\nTcp: 1 200 120000 -1 5 x7 0 0 3\n`), message: /bad value "x7"/ },
  { name: 'snmp without CurrEstab', parse: () => parseSnmp('Tcp: ActiveOpens PassiveOpens\nTcp: 1 2\n'), message: /no CurrEstab/ },
];
for (const { name, parse, message } of malformed) {
  test(`TCP totals reject malformed input: ${name}`, (t) => {
    const err = t.throws(parse, { instanceOf: AgentError, message });
    t.is(err?.code, 'AGENT_PROC_PARSE');
  });
}

test('parseSnmp accepts the signed MaxConn (-1)', (t) => {
  t.deepEqual(parseSnmp(`${SNMP_HEADER}\nTcp: 1 200 120000 -1 5 7 0 0 3\n`), { currEstab: 3, passiveOpens: 7, activeOpens: 5 });
});
