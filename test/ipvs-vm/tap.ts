// Reads ava's --tap output from the guest: the trailer's counts and, for each
// failed test, its title and the YAML block ava prints under it. Pure.

export interface TapSummary {
  readonly pass: number;
  readonly fail: number;
  readonly skip: number;
  /** "not ok" entries: title line plus its diagnostic block, as printed. */
  readonly failures: readonly string[];
  /** False when the output has no "# tests" trailer (ava did not finish). */
  readonly complete: boolean;
}

export function summarizeTap(text: string): TapSummary {
  const count = (name: string): number => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  const failures: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (!line.startsWith('not ok ')) continue;
    const block = [line];
    if (lines[i + 1]?.trim() === '---') {
      for (let j = i + 1; j < lines.length; j++) {
        const next = lines[j] ?? '';
        block.push(next);
        if (next.trim() === '...') break;
      }
    }
    failures.push(block.join('\n'));
  }
  return {
    pass: count('pass'),
    fail: count('fail'),
    skip: count('skip') + count('todo'),
    failures,
    complete: /^# tests \d+$/m.test(text),
  };
}
