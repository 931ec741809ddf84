/**
 * bench:poller-retained — the memory the poller's policy path keeps and
 * allocates per server for its latest sample, with bench:poller-scale's
 * policy (services of 100 servers, the default strategy) and its samples.
 * In one process, no sockets: N nodes connect to a node table, then rounds
 * of one decoded sample per node (as ingest hands them on) each followed by
 * the incremental pass over every service that a cycle would make.
 *
 * - retained: heap after a full collection with one sample per server, less
 *   the heap with none, per server; split into what the node table keeps
 *   (after the samples are accepted, before any pass) and what the passes add.
 * - allocated: heap growth over one round (accept + pass) with a young
 *   generation too large to be collected meanwhile, per sample: the garbage
 *   the process has to scavenge, at 1 Hz per agent, every second.
 * - surviving: of that, what is still live at the end of the round (heap
 *   after a young-generation collection, less the heap before the round):
 *   what a sample leaves that lives until the next sample replaces it, so
 *   is copied by the scavenges of that second and promoted.
 *
 * Each repetition runs in a fresh process (with --expose-gc and a large
 * young generation); median of --reps.
 */
import { spawnSync } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AgentMessage, Hello } from '@loadfeed/proto';
import { compilePolicy, defaultEngines, defaultStrategies, NodeTable, WeightEvaluator, type NodeRecord } from '@loadfeed/poller';
import { fmt, median, table } from './lib/measure.js';

const { values } = parseArgs({ options: { agents: { type: 'string', default: '10000' }, 'per-service': { type: 'string', default: '100' }, reps: { type: 'string', default: '5' }, child: { type: 'boolean', default: false } } });
const agents = Number(values.agents);
const perService = Number(values['per-service']);
const reps = Number(values.reps);
const gc = (globalThis as { gc?: (options?: { type: 'minor' }) => void }).gc;
if (values.child && gc === undefined) throw new Error('a repetition runs with node --expose-gc');
/** Young generation large enough for a round of 10,000 samples without a collection. */
const CHILD_NODE_ARGS = ['--expose-gc', '--max-semi-space-size=256'];

const nodeId = (i: number): string => `sim-${i}`;
const lines = ['apiVersion: loadfeed/v1', 'services:'];
for (let s = 0; s * perService < agents; s++) {
  lines.push(`  - name: svc-${s}`, '    engine: memory', `    address: tcp 192.0.2.${1 + (s % 250)}:${1000 + s}`, '    servers:');
  for (let i = s * perService; i < Math.min(agents, (s + 1) * perService); i++) lines.push(`      - { node: ${nodeId(i)}, address: "10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:80" }`);
}
const policy = compilePolicy(lines.join('\n'), '<poller-retained policy>', defaultEngines().limits());

let scavenges = 0;
new PerformanceObserver((list) => (scavenges += list.getEntries().length)).observe({ entryTypes: ['gc'] });

/** A sample as bench:poller-scale's simulated agents send it, decoded from the wire as ingest receives it. */
function decodedSample(seq: number): AgentMessage['sample'] {
  const busy = 0.3 + 0.4 * Math.random();
  const wire = AgentMessage.encode({
    sample: { seq, timestampMs: Date.now(), cpuUtilization: busy, memUtilization: 0.4, load1: 1, runnable: 1, tcpInuse: 100, tcpEstablished: 50, tcpAcceptsPerSecond: 20, services: [{ name: 'web', established: 50 }], windowMs: 1000 },
  }).finish();
  return AgentMessage.decode(wire).sample;
}

function heap(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

interface Rep {
  readonly tableKb: number;
  readonly passesKb: number;
  readonly allocatedKb: number;
  readonly survivingKb: number;
  readonly scavenged: boolean;
}

function once(): Rep {
  let now = 0;
  const table = new NodeTable(60_000, () => undefined, () => now);
  const evaluator = new WeightEvaluator(defaultStrategies());
  const nodes: NodeRecord[] = [];
  for (let i = 0; i < agents; i++) nodes.push(table.connect(Hello.create({ nodeId: nodeId(i), cores: 2, memoryBytes: 4e9, services: [{ name: 'web', port: 80 }] })));
  /** What a cycle keeps: every service's last decisions. */
  const kept = new Map<string, unknown>();
  const pass = (news: ReadonlySet<NodeRecord>): void => {
    const lookup = table.lookup();
    for (const service of policy.services) kept.set(service.name, evaluator.update(service, lookup, now, news).decisions);
  };
  now = 10_000; // past the blackout
  pass(new Set());
  let seq = 0;
  const round = (): void => {
    now += 1000;
    seq += 1;
    for (const node of nodes) table.accept(node, decodedSample(seq) as never);
    pass(new Set(nodes));
  };
  const none = heap();
  now += 1000;
  seq += 1;
  for (const node of nodes) table.accept(node, decodedSample(seq) as never);
  const accepted = heap();
  pass(new Set(nodes));
  for (let r = 0; r < 3; r++) round();
  const settled = heap();
  // The samples are built outside the measured round: they are the transport's garbage, not the poller's.
  const samples = nodes.map(() => decodedSample(seq + 1));
  now += 1000;
  seq += 1;
  const before = heap();
  const scavengesBefore = scavenges;
  nodes.forEach((node, i) => table.accept(node, samples[i] as never));
  pass(new Set(nodes));
  const allocated = process.memoryUsage().heapUsed - before;
  const scavenged = scavenges !== scavengesBefore;
  gc?.({ type: 'minor' });
  const surviving = process.memoryUsage().heapUsed - before;
  kept.clear();
  return { tableKb: (accepted - none) / agents / 1024, passesKb: (settled - accepted) / agents / 1024, allocatedKb: allocated / agents / 1024, survivingKb: surviving / agents / 1024, scavenged };
}

if (values.child) {
  process.stdout.write(`${JSON.stringify(once())}\n`);
  process.exit(0);
}
const runs: Rep[] = [];
for (let r = 0; r < reps; r++) {
  const child = spawnSync(process.execPath, [...CHILD_NODE_ARGS, fileURLToPath(import.meta.url), '--child', '--agents', String(agents), '--per-service', String(perService)], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`repetition ${r + 1} failed: ${child.stderr.slice(0, 2000)}`);
  runs.push(JSON.parse(child.stdout) as Rep);
}
const m = (f: (r: Rep) => number): string => fmt(median(runs.map(f)), 2);
process.stdout.write(`poller-retained: ${agents} servers, ${perService} per service, strategy ${policy.services[0]?.strategy.name}, ${reps} reps (median)\n`);
process.stdout.write(
  table(
    ['KB per server', 'median', 'runs'],
    [
      ['retained: node table (latest sample)', m((r) => r.tableKb), runs.map((r) => fmt(r.tableKb, 2)).join(' ')],
      ['retained: policy passes', m((r) => r.passesKb), runs.map((r) => fmt(r.passesKb, 2)).join(' ')],
      ['retained: total', m((r) => r.tableKb + r.passesKb), runs.map((r) => fmt(r.tableKb + r.passesKb, 2)).join(' ')],
      ['allocated per sample (accept + pass)', m((r) => r.allocatedKb), runs.map((r) => `${fmt(r.allocatedKb, 2)}${r.scavenged ? '*' : ''}`).join(' ')],
      ['of it live until the next sample', m((r) => r.survivingKb), runs.map((r) => fmt(r.survivingKb, 2)).join(' ')],
    ],
  ),
);
if (runs.some((r) => r.scavenged)) process.stdout.write('* a collection ran during the measured round: that figure is low\n');
