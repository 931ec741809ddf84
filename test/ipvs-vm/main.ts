// loadfeed-vm: run one command in the IPVS test guest, from a shell.
//
//   node test/build/ipvs-vm/main.js [--preload ava,netlink] [--timeout 600] -- COMMAND [ARG...]
//
// Prints the command's stdout and stderr and exits with its status (125 when
// the guest failed before reporting one, with the console's tail on stderr).
// For developers poking at IPVS by hand; the tests call runInGuest() directly.
// It never changes anything on the host: the guest's writes go to a tmpfs.
import { parseArgs } from 'node:util';
import { runInGuest } from './run.js';

const { values, positionals } = parseArgs({
  options: { preload: { type: 'string' }, timeout: { type: 'string' } },
  allowPositionals: true,
});
if (positionals.length === 0) {
  process.stderr.write('usage: main.js [--preload pkg,pkg] [--timeout seconds] -- COMMAND [ARG...]\n');
  process.exit(125);
}
const result = await runInGuest({
  command: positionals,
  preload: values.preload?.split(',').filter((p) => p !== '') ?? [],
  ...(values.timeout === undefined ? {} : { timeoutMs: Number(values.timeout) * 1000 }),
});
process.stdout.write(result.stdout);
process.stderr.write(result.stderr);
if (result.failure !== null) {
  process.stderr.write(`loadfeed-vm: ${result.failure}; console tail:\n${result.console.split('\n').slice(-30).join('\n')}\n`);
}
process.stderr.write(`loadfeed-vm: ${result.kernel}, ${result.accel}, ${(result.durationMs / 1000).toFixed(1)} s\n`);
process.exit(result.exitCode ?? 125);
