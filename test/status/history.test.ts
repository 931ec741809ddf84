// The dashboard's history: bounded ring of frames per service, columns
// aligned for charts, servers beyond the cap counted, not kept.
import test from 'ava';
import { History, type StatusDocument } from '@loadfeed/poller';
import { metricReadings } from '@loadfeed/proto';

type Server = StatusDocument['services'][number]['servers'][number];

function frame(t: number, services: Record<string, { address: string; weight: number; cpu?: number | null }[]>): StatusDocument {
  return {
    generatedAt: t,
    services: Object.entries(services).map(([name, servers]) => ({
      name,
      engine: 'memory',
      address: 'tcp 127.0.0.1:80',
      totalWeight: 0,
      appMetrics: [],
      servers: servers.map(
        (s): Server => ({
          address: s.address,
          node: `n-${s.address}`,
          state: 'live',
          weight: s.weight,
          share: 0,
          score: null,
          reason: '',
          nodeState: 'live',
          cores: 1,
          metrics: { ...metricReadings(null), cpuUtilization: s.cpu === undefined ? 0.5 : s.cpu, memUtilization: 0.25 },
          cpu: s.cpu === undefined ? 0.5 : s.cpu,
          memory: 0.25,
          psi: { cpu: null, memory: null, io: null },
          connections: 3,
          app: {},
          load1: null,
          sampleAgeMs: 0,
        }),
      ),
    })),
  } as unknown as StatusDocument;
}

test('columns align with the frames; a server that comes later or leaves gets nulls', (t) => {
  const h = new History();
  h.record(frame(1000, { web: [{ address: 'a', weight: 10 }] }));
  h.record(frame(2000, { web: [{ address: 'a', weight: 20 }, { address: 'b', weight: 5, cpu: null }] }));
  h.record(frame(3000, { web: [{ address: 'b', weight: 6 }] }));
  const doc = h.since(0);
  t.is(doc.stepMs, 1000);
  t.is(doc.omitted, 0);
  const web = doc.services[0];
  t.deepEqual(web?.t, [1000, 2000, 3000]);
  t.deepEqual(web?.servers.map((s) => [s.address, s.node, s.weight, s.metrics['cpuUtilization']]), [
    ['a', 'n-a', [10, 20, null], [0.5, 0.5, null]],
    ['b', 'n-b', [null, 5, 6], [null, null, 0.5]],
  ]);
  t.deepEqual(web?.servers[0]?.metrics['memUtilization'], [0.25, 0.25, null]);
  t.deepEqual(Object.keys(web?.servers[0]?.metrics ?? {}), ['cpuUtilization', 'memUtilization'], "the catalog's charted metrics");
  t.deepEqual(web?.servers[0]?.connections, [3, 3, null]);
});

test('since: only newer frames, and only the servers in them', (t) => {
  const h = new History();
  h.record(frame(1000, { web: [{ address: 'a', weight: 10 }] }));
  h.record(frame(2000, { web: [{ address: 'b', weight: 5 }] }));
  const newer = h.since(1000);
  t.deepEqual(newer.services[0]?.t, [2000]);
  t.deepEqual(newer.services[0]?.servers.map((s) => s.address), ['b']);
  t.deepEqual(h.since(2000).services[0]?.t, []);
});

test('bounded: the oldest frames go, services gone from the policy are forgotten, servers beyond the cap are counted', (t) => {
  const h = new History(3, 2);
  for (let i = 1; i <= 5; i += 1) h.record(frame(i * 1000, { web: [{ address: 'a', weight: i }], api: [{ address: 'x', weight: 1 }, { address: 'y', weight: 1 }] }));
  const doc = h.since(0);
  t.deepEqual(doc.services.map((s) => s.name), ['web', 'api']);
  t.deepEqual(doc.services[0]?.t, [3000, 4000, 5000]);
  t.deepEqual(doc.services[0]?.servers[0]?.weight, [3, 4, 5]);
  t.deepEqual(doc.services[1]?.servers.map((s) => s.address), ['x'], 'two servers at most');
  t.is(doc.omitted, 1);
  h.record(frame(6000, { web: [{ address: 'a', weight: 6 }] }));
  t.deepEqual(h.since(0).services.map((s) => s.name), ['web']);
  t.is(h.since(0).omitted, 0);
});
