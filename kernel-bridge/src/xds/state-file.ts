// The xds engine's memory across poller restarts. IPVS keeps its weights in
// the kernel while the poller restarts, and the restarted poller adopts them;
// the xDS clients' weights live in this process, so they are kept in a file
// instead: a restarted poller serves the last weights at once, before the
// agents have reconnected, and no client is told that its endpoints are gone.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { OptionError } from '../errors.js';
import type { EngineOp } from '../model.js';
import type { XdsService } from './model.js';

const FORMAT = 1;

interface StateDocument {
  readonly format: typeof FORMAT;
  readonly services: Record<string, { readonly scheduler: string; readonly destinations: Record<string, number> }>;
}

export function serializeState(services: ReadonlyMap<string, XdsService>): string {
  const document: StateDocument = {
    format: FORMAT,
    services: Object.fromEntries(
      [...services].map(([name, s]) => [
        name,
        { scheduler: s.scheduler, destinations: Object.fromEntries([...s.destinations].map(([key, d]) => [key, d.weight])) },
      ]),
    ),
  };
  return `${JSON.stringify(document)}\n`;
}

/** The ops that rebuild a saved state; null when there is no file yet. Malformed → OptionError naming the file and field. */
export async function readState(file: string): Promise<EngineOp[] | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new OptionError(`xds state file ${file}: ${(err as Error).message}`);
  }
  const fail = (what: string): never => {
    throw new OptionError(`xds state file ${file}: ${what}`);
  };
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    return fail(`not JSON (${(err as Error).message})`);
  }
  const d = document as Partial<StateDocument> | null;
  if (d === null || typeof d !== 'object' || d.format !== FORMAT) return fail(`format must be ${FORMAT}`);
  if (d.services === null || typeof d.services !== 'object') return fail('services must be an object');
  const ops: EngineOp[] = [];
  for (const [name, s] of Object.entries(d.services)) {
    if (s === null || typeof s !== 'object' || typeof s.scheduler !== 'string' || s.destinations === null || typeof s.destinations !== 'object') {
      return fail(`services.${name} must have a scheduler string and a destinations object`);
    }
    ops.push({ op: 'add-service', service: { address: name, scheduler: s.scheduler } });
    for (const [destination, weight] of Object.entries(s.destinations)) {
      if (typeof weight !== 'number') return fail(`services.${name}.destinations.${destination}: ${JSON.stringify(weight).slice(0, 40)} is not a number`);
      ops.push({ op: 'add-destination', service: name, destination, weight });
    }
  }
  return ops;
}

/** Replace the file atomically (write beside it, then rename), so a crash never leaves half a state. */
export async function writeState(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode: 0o600 });
  await rename(temporary, file);
}
