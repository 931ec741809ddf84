import test from 'ava';
import { AgentError, HostFiles, parseLoadavg, parseMeminfo, parsePressure, parseSnmp, parseSockstat } from '@loadfeed/agent';
import { copyFixtureTree, fixtureProc, fixtureText, type TreeCopy } from './fixture-tree.js';

function hostFiles(t: { teardown(fn: () => unknown): void }, procRoot: string): HostFiles {
  const files = new HostFiles(procRoot);
  t.teardown(() => files.close());
  return files;
}

async function tree(t: { teardown(fn: () => unknown): void }): Promise<TreeCopy> {
  const copy = await copyFixtureTree();
  t.teardown(() => copy.cleanup());
  return copy;
}

test('HostFiles reads meminfo, loadavg, the TCP totals and pressure under <procRoot> (real capture)', (t) => {
  const files = hostFiles(t, fixtureProc);
  t.deepEqual(files.meminfo(), parseMeminfo(fixtureText('proc/meminfo')));
  t.deepEqual(files.loadavg(), parseLoadavg(fixtureText('proc/loadavg')));
  t.is(files.tcpInuse(), parseSockstat(fixtureText('proc/net/sockstat')) + parseSockstat(fixtureText('proc/net/sockstat6')));
  t.deepEqual(files.tcpSnmp(), parseSnmp(fixtureText('proc/net/snmp')));
  t.deepEqual(files.pressure('cpu'), parsePressure(fixtureText('proc/pressure/cpu')));
  t.is(files.pressure('memory')?.someAvg10, 0);
});

test('HostFiles: no sockstat6 (no IPv6) counts IPv4 alone; no /proc/pressure (no PSI) is null, not 0', async (t) => {
  const copy = await tree(t);
  await copy.remove('proc/net/sockstat6');
  await copy.remove('proc/pressure');
  const files = hostFiles(t, copy.procRoot);
  t.is(files.tcpInuse(), parseSockstat(fixtureText('proc/net/sockstat')));
  t.is(files.pressure('io'), null);
});

test('HostFiles re-reads a held file from its start: every read sees the file as it is now', async (t) => {
  const copy = await tree(t);
  const files = hostFiles(t, copy.procRoot);
  t.is(files.loadavg().load1, 0.19);
  await copy.write('proc/loadavg', '3.50 0.14 0.09 7/86 4667\n');
  t.like(files.loadavg(), { load1: 3.5, runnable: 7 });
  await copy.write('proc/loadavg', '0.01 0.14 0.09 1/86 4667\n'); // shorter than the previous text: nothing of it is left over
  t.deepEqual(files.loadavg(), { load1: 0.01, load5: 0.14, load15: 0.09, runnable: 1, tasks: 86 });
});

test('HostFiles: a file that cannot be opened is tried again at the next read; bad text is a parse error naming the file', async (t) => {
  const copy = await tree(t);
  await copy.remove('proc/net/snmp');
  const files = hostFiles(t, copy.procRoot);
  t.throws(() => files.tcpSnmp(), { code: 'ENOENT' });
  await copy.write('proc/net/snmp', fixtureText('proc/net/snmp'));
  t.deepEqual(files.tcpSnmp(), parseSnmp(fixtureText('proc/net/snmp')));
  await copy.write('proc/net/snmp', 'Ip: 1\n');
  const err = t.throws(() => files.tcpSnmp(), { instanceOf: AgentError, message: /net\/snmp: no Tcp lines/ });
  t.is(err?.code, 'AGENT_PROC_PARSE');
});
