/**
 * bench:fastpath — the built-in forwarder against HAProxy (`mode tcp`), in
 * the same run, in front of the same nginx backends on loopback, driven by
 * wrk: keep-alive requests/s, and new connections/s (`Connection: close`, one
 * request per connection). Every proxy gets one thread (the fast path is one
 * Node event loop; HAProxy runs with `nbthread 1`), and runs rotate among
 * them so drifts in the machine's load hit all alike. A naive Node pipe
 * proxy (naive-proxy.ts) runs beside them as the reference the targets were
 * set against. Figures are medians of `--reps`, and the headline is the
 * ratio fast path / HAProxy.
 *
 * It must never leave a process or directory behind.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Children, firstLine, sleep, withCleanup, type Started } from './lib/children.js';
import { freePorts } from './lib/ports.js';
import { benchLog, fmt, loadAverage1, machineLine, median, processCpuUs, QUICK, table, waitForQuietMachine } from './lib/measure.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FASTPATH_SERVER = path.join(HERE, 'fastpath-server.js');
const NAIVE_PROXY = path.join(HERE, 'naive-proxy.js');
const PROXIES = ['haproxy', 'fastpath', 'naive pipe'];

interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** CPU of the proxy process over the run, % of one core. */
  readonly proxyCpuPct: number;
}

export function parseWrk(text: string): { rps: number; p50Ms: number; p99Ms: number; errors: number } {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? Number.NaN);
  const toMs = (v: string | undefined, unit: string | undefined): number => {
    const x = Number(v);
    return unit === 'us' ? x / 1000 : unit === 's' ? x * 1000 : x;
  };
  const lat = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(text);
    return toMs(m?.[1], m?.[2]);
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const errors = (sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0) + non2xx;
  return { rps, p50Ms: lat('50'), p99Ms: lat('99'), errors };
}

/** nginx's two backends on `nginxPorts` (picked per run, test/bench/lib/ports.ts). */
function nginxConfig(dir: string, nginxPorts: readonly number[]): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${nginxPorts.map((p) => `  server { listen 127.0.0.1:${p} reuseport backlog=4096; location / { return 200 "ok ${p}\\n"; } }`).join('\n')}
}
`;
}

function haproxyConfig(port: number, nginxPorts: readonly number[]): string {
  return `global
    nbthread 1
    maxconn 9000
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:${port}
    default_backend be
backend be
    balance leastconn
${nginxPorts.map((p, i) => `    server n${i} 127.0.0.1:${p}`).join('\n')}
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'duration-s': { type: 'string', default: QUICK ? '2' : '10' },
      reps: { type: 'string', default: QUICK ? '1' : '5' },
      connections: { type: 'string', default: '64' },
      'out-dir': { type: 'string', default: QUICK ? path.join(tmpdir(), `loadfeed-bench-${process.pid}`) : 'docs/bench' },
      'max-load': { type: 'string', default: QUICK ? '100' : '0.7' },
      label: { type: 'string', default: '' },
      /** Extra Node options for the fast path process, e.g. --cpu-prof. */
      'node-args': { type: 'string', default: '' },
    },
  });
  const durationS = Number(values['duration-s']);
  const reps = Number(values.reps);
  const conns = Number(values.connections);
  const outDir = values['out-dir'];
  mkdirSync(outDir, { recursive: true });
  const log = benchLog('fastpath');
  const children = new Children();
  const dir = mkdtempSync(path.join(tmpdir(), 'loadfeed-fastpath-'));
  const results = new Map<string, WrkResult[]>();
  const started = new Date();
  let loadBefore = 0;
  await withCleanup(
    async () => {
      await children.close();
      rmSync(dir, { recursive: true, force: true });
    },
    async () => {
      loadBefore = await waitForQuietMachine(Number(values['max-load']), 20 * 60_000, log);
      for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, d));
      const [haproxyPort = 0, ...nginxPorts] = await freePorts(3);
      writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(dir, nginxPorts));
      writeFileSync(path.join(dir, 'haproxy.cfg'), haproxyConfig(haproxyPort, nginxPorts));
      const nginx = children.spawn('nginx', 'nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
      const haproxy = children.spawn('haproxy', 'haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] });
      const fastpath = children.spawn('fastpath', process.execPath, [
        ...values['node-args'].split(' ').filter((x) => x !== ''),
        FASTPATH_SERVER, ...nginxPorts.flatMap((p) => ['--backend', `127.0.0.1:${p}`]),
      ]);
      const naive = children.spawn('naive pipe', process.execPath, [NAIVE_PROXY, ...nginxPorts.flatMap((p) => ['--backend', `127.0.0.1:${p}`])]);
      const fastpathPort = Number(await firstLine(fastpath));
      const naivePort = Number(await firstLine(naive));
      await waitListening([...nginxPorts, haproxyPort], [nginx, haproxy]);
      const targets = [
        { name: 'haproxy', port: haproxyPort, proc: haproxy },
        { name: 'fastpath', port: fastpathPort, proc: fastpath },
        { name: 'naive pipe', port: naivePort, proc: naive },
      ];
      const modes = [
        { name: 'keep-alive', headers: [] as string[] },
        { name: 'new connections', headers: ['-H', 'Connection: close'] },
      ];
      // Warm-up: JIT and nginx caches.
      for (const t of targets) wrk(t.port, 1, 8, [], t.proc);
      for (let rep = 0; rep < reps; rep++) {
        for (const mode of modes) {
          // Rotated, so each proxy runs first, middle and last in turn.
          const shift = rep % targets.length;
          for (const t of [...targets.slice(shift), ...targets.slice(0, shift)]) {
            const r = wrk(t.port, durationS, conns, mode.headers, t.proc);
            const key = `${mode.name}/${t.name}`;
            results.set(key, [...(results.get(key) ?? []), r]);
            log(`${key}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99Ms} ms, errors ${r.errors}, proxy CPU ${r.proxyCpuPct.toFixed(0)} %`);
            await sleep(500);
          }
        }
      }
    },
  );
  const loadAfter = loadAverage1();
  const med = (key: string, k: keyof WrkResult): number => median((results.get(key) ?? []).map((r) => r[k]));
  const rows = ['keep-alive', 'new connections'].flatMap((mode) =>
    PROXIES.map((name) => {
      const key = `${mode}/${name}`;
      const usPerRequest = median((results.get(key) ?? []).map((r) => (r.proxyCpuPct / 100) * 1e6 / r.rps));
      return [mode, name, fmt(med(key, 'rps'), 0), fmt(med(key, 'p50Ms'), 2), fmt(med(key, 'p99Ms'), 2), fmt(med(key, 'errors'), 0), fmt(med(key, 'proxyCpuPct'), 0), fmt(usPerRequest, 1)];
    }),
  );
  const ratio = (mode: string, proxy = 'fastpath'): number => med(`${mode}/${proxy}`, 'rps') / med(`${mode}/haproxy`, 'rps');
  const ka = ratio('keep-alive');
  const nc = ratio('new connections');
  const naive = { keepAlive: ratio('keep-alive', 'naive pipe'), newConnections: ratio('new connections', 'naive pipe') };
  const text = [
    `bench:fastpath${values.label ? ` (${values.label})` : ''}  ${started.toISOString()}  ${machineLine()}`,
    `load average ${loadBefore} before, ${loadAfter} after; wrk 1 thread, ${conns} connections, ${durationS} s per run, medians of ${reps}; HAProxy ${haproxyVersion()} nbthread 1 mode tcp leastconn; fast path wlc; 2 nginx backends (1 worker)`,
    '',
    table(['mode', 'proxy', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'proxy cpu %', 'proxy cpu µs/req'], rows),
    '',
    `fast path / HAProxy: keep-alive ${fmt(ka, 2)} (target >= 0.9: ${ka >= 0.9 ? 'MET' : 'MISSED'}), new connections ${fmt(nc, 2)} (target >= 0.75: ${nc >= 0.75 ? 'MET' : 'MISSED'})`,
    `naive pipe / HAProxy (reference): keep-alive ${fmt(naive.keepAlive, 2)}, new connections ${fmt(naive.newConnections, 2)}`,
  ].join('\n');
  process.stdout.write(`${text}\n`);
  const stamp = QUICK ? 'quick' : `${started.toISOString().slice(0, 10)}${values.label ? `-${values.label}` : ''}`;
  writeFileSync(path.join(outDir, `fastpath-${stamp}.json`), JSON.stringify({ bench: 'fastpath', label: values.label, date: started.toISOString(), machine: machineLine(), loadAverage: { before: loadBefore, after: loadAfter }, durationS, reps, connections: conns, ratios: { keepAlive: ka, newConnections: nc, naive }, results: Object.fromEntries(results) }, null, 1));
  writeFileSync(path.join(outDir, `fastpath-${stamp}.txt`), `${text}\n`);
}

function wrk(port: number, durationS: number, conns: number, headers: readonly string[], proxy: Started): WrkResult {
  const pid = proxy.child.pid ?? 0;
  const c0 = processCpuUs(pid);
  const t0 = performance.now();
  const r = spawnSync('wrk', ['-t1', `-c${conns}`, `-d${durationS}s`, '--latency', ...headers, `http://127.0.0.1:${port}/`], { encoding: 'utf8', timeout: (durationS + 30) * 1000 });
  const dt = (performance.now() - t0) * 1000;
  const c1 = processCpuUs(pid);
  if (r.status !== 0) throw new Error(`wrk failed (${r.status ?? r.signal}): ${r.stderr || r.error?.message}`);
  const parsed = parseWrk(r.stdout);
  if (!Number.isFinite(parsed.rps)) throw new Error(`cannot read wrk's output:\n${r.stdout}`);
  return { ...parsed, proxyCpuPct: c0 === null || c1 === null ? Number.NaN : ((c1 - c0) / dt) * 100 };
}

async function waitListening(ports: readonly number[], procs: readonly Started[]): Promise<void> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    const r = spawnSync('ss', ['-Hltn'], { encoding: 'utf8' });
    if (ports.every((p) => r.stdout.includes(`127.0.0.1:${p} `))) return;
    if (performance.now() > deadline) throw new Error(`not listening on ${ports.join(', ')}: ${procs.map((p) => `${p.name}: ${p.stderr()}`).join(' | ')}`);
    await sleep(100);
  }
}

function haproxyVersion(): string {
  return /version (\S+)/.exec(spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:fastpath failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
