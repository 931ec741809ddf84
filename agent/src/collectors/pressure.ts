// Pressure stall information: /proc/pressure/{cpu,memory,io} for the host and
// the same format in cgroup v2 `cpu.pressure`, `memory.pressure`, `io.pressure`
// (Documentation/accounting/psi.rst):
//   some avg10=1.71 avg60=3.11 avg300=2.29 total=14305870
//   full avg10=0.00 avg60=0.00 avg300=0.00 total=0
import { readTextOrNull } from './read-text.js';
import { decimalField, fields, lines, parseError } from './parse-text.js';

export type PressureResource = 'cpu' | 'memory' | 'io';

export interface Pressure {
  /** Share of the last 10 s in which at least one task stalled, 0..1. */
  readonly someAvg10: number;
  /** Share of the last 10 s in which all non-idle tasks stalled, 0..1; absent for host CPU before Linux 5.13. */
  readonly fullAvg10: number | null;
}

export function parsePressure(text: string, file = 'pressure'): Pressure {
  let some: number | null = null;
  let full: number | null = null;
  for (const line of lines(file, text)) {
    const [kind, avg10] = fields(line);
    if (kind !== 'some' && kind !== 'full') throw parseError(file, `unexpected line ${JSON.stringify(line)}`);
    if (avg10 === undefined || !avg10.startsWith('avg10=')) throw parseError(file, `no avg10 in line ${JSON.stringify(line)}`);
    // The kernel prints a percentage with two decimals: divide whole hundredths
    // so 8.69 becomes 0.0869, not 0.08689999999999999.
    const fraction = Math.round(decimalField(file, avg10.slice('avg10='.length), line) * 100) / 10_000;
    if (kind === 'some') some = fraction;
    else full = fraction;
  }
  if (some === null) throw parseError(file, 'no "some" line');
  return { someAvg10: some, fullAvg10: full };
}

/** Reads one pressure file; null when the kernel has no PSI (absent, or disabled: EOPNOTSUPP). */
export async function readPressureFile(file: string): Promise<Pressure | null> {
  const text = await readTextOrNull(file);
  return text === null ? null : parsePressure(text, file);
}
