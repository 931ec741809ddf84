// Shared tail of every poller-side executable: run, set the exit code, and
// print an error as one line that says what went wrong (and, for a flag it
// does not know, where the flags are listed).
export function runBin(name: string, main: (argv: readonly string[]) => Promise<number>): void {
  const argv = process.argv.slice(2);
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`${name}: ${message}${helpHint(name, argv, err)}\n`);
      process.exitCode = 2;
    },
  );
}

/** `; see loadfeed top --help` after an error of node:util parseArgs (unknown flag, missing value). */
function helpHint(name: string, argv: readonly string[], err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) return '';
  const command = argv[0] !== undefined && !argv[0].startsWith('-') && name === 'loadfeed' ? ` ${argv[0]}` : '';
  return `; see ${name}${command} --help`;
}
