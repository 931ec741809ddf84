/**
 * loadfeed top: a live terminal view of a poller's cluster (per server CPU,
 * PSI, memory, connections, weight and share; sortable), read from the
 * poller's status server. Plain ANSI, readable over SSH at 80 columns.
 *
 * It must never change anything: it only reads GET /status.
 */
import { parseArgs } from 'node:util';
import { parseDuration } from '../../util/duration.js';
import { DEFAULT_STATUS_LISTEN } from '../../status/server.js';
import type { StatusDocument } from '../../status/document.js';
import { fetchStatus, statusBaseUrl } from './client.js';
import { render, sortByKey, sortKeys, type SortKey } from './render.js';
import { ExternalError, OptionError } from '../../errors.js';

export function topUsage(): string {
  const keys = Object.entries(sortByKey());
  return `Usage: loadfeed top [options]

Live view of a poller's cluster: per server the metric columns of the
catalog (CPU, PSI, memory), connections, weight and share of the service,
and cluster totals.

  --status HOST:PORT    the poller's status server (default ${DEFAULT_STATUS_LISTEN})
  --interval DURATION   refresh period, e.g. 1s or 500ms (default 1s)
  --sort KEY            ${sortKeys().join(', ')} (default cpu)
  --once                print one screen and exit (also what a pipe gets, once per interval)
  -h, --help            show this help

Keys: ${keys.map(([k]) => k).join(' ')}  sort by ${keys.map(([, v]) => v).join(', ')}
      r              reverse the order
      q, Ctrl-C      quit
A column of several metrics shows the highest: PSI is the highest of the
scope's cpu, memory and io "some avg10" pressure.
`;
}

const ALT_SCREEN_ON = '\x1b[?1049h\x1b[?25l';
const ALT_SCREEN_OFF = '\x1b[?25h\x1b[?1049l';

export interface TopIo {
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
}

export async function topMain(argv: readonly string[], io: TopIo = { stdin: process.stdin, stdout: process.stdout }): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      status: { type: 'string', default: DEFAULT_STATUS_LISTEN },
      interval: { type: 'string', default: '1s' },
      sort: { type: 'string', default: 'cpu' },
      once: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(topUsage());
    return 0;
  }
  const base = statusBaseUrl(values.status);
  const intervalMs = parseDuration(values.interval);
  if (intervalMs === null || intervalMs < 100) throw new OptionError(`--interval: "${values.interval}" must be a duration of at least 100ms, e.g. 1s`);
  if (!sortKeys().includes(values.sort)) throw new OptionError(`--sort: "${values.sort}" must be one of ${sortKeys().join(', ')}`);
  const view = new View(base, values.sort);

  if (values.once) {
    const doc = await fetchOrExplain(base);
    io.stdout.write(view.text(doc, null, widthOf(io.stdout)));
    return 0;
  }
  return io.stdout.isTTY ? live(view, io, intervalMs) : batch(view, io, intervalMs);
}

class View {
  sort: SortKey;
  reverse = false;

  constructor(
    readonly base: URL,
    sort: SortKey,
  ) {
    this.sort = sort;
  }

  text(doc: StatusDocument | null, error: string | null, columns: number, rows?: number, color = false): string {
    const source = this.base.host;
    if (doc === null) {
      return error === null
        ? `loadfeed top  ${source}\n\nconnecting to ${this.base.href} …\n`
        : `loadfeed top  ${source}\n\n${error}\n${hint(this.base)}\nRetrying; q quits.\n`;
    }
    const screen = render(doc, columns, { sort: this.sort, reverse: this.reverse, source, color, ...(rows === undefined ? {} : { rows: rows - (error ? 1 : 0) }) });
    if (error === null) return screen;
    const [first, ...rest] = screen.split('\n');
    const stale = `showing ${new Date(doc.generatedAt).toISOString().slice(11, 19)}Z: ${error}`.slice(0, Math.max(20, columns));
    return [first, color ? `\x1b[31m${stale}\x1b[0m` : stale, ...rest].join('\n');
  }

  /** A key press: true when it asks to quit. */
  key(k: string): boolean {
    if (k === 'q' || k === 'Q' || k === '\x03' || k === '\x04') return true;
    const sort = sortByKey()[k];
    if (sort !== undefined) {
      if (sort === this.sort) this.reverse = !this.reverse;
      else {
        this.sort = sort;
        this.reverse = false;
      }
    } else if (k === 'r') {
      this.reverse = !this.reverse;
    }
    return false;
  }
}

/** The terminal's width; through a pipe, $COLUMNS or 80. */
function widthOf(out: NodeJS.WriteStream): number {
  return out.columns ?? (Number(process.env['COLUMNS']) || 80);
}

function hint(base: URL): string {
  return `Is loadfeed-poller running with --status ${base.host}? ("npm run demo" prints its dashboard address.)`;
}

async function fetchOrExplain(base: URL): Promise<StatusDocument> {
  try {
    return await fetchStatus(base);
  } catch (err) {
    throw new ExternalError(`cannot read ${new URL('status', base).href}: ${(err as Error).message}. ${hint(base)}`, { cause: err });
  }
}

/** Not a terminal: one screen per interval, separated by a blank line, until a signal (like `top -b`). */
function batch(view: View, io: TopIo, intervalMs: number): Promise<number> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    const stop = (): void => {
      if (timer) clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(0);
    };
    const tick = async (): Promise<void> => {
      let text: string;
      try {
        text = view.text(await fetchStatus(view.base), null, widthOf(io.stdout));
      } catch (err) {
        text = view.text(null, (err as Error).message, widthOf(io.stdout));
      }
      io.stdout.write(`${text}\n`);
      timer = setTimeout(() => void tick(), intervalMs);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    void tick();
  });
}

/** A terminal: alternate screen, redrawn in place every interval and on every key or resize. */
function live(view: View, io: TopIo, intervalMs: number): Promise<number> {
  const { stdin, stdout } = io;
  let doc: StatusDocument | null = null;
  let error: string | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const raw = stdin.isTTY === true;

  const draw = (): void => {
    if (stopped) return;
    const lines = view.text(doc, error, stdout.columns ?? 80, stdout.rows ?? 24, true).replace(/\n$/, '').split('\n');
    stdout.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\x1b[J`);
  };

  return new Promise((resolve) => {
    const quit = (): void => {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      stdin.off('data', onKey);
      stdout.off('resize', draw);
      process.off('SIGINT', quit);
      process.off('SIGTERM', quit);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      stdout.write(ALT_SCREEN_OFF);
      resolve(0);
    };
    const onKey = (chunk: Buffer | string): void => {
      for (const k of String(chunk)) {
        if (view.key(k)) {
          quit();
          return;
        }
      }
      draw();
    };
    const refresh = async (): Promise<void> => {
      try {
        doc = await fetchStatus(view.base);
        error = null;
      } catch (err) {
        error = `cannot read ${new URL('status', view.base).href}: ${(err as Error).message}`;
      }
      draw();
      if (!stopped) timer = setTimeout(() => void refresh(), intervalMs);
    };

    stdout.write(ALT_SCREEN_ON);
    if (raw) stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.on('data', onKey);
    stdin.resume();
    stdout.on('resize', draw);
    process.on('SIGINT', quit);
    process.on('SIGTERM', quit);
    draw();
    void refresh();
  });
}
