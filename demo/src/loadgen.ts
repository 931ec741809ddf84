// Open-loop load: requests start at Poisson-distributed times whatever the
// backends' latency, each on a new connection so the balancer decides every
// one. Responses are counted per backend over a sliding window.
import http from 'node:http';

export const REQUEST_TIMEOUT_MS = 5_000;
/** Never more than this many requests in flight, so an overloaded demo stays bounded. */
export const MAX_IN_FLIGHT = 512;

export interface LoadStats {
  /** Responses per backend id within the window. */
  readonly byBackend: ReadonlyMap<string, number>;
  readonly errors: number;
  readonly inFlight: number;
}

export class LoadGenerator {
  private timer: NodeJS.Timeout | null = null;
  private readonly events: { at: number; backend: string | null }[] = [];
  private inFlight = 0;
  private readonly agent = new http.Agent({ keepAlive: false });

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly ratePerSecond: number,
    private readonly windowMs: number,
  ) {}

  start(): void {
    const next = (): void => {
      this.timer = setTimeout(() => {
        this.fire();
        next();
      }, -Math.log(1 - Math.random()) * (1000 / this.ratePerSecond));
    };
    next();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.agent.destroy();
  }

  stats(): LoadStats {
    const since = performance.now() - this.windowMs;
    while (this.events.length > 0 && (this.events[0]?.at ?? 0) < since) this.events.shift();
    const byBackend = new Map<string, number>();
    let errors = 0;
    for (const e of this.events) {
      if (e.backend === null) errors += 1;
      else byBackend.set(e.backend, (byBackend.get(e.backend) ?? 0) + 1);
    }
    return { byBackend, errors, inFlight: this.inFlight };
  }

  private fire(): void {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.events.push({ at: performance.now(), backend: null });
      return;
    }
    this.inFlight += 1;
    let done = false;
    const finish = (backend: string | null): void => {
      if (done) return;
      done = true;
      this.inFlight -= 1;
      this.events.push({ at: performance.now(), backend });
    };
    const req = http.get({ host: this.host, port: this.port, path: '/', agent: this.agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const backend = res.headers['x-backend'];
      res.resume();
      res.on('end', () => finish(typeof backend === 'string' ? backend : null));
      res.on('error', () => finish(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => finish(null));
  }
}
