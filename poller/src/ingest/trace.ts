// Traces: what agents told the poller, in order, with the poller's clock.
// The poller writes one with `--record FILE`; `loadfeed policy simulate`
// replays one through any policy, deterministically. One JSON object a line:
//   {"t":1200,"type":"hello","node":"web-1","hello":{…}}
//   {"t":2200,"type":"sample","node":"web-1","sample":{…}}
//   {"t":5000,"type":"drain","node":"web-1","reason":"deploy"}
//   {"t":6000,"type":"undrain","node":"web-1"}
//   {"t":7000,"type":"end","node":"web-1"}
// `t` is milliseconds since the recording started.
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { HelloInit, SampleInit } from '@loadfeed/proto';
import { PollerError } from '../errors.js';

export const DEFAULT_RECORD_MAX_BYTES = 100 * 1024 * 1024;

export type TraceEvent =
  | { readonly t: number; readonly type: 'hello'; readonly node: string; readonly hello: HelloInit }
  | { readonly t: number; readonly type: 'sample'; readonly node: string; readonly sample: SampleInit }
  | { readonly t: number; readonly type: 'drain'; readonly node: string; readonly reason: string }
  | { readonly t: number; readonly type: 'undrain'; readonly node: string }
  | { readonly t: number; readonly type: 'end'; readonly node: string };

type Unstamped<T> = T extends unknown ? Omit<T, 't'> : never;
/** An event as the poller hands it to the recorder, which stamps the time. */
export type TraceRecord = Unstamped<TraceEvent>;

/** Appends events to a file, and stops (saying so once) before it exceeds maxBytes: a recording never fills the disk. */
export class TraceRecorder {
  private readonly out: WriteStream;
  private readonly started = performance.now();
  private written = 0;
  private full = false;

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    private readonly onFull: () => void,
  ) {
    this.out = createWriteStream(file, { flags: 'w' });
  }

  record(event: TraceRecord, at = performance.now()): void {
    if (this.full) return;
    const line = `${JSON.stringify({ t: Math.round(at - this.started), ...event })}\n`;
    if (this.written + line.length > this.maxBytes) {
      this.full = true;
      this.onFull();
      return;
    }
    this.written += line.length;
    this.out.write(line);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(resolve));
  }
}

export async function readTrace(file: string): Promise<TraceEvent[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PollerError('TRACE_INVALID', `${file}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  const events: TraceEvent[] = [];
  let last = -Infinity;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch (err) {
      throw new PollerError('TRACE_INVALID', `${where}: not JSON: ${(err as Error).message}`);
    }
    const ev = e as Partial<TraceEvent> & Record<string, unknown>;
    if (typeof ev.t !== 'number' || !Number.isFinite(ev.t)) throw new PollerError('TRACE_INVALID', `${where}: t: ${JSON.stringify(ev.t)} must be a number of ms`);
    if (ev.t < last) throw new PollerError('TRACE_INVALID', `${where}: t: ${ev.t} goes back in time (previous ${last})`);
    if (typeof ev.node !== 'string') throw new PollerError('TRACE_INVALID', `${where}: node: ${JSON.stringify(ev.node)} must be a node id`);
    const ok =
      (ev.type === 'hello' && typeof ev['hello'] === 'object') ||
      (ev.type === 'sample' && typeof ev['sample'] === 'object') ||
      (ev.type === 'drain' && typeof ev['reason'] === 'string') ||
      ev.type === 'undrain' ||
      ev.type === 'end';
    if (!ok) throw new PollerError('TRACE_INVALID', `${where}: type: ${JSON.stringify(ev.type)} must be hello, sample, drain, undrain or end with its payload`);
    last = ev.t;
    events.push(ev as TraceEvent);
  });
  return events;
}
