// The YAML step of compiling a policy: text → plain data, and the line of a
// path for problems. It is most of a compile's time (about 35 µs a server
// entry: 10,000 servers took 0.35 s on an idle core, 3–7 s on a loaded
// machine), so a reload runs it in a worker thread (parseOffThread) and the
// event loop goes on reading agents' samples meanwhile.
import { Worker } from 'node:worker_threads';
import * as yaml from 'yaml';

export type YamlResult =
  | { readonly ok: true; readonly data: unknown }
  | { readonly ok: false; readonly problems: readonly { readonly line: number | null; readonly message: string }[] };

/** Paths into the data, as zod reports them. */
export type Paths = readonly (readonly PropertyKey[])[];

/**
 * A parser that keeps the last document to answer line queries. Refers to
 * nothing outside its body: the worker runs it from its source text.
 */
function yamlParser(y: typeof yaml) {
  let doc: yaml.Document | null = null;
  let counter = new y.LineCounter();
  return {
    parse(text: string): YamlResult {
      counter = new y.LineCounter();
      doc = y.parseDocument(text, { lineCounter: counter, uniqueKeys: true, logLevel: 'error' });
      if (doc.errors.length > 0) {
        return {
          ok: false,
          problems: doc.errors.map((e) => ({ line: e.linePos?.[0].line ?? null, message: (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '') })),
        };
      }
      try {
        // Bounded alias expansion: a "billion laughs" file is refused, not expanded.
        return { ok: true, data: doc.toJS({ maxAliasCount: 100 }) as unknown };
      } catch (err) {
        return { ok: false, problems: [{ line: null, message: (err as Error).message }] };
      }
    },
    /** The line of the deepest existing node of each path (null: none). */
    lines(paths: Paths): (number | null)[] {
      return paths.map((path) => {
        for (let n = path.length; n >= 0; n -= 1) {
          const node = doc?.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
          const offset = n === 0 ? doc?.contents?.range?.[0] : node?.range?.[0];
          if (offset !== undefined) return counter.linePos(offset).line;
        }
        return null;
      });
    },
  };
}

/** Parse on this thread (startup, `policy check`, tests). */
export function parseHere(text: string): { readonly result: YamlResult; lines(paths: Paths): (number | null)[] } {
  const parser = yamlParser(yaml);
  return { result: parser.parse(text), lines: (paths) => parser.lines(paths) };
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.yaml).then((y) => {
  const parser = (${yamlParser.toString()})(y);
  parentPort.on('message', (m) => parentPort.postMessage(m.text === undefined ? parser.lines(m.paths) : parser.parse(m.text)));
  parentPort.postMessage('ready');
});
`;

/**
 * Parse in a worker thread; `close` ends it (after the line queries a
 * refused file needs). Rejects only when the worker itself fails.
 */
export async function parseOffThread(text: string): Promise<{ readonly result: YamlResult; lines(paths: Paths): Promise<(number | null)[]>; close(): Promise<void> }> {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { yaml: import.meta.resolve('yaml') } });
  worker.unref();
  let failure: Error | null = null;
  const pending: { resolve(value: unknown): void; reject(err: Error): void }[] = [];
  const fail = (err: Error): void => {
    failure ??= err;
    for (const p of pending.splice(0)) p.reject(err);
  };
  worker.on('message', (m: unknown) => pending.shift()?.resolve(m));
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the policy parser's worker exited (${code})`)));
  const next = (message?: unknown): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (failure) {
        reject(failure);
        return;
      }
      pending.push({ resolve, reject });
      if (message !== undefined) worker.postMessage(message);
    });
  try {
    await next();
    const result = (await next({ text })) as YamlResult;
    return {
      result,
      lines: async (paths) => (await next({ paths })) as (number | null)[],
      close: async () => {
        await worker.terminate();
      },
    };
  } catch (err) {
    await worker.terminate();
    throw err;
  }
}
