// A bench cluster: real backends, each a "host" of its own (a network
// namespace) whose CPU allowance is a cgroup quota the kernel enforces, each
// with its own loadfeed agent in cgroup scope; and, in front of them, either
// the poller with its fast path or HAProxy (loadfeed policies), or a bare
// fast-path engine or HAProxy with fixed weights (the baselines). HAProxy is
// Debian's, in `mode tcp` with one thread as the fast path has, its
// frontend on a loopback port chosen at run time.
//
//   /<root>/<run>/<backend>          quota = the backend's allowance; the agent's scope
//   /<root>/<run>/<backend>/svc      the HTTP backend process
//   /<root>/<run>/<backend>/noise    an antagonist, when a scenario starts one
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createFastpathEngine, createHaproxyEngine, type Engine, type FastpathEngine, type HostPort } from '@loadfeed/kernel-bridge';
import { compilePolicy, DEFAULT_RECORD_MAX_BYTES, defaultEngines, defaultStrategies, Poller, TraceRecorder, type PollerObserver } from '@loadfeed/poller';
import type { CpuCgroup } from './cgroup.js';
import { alive, firstLine, sleep, type Children, type Started } from './children.js';
import type { NetNs } from './netns.js';
import { renderConfig, waitForAdmin } from '../../helpers/haproxy.js';
import { binPath } from '../../helpers/launcher.js';

export const AGENT_BIN = binPath('@loadfeed/agent', 'loadfeed-agent');
const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BACKEND_SCRIPT = path.join(HERE, '..', 'balance-backend.js');
export const ANTAGONIST_SCRIPT = path.join(HERE, '..', 'balance-antagonist.js');
export const BACKEND_PORT = 8080;
export const SERVICE_ADDRESS = 'tcp 127.0.0.1:0';

export interface BackendSpec {
  readonly id: string;
  /** CPU allowance, cores (the cgroup quota). */
  readonly cores: number;
}

export interface Backend extends BackendSpec {
  readonly ns: NetNs;
  readonly cgroup: CpuCgroup;
  readonly svc: CpuCgroup;
  /** The engine's address of this backend. */
  readonly destination: string;
  proc: Started | null;
  agent: Started | null;
  noise: { cgroup: CpuCgroup; proc: Started } | null;
}

export type HaproxyBalance = 'leastconn' | 'roundrobin';
/** HAProxy's backend in the bench's haproxy.cfg (the policy's service address). */
export const HAPROXY_BACKEND = 'bench';

/**
 * How traffic is balanced: a bare engine (fast path or HAProxy) with fixed
 * weights, or loadfeed's poller with a policy. A poller policy gets its
 * servers' lines and, when `haproxy` is set, the runtime API socket of the
 * HAProxy started for it (its servers are then named by backend id).
 */
export type Balancer =
  | { readonly kind: 'engine'; readonly scheduler: 'swrr' | 'wlc'; readonly weight: (b: BackendSpec) => number }
  | { readonly kind: 'haproxy'; readonly balance: HaproxyBalance; readonly weight: (b: BackendSpec) => number }
  | {
      readonly kind: 'poller';
      readonly policy: (servers: string, haproxySocket: string | null) => string;
      readonly haproxy?: HaproxyBalance;
      /** More arguments for every agent, e.g. ['--early-change', '0']. */
      readonly agentArgs?: readonly string[];
    };

/** HAProxy's weights before loadfeed writes any (its default, 1, leaves no room below). */
const HAPROXY_INITIAL_WEIGHT = 100;
/** Attempts at a frontend port (another process may take the free port found before HAProxy binds it). */
const HAPROXY_BIND_ATTEMPTS = 5;

export interface ClusterOptions {
  readonly children: Children;
  readonly root: CpuCgroup;
  /** Name of this run's cgroup under root. */
  readonly run: string;
  readonly nets: readonly NetNs[];
  readonly backends: readonly BackendSpec[];
  readonly workMs: number;
  readonly periodUs: number;
  readonly agentInterval?: string;
  /** Another backend program than BACKEND_SCRIPT, with its arguments, and what its agent is told besides the usual. */
  readonly backend?: BackendProgram;
  /** Record what the agents tell a poller balancer into this file (`loadfeed-poller --record`; replay with `loadfeed policy simulate`). */
  readonly trace?: string;
}

export interface BackendProgram {
  readonly script: string;
  args(b: Backend): string[];
  agentArgs(b: Backend): string[];
}

export class Cluster {
  readonly backends: Backend[];
  private readonly runCgroup: CpuCgroup;
  private engine: Engine | null = null;
  private poller: Poller | null = null;
  private pollerPort = 0;
  private haproxy: { proc: Started; dir: string } | null = null;
  private agentArgs: readonly string[] = [];
  /** The engine's name of each backend's destination (HAProxy: the server name). */
  private names: string[];
  target: HostPort = { host: '127.0.0.1', port: 0 };

  constructor(private readonly o: ClusterOptions) {
    this.runCgroup = o.root.child(o.run);
    this.backends = o.backends.map((spec, i) => {
      const ns = o.nets[i];
      if (!ns) throw new Error(`no network namespace for backend ${i}`);
      const cgroup = this.runCgroup.child(spec.id);
      cgroup.setQuota(spec.cores, o.periodUs);
      const svc = cgroup.child('svc');
      return { ...spec, ns, cgroup, svc, destination: `${ns.address}:${BACKEND_PORT}`, proc: null, agent: null, noise: null };
    });
    this.names = this.backends.map((b) => b.destination);
  }

  async startBackends(): Promise<void> {
    await Promise.all(this.backends.map((b) => this.startBackend(b)));
  }

  async startBackend(b: Backend): Promise<void> {
    const program = this.o.backend;
    const args = program
      ? [program.script, '--id', b.id, '--host', '0.0.0.0', '--port', String(BACKEND_PORT), ...program.args(b)]
      : [BACKEND_SCRIPT, '--id', b.id, '--host', '0.0.0.0', '--port', String(BACKEND_PORT), '--work-ms', String(this.o.workMs)];
    b.proc = this.inside(b, b.svc, `backend ${b.id}`, args);
    await firstLine(b.proc);
  }

  /** Start the balancer; for a poller, also every agent, and wait until each server has a weight. */
  async startBalancer(balancer: Balancer): Promise<void> {
    if (balancer.kind === 'engine') {
      const engine = createFastpathEngine();
      this.engine = engine;
      await engine.apply([
        { op: 'add-service', service: { address: SERVICE_ADDRESS, scheduler: balancer.scheduler } },
        ...this.backends.map((b) => ({ op: 'add-destination' as const, service: SERVICE_ADDRESS, destination: b.destination, weight: balancer.weight(b) })),
      ]);
      this.target = engine.boundAddress(SERVICE_ADDRESS);
      return;
    }
    if (balancer.kind === 'haproxy') {
      const socket = await this.startHaproxy(balancer.balance, balancer.weight);
      this.engine = createHaproxyEngine({ socket });
      return;
    }
    const socket = balancer.haproxy ? await this.startHaproxy(balancer.haproxy, () => HAPROXY_INITIAL_WEIGHT) : null;
    this.agentArgs = balancer.agentArgs ?? [];
    const servers = this.backends.map((b, i) => `      - { node: ${b.id}, address: "${this.names[i]}" }`).join('\n');
    const engines = defaultEngines();
    const policy = compilePolicy(balancer.policy(servers, socket), '<bench policy>', engines.limits());
    this.poller = new Poller({
      listen: '0.0.0.0:0',
      policy,
      engines,
      strategies: defaultStrategies(),
      logger: pino({ level: 'warn' }, pino.destination(2)),
      ...(this.o.trace === undefined ? {} : { recorder: new TraceRecorder(this.o.trace, DEFAULT_RECORD_MAX_BYTES, () => undefined) }),
      // Agents reach the poller over the bench's own veth pairs, not loopback.
      security: { credentials: grpc.ServerCredentials.createInsecure(), auth: { tokens: new Map(), mutualTls: false, allowPlaintext: true } },
    });
    this.pollerPort = await this.poller.start();
    if (socket === null) {
      this.engine = this.poller.engine('fastpath');
      this.target = (this.engine as FastpathEngine).boundAddress(SERVICE_ADDRESS);
    } else {
      this.engine = this.poller.engine('haproxy');
    }
    for (const b of this.backends) this.startAgent(b);
    const deadline = performance.now() + 20_000;
    while (!(await this.weights()).every((w) => w > 0)) {
      if (performance.now() > deadline) throw new Error(`agents did not report within 20 s: ${this.backends.map((b) => b.agent?.stderr() ?? '').join(' | ')}`);
      await sleep(100);
    }
  }

  /** Subscribe to the poller's weight changes (no-op without a poller); returns the unsubscribe function. */
  observe(observer: PollerObserver): () => void {
    return this.poller?.observe(observer) ?? (() => undefined);
  }

  get hasAgents(): boolean {
    return this.poller !== null;
  }

  startAgent(b: Backend): void {
    const args = [
      AGENT_BIN,
      '--poller', `${b.ns.hostAddress}:${this.pollerPort}`,
      '--node-id', b.id,
      '--scope', `cgroup:${b.cgroup.path}`,
      '--service', `http:${BACKEND_PORT}`,
      // The veth between namespaces is the bench's own: plaintext is fine there.
      '--allow-plaintext',
      ...(this.o.agentInterval ? ['--interval', this.o.agentInterval] : []),
      ...(this.o.backend?.agentArgs(b) ?? []),
      ...this.agentArgs,
    ];
    b.agent = this.o.children.spawn(`agent ${b.id}`, 'nsenter', [...b.ns.enter(), process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Weights in force in the engine, in backend order (0 for a destination the engine lacks). */
  async weights(): Promise<number[]> {
    if (!this.engine) return this.backends.map(() => 0);
    const obs = await this.engine.observe();
    const dests = obs.services[0]?.destinations ?? [];
    return this.names.map((name) => dests.find((d) => d.address === name)?.weight ?? 0);
  }

  async activeConnections(): Promise<number[]> {
    if (!this.engine) return this.backends.map(() => 0);
    const obs = await this.engine.observe();
    const dests = obs.services[0]?.destinations ?? [];
    return this.names.map((name) => dests.find((d) => d.address === name)?.activeConnections ?? 0);
  }

  /** A noisy neighbour in backend b's cgroup: a square wave limited to `fraction` of b's allowance. */
  async startNoise(b: Backend, fraction: number, startAtEpochMs: number, onMs: number, offMs: number): Promise<void> {
    const cgroup = b.cgroup.child('noise');
    cgroup.setQuota(b.cores * fraction, this.o.periodUs);
    // Ten times the backend's weight: while both want CPU, the antagonist gets its whole share.
    cgroup.setWeight(10);
    const args = [ANTAGONIST_SCRIPT, '--start-at', String(startAtEpochMs), '--on-ms', String(onMs), '--off-ms', String(offMs)];
    const proc = this.inside(b, cgroup, `antagonist ${b.id}`, args);
    await firstLine(proc);
    b.noise = { cgroup, proc };
  }

  /** Change the CPU cost per request of one backend (a slowdown). */
  setWork(b: Backend, workMs: number): void {
    this.command(b, `work ${workMs}`);
  }

  /** A command line to the backend program (see its file comment). */
  command(b: Backend, line: string): void {
    b.proc?.child.stdin?.write(`${line}\n`);
  }

  /** The backend's host dies: backend and agent killed at once. */
  killHost(b: Backend): void {
    for (const p of [b.proc, b.agent]) if (p && alive(p.child)) p.child.kill('SIGKILL');
  }

  /** ... and comes back: backend first, then its agent. */
  async reviveHost(b: Backend): Promise<void> {
    await this.startBackend(b);
    if (this.hasAgents) this.startAgent(b);
  }

  async stop(): Promise<void> {
    const procs = this.backends.flatMap((b) => [b.agent, b.noise?.proc ?? null, b.proc]).filter((p): p is Started => p !== null);
    await Promise.all(procs.map((p) => this.o.children.stop(p)));
    if (this.poller) await this.poller.stop();
    else await this.engine?.close();
    this.poller = null;
    this.engine = null;
    if (this.haproxy) {
      await this.o.children.stop(this.haproxy.proc);
      rmSync(this.haproxy.dir, { recursive: true, force: true });
      this.haproxy = null;
    }
    this.runCgroup.remove();
  }

  /**
   * HAProxy in front of the backends (`mode tcp`, one thread, health checks
   * every second as an operator would have them); returns its admin socket.
   * Its servers are named by backend id.
   */
  private async startHaproxy(balance: HaproxyBalance, weight: (b: BackendSpec) => number): Promise<string> {
    const dir = mkdtempSync(path.join(tmpdir(), 'loadfeed-bench-haproxy-'));
    const file = path.join(dir, 'haproxy.cfg');
    const socket = path.join(dir, 'admin.sock');
    this.names = this.backends.map((b) => b.id);
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      writeFileSync(file, renderConfig(dir, {
        mode: 'tcp',
        global: ['nbthread 1', 'maxconn 8000'],
        frontendBackend: HAPROXY_BACKEND,
        frontendBind: `127.0.0.1:${port} backlog 4096`,
        backends: [{
          name: HAPROXY_BACKEND,
          balance,
          servers: this.backends.map((b) => ({ name: b.id, address: b.destination, weight: weight(b), options: 'check inter 1s' })),
        }],
      }));
      const proc = this.o.children.spawn('haproxy', 'haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
      this.haproxy = { proc, dir };
      try {
        await waitForAdmin(socket, () => (alive(proc.child) ? null : proc.stderr()), 10_000);
        this.target = { host: '127.0.0.1', port };
        return socket;
      } catch (err) {
        await this.o.children.stop(proc);
        if (attempt >= HAPROXY_BIND_ATTEMPTS || !/bind/i.test(proc.stderr())) throw err;
      }
    }
  }

  /** Run `node args` inside b's namespace, in `cgroup` from its first instruction. */
  private inside(b: Backend, cgroup: CpuCgroup, name: string, args: readonly string[]): Started {
    const quoted = [...b.ns.enter(), process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    return this.o.children.spawn(name, 'sh', ['-c', `${cgroup.joinScript()}; exec ${quoted}`]);
  }
}

/** A loopback TCP port free now (listen on 0, then close). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
