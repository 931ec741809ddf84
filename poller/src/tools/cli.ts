/**
 * loadfeed: the operator's command. Subcommands: `poller` (the service),
 * `policy check|explain|simulate`, `certs`, `top` (a live terminal view of a
 * poller's cluster). The demo is its own package (`npm run demo`), so the
 * poller never depends on the agent.
 */
import { certsMain } from './certs.js';
import { pollerMain } from '../main.js';
import { policyMain } from './policy-cli.js';
import { topMain } from './top/main.js';

export const CLI_USAGE = `Usage: loadfeed COMMAND [options]

Commands:
  poller               run the poller (same as loadfeed-poller)
  top                  live view of a poller's cluster: CPU, PSI, memory, connections, weights
  certs --out DIR      make a development CA and TLS certificates for poller and agents
  policy check FILE    check a policy file; lists every error, exits 1 if there is one
  policy explain FILE  print the compiled policy with every default
  policy simulate FILE --trace T.jsonl   replay recorded samples through a policy

Run "loadfeed COMMAND --help" for a command's options.
`;

export async function cliMain(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'poller':
      return pollerMain(rest);
    case 'policy':
      return policyMain(rest);
    case 'certs':
      return certsMain(rest);
    case 'top':
      return topMain(rest);
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
