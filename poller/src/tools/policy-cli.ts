// `loadfeed policy check|explain|simulate`: the operator's tools for policy
// files, all built on the same compiler and evaluator as the poller.
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { PolicyError, OptionError } from '../errors.js';
import { loadPolicyFile, printPolicy } from '../policy/compile.js';
import { policyJsonSchema } from '../policy/json-schema.js';
import { defaultEngines, defaultStrategies } from '../registries.js';
import { formatSimulation, simulate } from './simulate.js';
import { readTrace } from '../ingest/trace.js';
import { parseDuration } from '../util/duration.js';

export const POLICY_USAGE = `Usage:
  loadfeed policy check FILE       check a policy; lists every error; exit 0 ok, 1 errors
  loadfeed policy explain FILE     print the compiled policy with every default written out
  loadfeed policy schema           print the JSON Schema of policy files (for editors)
  loadfeed policy simulate FILE --trace TRACE.jsonl [--format table|csv|json] [--step 1s]
                                   replay a trace recorded with "loadfeed-poller --record"
                                   and print each server's weight over time and every change
                                   with its reason
`;

export async function policyMain(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      trace: { type: 'string' },
      format: { type: 'string', default: 'table' },
      step: { type: 'string', default: '1s' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [file, ...extra] = positionals;
  const asksHelp = values.help || sub === 'help' || sub === '--help' || sub === '-h';
  if (asksHelp || sub === undefined) {
    process.stdout.write(POLICY_USAGE);
    return asksHelp ? 0 : 2;
  }
  if (sub === 'schema' && file === undefined) {
    process.stdout.write(`${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
    return 0;
  }
  if (!['check', 'explain', 'simulate'].includes(sub) || file === undefined || extra.length > 0) {
    process.stderr.write(`loadfeed policy: expected check, explain or simulate and one FILE\n\n${POLICY_USAGE}`);
    return 2;
  }
  let policy;
  try {
    policy = await loadPolicyFile(file, defaultEngines().limits());
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    process.stdout.write(`${err.message}\n${err.problems.length} error${err.problems.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  if (sub === 'check') {
    process.stdout.write(`${file}: ok (${policy.services.length} service${policy.services.length === 1 ? '' : 's'})\n`);
    return 0;
  }
  if (sub === 'explain') {
    process.stdout.write(`# ${file}, compiled: every default written out\n${stringify(printPolicy(policy))}`);
    return 0;
  }
  if (!values.trace) throw new OptionError('simulate needs --trace TRACE.jsonl (record one with loadfeed-poller --record FILE)');
  const format = values.format;
  if (format !== 'table' && format !== 'csv' && format !== 'json') throw new OptionError(`--format: "${format}" must be table, csv or json`);
  const stepMs = parseDuration(values.step);
  if (stepMs === null || stepMs <= 0) throw new OptionError(`--step: "${values.step}" must be a duration, e.g. 1s`);
  const result = simulate(policy, await readTrace(values.trace), defaultStrategies(), stepMs);
  process.stdout.write(formatSimulation(result, format));
  return 0;
}
