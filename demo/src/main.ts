/**
 * loadfeed demo: the whole loop on loopback, without root. Three HTTP
 * backends of different real CPU capacity, each measured by its own agent in
 * process scope; the poller with the built-in fast path in front of them; and
 * an open-loop load generator. Prints a live table (or JSON lines) of each
 * backend's CPU, weight and share of requests.
 *
 * It must never leave a process behind: Ctrl-C, SIGTERM, --duration and any
 * failure all stop every process it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { formatHostPort, parseHostPort, type FastpathEngine } from '@loadfeed/kernel-bridge';
import { compilePolicy, defaultEngines, defaultStrategies, DEFAULT_STATUS_LISTEN, Poller, Progress, StatusServer } from '@loadfeed/poller';
import { LoadGenerator } from './loadgen.js';
import { renderJson, renderTable, type DemoView } from './render.js';

export const DEMO_BACKENDS = [
  { id: 'small', allowance: 0.1 },
  { id: 'medium', allowance: 0.2 },
  { id: 'large', allowance: 0.4 },
] as const;
/** CPU each request costs a backend, ms. */
export const DEMO_WORK_MS = 4;
/** Offered load as a fraction of the backends' total capacity. */
export const DEMO_LOAD = 0.6;
export const DEMO_SHARE_WINDOW_MS = 5_000;
export const STARTUP_TIMEOUT_MS = 20_000;

const USAGE = `Usage: npm run demo -- [options]   (the built command: loadfeed-demo [options])

Starts on loopback three backends of different CPU capacity, their agents, the
poller and the fast path, and a load generator; prints what each backend gets.

  --duration SECONDS   stop by itself after this long (default: run until Ctrl-C)
  --json               print one JSON object per second instead of a table
  --listen HOST:PORT   the fast path's virtual service (default 127.0.0.1:8080)
  --rate N             requests per second (default ${DEMO_LOAD * 100}% of total capacity)
  --scheduler NAME     fast path scheduler: swrr (default) or wlc
  --status HOST:PORT   the poller's dashboard, /status, /metrics (default
                       ${DEFAULT_STATUS_LISTEN}, or a free port if that one is taken; "off" disables)
  -h, --help           show this help
`;

export async function demoMain(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string' },
      json: { type: 'boolean', default: false },
      listen: { type: 'string', default: '127.0.0.1:8080' },
      rate: { type: 'string' },
      // Short requests at this concurrency leave backends idle most of the
      // time, and least-connection hands an idle backend the next connection
      // whatever its weight; smooth weighted round robin makes the shares
      // follow the weights visibly, which is what the demo is for.
      scheduler: { type: 'string', default: 'swrr' },
      status: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const durationS = values.duration === undefined ? null : Number(values.duration);
  if (durationS !== null && !(durationS > 0)) throw new Error(`--duration: ${values.duration} must be a number of seconds > 0`);
  const capacityRps = DEMO_BACKENDS.reduce((sum, b) => sum + (b.allowance * 1000) / DEMO_WORK_MS, 0);
  const rate = values.rate === undefined ? Math.round(capacityRps * DEMO_LOAD) : Number(values.rate);
  if (!(rate > 0)) throw new Error(`--rate: ${values.rate} must be > 0`);
  const vip = parseHostPort(values.listen, { allowPortZero: true });

  const demo = new Demo();
  const stopOnSignal = (): void => demo.abort();
  process.on('SIGINT', stopOnSignal);
  process.on('SIGTERM', stopOnSignal);
  try {
    await demo.run({ vip: values.listen, vipHost: vip.host, rate, durationS, json: values.json, scheduler: values.scheduler, status: values.status ?? null });
    return 0;
  } finally {
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
    await demo.cleanup();
  }
}

interface RunOptions {
  readonly vip: string;
  readonly vipHost: string;
  readonly rate: number;
  readonly durationS: number | null;
  readonly json: boolean;
  readonly scheduler: string;
  /** --status as given; null: the default, falling back to a free port. */
  readonly status: string | null;
}

class Demo {
  private readonly children: ChildProcess[] = [];
  private poller: Poller | null = null;
  private status: StatusServer | null = null;
  private readonly progress = new Progress();
  private load: LoadGenerator | null = null;
  private readonly aborted = new AbortController();
  private stopping = false;
  private failure: Error | null = null;

  abort(): void {
    this.aborted.abort();
  }

  async run(o: RunOptions): Promise<void> {
    const backendScript = fileURLToPath(new URL('./backend.js', import.meta.url));
    this.progress.step(`starting ${DEMO_BACKENDS.length} backends`);
    const backends = await Promise.all(
      DEMO_BACKENDS.map(async (b) => {
        const child = this.spawn(backendScript, ['--id', b.id, '--allowance', String(b.allowance), '--work-ms', String(DEMO_WORK_MS)]);
        const port = Number(await this.firstLine(child, `backend ${b.id}`));
        return { ...b, port, pid: child.pid as number };
      }),
    );

    const policy = compilePolicy(
      [
        'apiVersion: loadfeed/v1',
        'agents: { interval: 500ms }',
        'services:',
        '  - name: demo',
        '    engine: fastpath',
        `    address: tcp ${o.vip}`,
        `    scheduler: ${o.scheduler}`,
        // All demo backends share this host, whose accepted connections the
        // default (capacity) would take for each backend's own: headroom.
        '    strategy: { name: headroom }',
        '    smoothing: { halfLife: 2s }',
        '    servers:',
        ...backends.map((b) => `      - { node: ${b.id}, address: "127.0.0.1:${b.port}" }`),
      ].join('\n'),
      '<demo policy>',
      defaultEngines().limits(),
    );
    const poller = new Poller({
      listen: '127.0.0.1:0',
      policy,
      engines: defaultEngines(),
      strategies: defaultStrategies(),
      logger: pino({ level: 'warn' }, pino.destination(2)),
    });
    this.poller = poller;
    this.progress.step('starting the poller and the fast path');
    const dashboard = o.status === 'off' ? null : await this.startStatus(poller, o.status);
    const grpcPort = await poller.start();
    const bound = (poller.engine('fastpath') as FastpathEngine).boundAddress(`tcp ${o.vip}`);

    const agentBin = agentBinPath();
    for (const b of backends) {
      this.spawn(agentBin, [
        '--poller', `127.0.0.1:${grpcPort}`,
        '--node-id', b.id,
        '--scope', `process:${b.pid}`,
        '--capacity', String(b.allowance),
        '--service', `http:${b.port}`,
      ]);
    }
    await this.until(() => {
      const decisions = poller.snapshot().services[0]?.decisions ?? [];
      const ready = decisions.filter((d) => d.weight > 0).length;
      this.progress.step(`waiting for the agents to report (${ready}/${DEMO_BACKENDS.length})`);
      return decisions.length > 0 && ready === decisions.length;
    }, 'every agent to report');
    this.progress.done(`${DEMO_BACKENDS.length} backends, agents and the poller are up`);
    if (dashboard !== null) process.stderr.write(`loadfeed demo: dashboard at ${dashboard}\n`);

    const load = new LoadGenerator(o.vipHost, bound.port, o.rate, DEMO_SHARE_WINDOW_MS);
    this.load = load;
    load.start();
    const started = performance.now();
    const render = o.json ? renderJson : renderTable;
    const tty = !o.json && process.stdout.isTTY;
    while (!this.aborted.signal.aborted) {
      await this.sleep(1000);
      const elapsedS = (performance.now() - started) / 1000;
      const view = { ...this.view(poller, load, backends, o.rate, elapsedS), dashboard };
      process.stdout.write((tty ? '\x1b[H\x1b[2J' : '') + render(view) + (o.json || tty ? '' : '\n'));
      if (o.durationS !== null && elapsedS >= o.durationS) break;
    }
    if (this.failure) throw this.failure;
  }

  private view(
    poller: Poller,
    load: LoadGenerator,
    backends: readonly { id: string; allowance: number; port: number }[],
    rate: number,
    elapsedS: number,
  ): DemoView {
    const snap = poller.snapshot();
    const stats = load.stats();
    const served = [...stats.byBackend.values()].reduce((a, b) => a + b, 0);
    const decisions = snap.services[0]?.decisions ?? [];
    return {
      elapsedS,
      ratePerSecond: rate,
      errors: stats.errors,
      servers: backends.map((b) => ({
        id: b.id,
        capacity: b.allowance,
        cpu: snap.nodes.find((n) => n.id === b.id)?.cpuUtilization ?? null,
        weight: decisions.find((d) => d.address === `127.0.0.1:${b.port}`)?.weight ?? 0,
        share: served > 0 ? (stats.byBackend.get(b.id) ?? 0) / served : 0,
      })),
    };
  }

  /** The poller's status server; the default address falls back to a free port when taken. */
  private async startStatus(poller: Poller, address: string | null): Promise<string> {
    const status = new StatusServer({ poller, logger: pino({ level: 'warn' }, pino.destination(2)) });
    this.status = status;
    let bound;
    try {
      bound = await status.listen(address ?? DEFAULT_STATUS_LISTEN);
    } catch (err) {
      if (address !== null) throw err;
      bound = await status.listen('127.0.0.1:0');
    }
    return `http://${formatHostPort(bound)}/`;
  }

  async cleanup(): Promise<void> {
    this.stopping = true;
    this.progress.done();
    this.load?.stop();
    await Promise.all(
      this.children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = once(c, 'exit');
        c.kill('SIGTERM');
        const timer = setTimeout(() => c.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }),
    );
    await this.status?.close();
    await this.poller?.stop();
  }

  /**
   * Children's logs stay out of the live view; if one dies while the demo
   * runs, the demo stops and shows the end of what it wrote.
   */
  private spawn(script: string, args: string[]): ChildProcess {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.push(child);
    let tail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-2000);
    });
    child.on('exit', (code, signal) => {
      if (this.stopping) return;
      this.failure = new Error(`${path.basename(script)} ${args.join(' ')} exited (${signal ?? code}):\n${tail}`);
      this.abort();
    });
    return child;
  }

  private async firstLine(child: ChildProcess, what: string): Promise<string> {
    if (!child.stdout) throw new Error(`${what}: no stdout`);
    const lines = createInterface({ input: child.stdout });
    const exited = once(child, 'exit').then(() => {
      throw new Error(`${what} exited before it was ready`);
    });
    try {
      const [line] = (await Promise.race([once(lines, 'line'), exited])) as [string];
      return line;
    } finally {
      lines.close();
      exited.catch(() => undefined);
    }
  }

  private async until(ready: () => boolean, what: string): Promise<void> {
    const deadline = performance.now() + STARTUP_TIMEOUT_MS;
    while (!ready()) {
      if (this.aborted.signal.aborted) throw this.failure ?? new Error('interrupted');
      if (performance.now() > deadline) throw new Error(`timed out after ${STARTUP_TIMEOUT_MS / 1000}s waiting for ${what}`);
      await this.sleep(100);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.aborted.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.aborted.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** The installed agent's executable, found through its package like npm would. */
function agentBinPath(): string {
  const pkgFile = fileURLToPath(import.meta.resolve('@loadfeed/agent/package.json'));
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { bin: Record<string, string> };
  return path.join(path.dirname(pkgFile), pkg.bin['loadfeed-agent'] ?? 'build/src/bin/loadfeed-agent.js');
}
