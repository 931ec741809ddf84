// The load generator's output: one line per request (see balance-loadgen.ts).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const LOADGEN_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'balance-loadgen.js');

export interface RequestRecord {
  /** When the request was meant to start, ms since the load started. */
  readonly intendedMs: number;
  /** From the intended start to the response (or the failure), µs. */
  readonly latencyUs: number;
  /** Backend id from the response, or '-'. */
  readonly backend: string;
  readonly outcome: 'ok' | 'timeout' | 'refused' | 'reset' | 'bad' | 'overflow';
}

export function parseRecords(text: string): RequestRecord[] {
  const out: RequestRecord[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [t, lat, backend, outcome] = line.split(' ');
    out.push({ intendedMs: Number(t), latencyUs: Number(lat), backend: backend ?? '-', outcome: (outcome ?? 'bad') as RequestRecord['outcome'] });
  }
  return out.sort((a, b) => a.intendedMs - b.intendedMs);
}
