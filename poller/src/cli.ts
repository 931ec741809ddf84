/**
 * loadfeed: the operator's command. Subcommands: `poller` (the service),
 * `demo` (the whole loop on loopback), `policy check FILE`.
 */
import { demoMain } from './demo/main.js';
import { PolicyError } from './errors.js';
import { pollerMain } from './main.js';
import { loadPolicyFile } from './policy/compile.js';
import { defaultEngines } from './registries.js';

export const CLI_USAGE = `Usage: loadfeed COMMAND [options]

Commands:
  demo                 run the whole loop on loopback: 3 backends, agents, poller, fast path, load
  poller               run the poller (same as loadfeed-poller)
  policy check FILE    check a policy file; lists every error, exits 1 if there is one

Run "loadfeed COMMAND --help" for a command's options.
`;

export async function cliMain(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'demo':
      return demoMain(rest);
    case 'poller':
      return pollerMain(rest);
    case 'policy':
      return policyMain(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(CLI_USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`loadfeed: unknown command "${command}"\n\n${CLI_USAGE}`);
      return 2;
  }
}

async function policyMain(argv: readonly string[]): Promise<number> {
  const [sub, file, ...extra] = argv;
  if (sub !== 'check' || file === undefined || extra.length > 0) {
    process.stderr.write('Usage: loadfeed policy check FILE\n');
    return 2;
  }
  try {
    const policy = await loadPolicyFile(file, defaultEngines().limits());
    process.stdout.write(`${file}: ok (${policy.services.length} service${policy.services.length === 1 ? '' : 's'})\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    process.stdout.write(`${err.message}\n`);
    return 1;
  }
}
