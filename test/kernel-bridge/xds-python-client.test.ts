// A second, independent xDS client: Python grpcio from Debian (python3-grpcio,
// gRPC C-core 1.51) with only a bootstrap file. It takes the listener, route,
// cluster and endpoints and ACKs them, and routes calls to the backends.
// Weighted shares are not checked with it: gRPC's round_robin ignores
// endpoint weights, and C-core 1.51 crashes (SIGSEGV) on the ring_hash
// cluster the engine serves by default once it has taken the endpoints (a
// client bug fixed in later gRPC; Debian 12 has only 1.51). So this runs a
// round_robin service: protocol interoperability, not weights.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { createXdsEngine } from '@loadfeed/kernel-bridge';
import { realEngineGate, type Prerequisite } from '../helpers/real-engine.js';
import { startEchoBackend } from '../helpers/xds-echo.js';
import { grpcBootstrap } from '../helpers/xds-fleet.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'helpers', 'xds-python-client.py');
const CALLS = 60;

const PYTHON_GRPCIO: Prerequisite = {
  what: 'Python grpcio',
  howTo: 'apt-get install -y --no-install-recommends python3-grpcio',
  probe: () => {
    const r = spawnSync(PYTHON, ['-c', 'import grpc'], { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 ? undefined : (r.error?.message ?? r.stderr.trim().split('\n').pop() ?? 'import grpc failed');
  },
};

const gate = realEngineGate('xds (Python client)', [PYTHON_GRPCIO]);

gate.serial('Python grpcio takes every resource over ADS, ACKs them, and reaches the backends through xds:///web', async (t) => {
  t.timeout(120_000);
  const backends = [await startEchoBackend('b1'), await startEchoBackend('b2')];
  t.teardown(() => backends.forEach((b) => b.close()));
  const engine = await createXdsEngine({ listen: '127.0.0.1:0', credentials: grpc.ServerCredentials.createInsecure(), stateFile: null }).listening();
  t.teardown(() => engine.close());
  await engine.apply([
    { op: 'add-service', service: { address: 'web', scheduler: 'round_robin' } },
    ...backends.map((b) => ({ op: 'add-destination' as const, service: 'web', destination: b.address, weight: 10 })),
  ]);
  const bootstrap = path.join(mkdtempSync(path.join(tmpdir(), 'loadfeed-xds-py-')), 'bootstrap.json');
  writeFileSync(bootstrap, JSON.stringify(grpcBootstrap(`127.0.0.1:${engine.boundAddress().port}`, 'python-client')));
  const python = spawn(PYTHON, [SCRIPT, 'xds:///web', String(CALLS)], { env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrap }, stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => python.kill('SIGKILL'));
  let stderr = '';
  python.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const [line] = (await Promise.race([
    once(python.stdout, 'data'),
    once(python, 'exit').then(([code]) => {
      throw new Error(`python client exited (${String(code)}) before answering: ${stderr}`);
    }),
  ])) as [Buffer];
  const stdout = line.toString();
  const counts = JSON.parse(stdout) as Record<string, number>;
  t.is((counts.b1 ?? 0) + (counts.b2 ?? 0), CALLS, stdout);
  t.true((counts.b1 ?? 0) > 0 && (counts.b2 ?? 0) > 0, `both backends answered: ${stdout}`);
  const client = engine.clients().find((c) => c.node === 'python-client');
  t.deepEqual(
    client?.types.map((s) => [s.typeUrl.split('.').pop(), s.ackedVersion !== null && s.ackedVersion === s.sentVersion, s.nacks]),
    [
      ['Listener', true, 0],
      ['RouteConfiguration', true, 0],
      ['Cluster', true, 0],
      ['ClusterLoadAssignment', true, 0],
    ],
  );
  python.stdin.end();
  await once(python, 'exit');
});
