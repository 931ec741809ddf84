/**
 * loadfeed-poller: runs on the director. It accepts agents' telemetry
 * streams, tracks their liveness, turns their load into weights through the
 * policy file, and writes those weights into the forwarding engine.
 *
 * It must never: act on a sample it has not validated, touch an engine
 * service the policy does not name, or give up the last good policy for a
 * bad one.
 */
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { PolicyError } from './errors.js';
import { loadPolicyFile } from './policy/compile.js';
import { Poller } from './poller.js';
import { defaultEngines, defaultStrategies } from './registries.js';

export const DEFAULT_LISTEN = '0.0.0.0:7415';

export const POLLER_USAGE = `Usage: loadfeed-poller --policy FILE [options]

Runs the poller: accepts agents, turns their load into weights, applies them.

  --policy FILE          weight-tuning policy (YAML or JSON); SIGHUP reloads it
  --listen HOST:PORT     gRPC address for agents (default ${DEFAULT_LISTEN})
  --log-level LEVEL      trace, debug, info, warn, error (default info)
  -h, --help             show this help
`;

export async function pollerMain(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      policy: { type: 'string' },
      listen: { type: 'string', default: DEFAULT_LISTEN },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(POLLER_USAGE);
    return 0;
  }
  if (!values.policy) throw new Error('--policy FILE is required (see loadfeed-poller --help)');
  const logger = pino({ level: values['log-level'] });
  const engines = defaultEngines();
  const file = values.policy;
  const policy = await loadPolicyFile(file, engines.limits());
  const poller = new Poller({ listen: values.listen, policy, engines, strategies: defaultStrategies(), logger });
  const port = await poller.start();
  logger.info({ listen: values.listen, port, policy: file, services: policy.services.length }, 'poller started');

  const reload = (): void => {
    loadPolicyFile(file, engines.limits()).then(
      (next) => {
        poller.setPolicy(next);
        logger.info({ policy: file }, 'policy reloaded');
      },
      (err: unknown) => {
        const problems = err instanceof PolicyError ? err.problems : [{ message: String(err) }];
        logger.error({ policy: file, problems }, 'policy refused; the last good policy stays in force');
      },
    );
  };
  process.on('SIGHUP', reload);
  await waitForSignal(logger);
  process.off('SIGHUP', reload);
  await poller.stop();
  return 0;
}

function waitForSignal(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'stopping');
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
