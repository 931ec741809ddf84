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
import type { Logger } from 'pino';
import { formatHostPort, parseHostPort, XDS_ENGINE_KIND } from '@loadfeed/kernel-bridge';
import { formatProblem, OptionError } from './errors.js';
import { compilePolicy, readPolicyFile } from './policy/compile.js';
import { PolicyReloader } from './policy/reloader.js';
import { parseDuration } from './util/duration.js';
import {
  DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_LIMITS,
  DEFAULT_MAX_AGENTS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PENDING_CONNECTIONS,
  DEFAULT_MAX_PENDING_PER_PEER,
  DEFAULT_MAX_STREAMS_PER_CONNECTION,
} from './ingest/ingest.js';
import { Poller } from './poller.js';
import { loadOrcaChannel, loadSecurity } from './ingest/security.js';
import { defaultEngines, defaultStrategies } from './registries.js';
import { defaultXdsStateFile, XDS_STATE_FILE_NAME, xdsEngineOptions } from './xds-options.js';
import { DEFAULT_RECORD_MAX_BYTES, TraceRecorder } from './ingest/trace.js';
import { createLogger, parseLogFormat } from './util/log.js';
import { METRICS_MAX_NODES } from './status/metrics.js';
import { DEFAULT_STATUS_LISTEN, StatusServer } from './status/server.js';

export const DEFAULT_LISTEN = '0.0.0.0:7415';

export const POLLER_USAGE = `Usage: loadfeed-poller --policy FILE [options]

Runs the poller: accepts agents, turns their load into weights, applies them.

  --policy FILE          weight-tuning policy (YAML or JSON); reloaded when it
                         changes and on SIGHUP (a bad file is refused, the last
                         good policy stays in force)
  --listen HOST:PORT     gRPC address for agents (default ${DEFAULT_LISTEN})
  --record FILE          write every agent message to FILE as a trace for
                         "loadfeed policy simulate" (stops at --record-max-bytes)
  --record-max-bytes N   default ${DEFAULT_RECORD_MAX_BYTES}
  --tls-cert FILE        server certificate chain (PEM); with --tls-key, agents connect over TLS
  --tls-key FILE         server private key (PEM)
  --tls-client-ca FILE   CA of agents' client certificates: mutual TLS; an agent may only
                         report for the node id its certificate names (CN or DNS SAN)
  --tokens FILE          bearer tokens per node (YAML: tokens: [{node, sha256}])
  --orca-tls-ca FILE     CA of the agentless ORCA backends' certificates (policy servers
                         { orca: HOST:PORT }): read their reports over TLS (default plaintext)
  --orca-tls-cert FILE   client certificate, for ORCA backends that ask for one
  --orca-tls-key FILE    its private key
  --orca-tls-server-name NAME  name to expect in every backend's certificate, when it differs
                         from the host dialled
  --allow-plaintext      accept unauthenticated plaintext agents from other hosts
                         (default: plaintext from loopback only)
  --max-agents N         refuse agents beyond this many (default ${DEFAULT_MAX_AGENTS})
  --xds-listen HOST:PORT serve the weights of engine-xds services to Envoy and proxyless
                         gRPC clients (ADS) there, with the TLS, client-certificate and
                         plaintext rules above (docs/xds.md); off by default
  --xds-state FILE       what xDS serves, kept across restarts (default
                         $STATE_DIRECTORY/${XDS_STATE_FILE_NAME} under systemd, else none)
  Bounds before an agent is authenticated (its Hello; see docs/RELIABILITY.md):
  --max-pending-connections N   connections without a Hello, in all (default ${DEFAULT_MAX_PENDING_CONNECTIONS})
  --max-pending-per-peer N      ... from one address (default ${DEFAULT_MAX_PENDING_PER_PEER})
  --hello-timeout DURATION      close a connection without a Hello after this (default ${DEFAULT_HELLO_TIMEOUT_MS / 1000}s)
  --max-streams-per-connection N  streams of one agent connection (default ${DEFAULT_MAX_STREAMS_PER_CONNECTION})
  --max-message-bytes N         largest agent message (default ${DEFAULT_MAX_MESSAGE_BYTES})
  (make a development CA and certificates with: loadfeed certs --help)
  --status HOST:PORT     status server: dashboard at /, /status (JSON), /metrics
                         (Prometheus), /healthz (default ${DEFAULT_STATUS_LISTEN}; "off" disables)
  --metrics-max-nodes N  nodes (and servers) with their own metric series; more are
                         counted in loadfeed_metrics_series_omitted (default ${METRICS_MAX_NODES})
  --log-level LEVEL      trace, debug, info, warn, error (default info)
  --log-format FORMAT    json, pretty, or auto: pretty on a terminal, else json (default auto)
  -h, --help             show this help
`;

export async function pollerMain(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      policy: { type: 'string' },
      listen: { type: 'string', default: DEFAULT_LISTEN },
      record: { type: 'string' },
      'record-max-bytes': { type: 'string', default: String(DEFAULT_RECORD_MAX_BYTES) },
      'log-level': { type: 'string', default: 'info' },
      'log-format': { type: 'string', default: 'auto' },
      status: { type: 'string', default: DEFAULT_STATUS_LISTEN },
      'metrics-max-nodes': { type: 'string', default: String(METRICS_MAX_NODES) },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-client-ca': { type: 'string' },
      tokens: { type: 'string' },
      'orca-tls-ca': { type: 'string' },
      'orca-tls-cert': { type: 'string' },
      'orca-tls-key': { type: 'string' },
      'orca-tls-server-name': { type: 'string' },
      'allow-plaintext': { type: 'boolean', default: false },
      'max-agents': { type: 'string', default: String(DEFAULT_MAX_AGENTS) },
      'max-pending-connections': { type: 'string', default: String(DEFAULT_MAX_PENDING_CONNECTIONS) },
      'max-pending-per-peer': { type: 'string', default: String(DEFAULT_MAX_PENDING_PER_PEER) },
      'hello-timeout': { type: 'string', default: `${DEFAULT_HELLO_TIMEOUT_MS}ms` },
      'max-streams-per-connection': { type: 'string', default: String(DEFAULT_MAX_STREAMS_PER_CONNECTION) },
      'max-message-bytes': { type: 'string', default: String(DEFAULT_MAX_MESSAGE_BYTES) },
      'xds-listen': { type: 'string' },
      'xds-state': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(POLLER_USAGE);
    return 0;
  }
  if (!values.policy) throw new OptionError('--policy FILE is required (see loadfeed-poller --help)');
  const maxBytes = Number(values['record-max-bytes']);
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new OptionError(`--record-max-bytes: ${values['record-max-bytes']} must be a positive number of bytes`);
  const positive = (flag: string, text: string): number => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n <= 0) throw new OptionError(`--${flag}: ${text} must be a positive integer`);
    return n;
  };
  const helloTimeoutMs = parseDuration(values['hello-timeout']);
  if (helloTimeoutMs === null || helloTimeoutMs < 100 || helloTimeoutMs > 600_000) throw new OptionError(`--hello-timeout: ${values['hello-timeout']} must be a duration from 100ms to 10m`);
  const limits = {
    ...DEFAULT_LIMITS,
    maxAgents: positive('max-agents', values['max-agents']),
    maxPendingConnections: positive('max-pending-connections', values['max-pending-connections']),
    maxPendingPerPeer: positive('max-pending-per-peer', values['max-pending-per-peer']),
    helloTimeoutMs,
    maxStreamsPerConnection: positive('max-streams-per-connection', values['max-streams-per-connection']),
    maxMessageBytes: positive('max-message-bytes', values['max-message-bytes']),
  };
  const security = await loadSecurity({
    cert: values['tls-cert'],
    key: values['tls-key'],
    clientCa: values['tls-client-ca'],
    tokens: values.tokens,
    allowPlaintext: values['allow-plaintext'],
  });
  const orcaChannel = await loadOrcaChannel({
    ca: values['orca-tls-ca'],
    cert: values['orca-tls-cert'],
    key: values['orca-tls-key'],
    serverName: values['orca-tls-server-name'],
  });
  const maxNodeSeries = Number(values['metrics-max-nodes']);
  if (!Number.isSafeInteger(maxNodeSeries) || maxNodeSeries < 0) throw new OptionError(`--metrics-max-nodes: ${values['metrics-max-nodes']} must be an integer >= 0`);
  if (values.status !== 'off') {
    try {
      parseHostPort(values.status, { allowPortZero: true });
    } catch (err) {
      throw new OptionError(`--status: ${(err as Error).message}, or off`, { cause: err });
    }
  }
  const logger = createLogger(values['log-level'], parseLogFormat(values['log-format']));
  const xdsListen = values['xds-listen'];
  if (xdsListen !== undefined) {
    let at;
    try {
      at = parseHostPort(xdsListen, { allowPortZero: true });
    } catch (err) {
      throw new OptionError(`--xds-listen: ${(err as Error).message}`, { cause: err });
    }
    if (at.port !== 0 && at.port === parseHostPort(values.listen, { allowPortZero: true }).port) {
      throw new OptionError(`--xds-listen ${xdsListen}: the xDS port must not be the agents' port (--listen ${values.listen})`);
    }
  }
  const xdsState = values['xds-state'] ?? defaultXdsStateFile(process.env);
  const engines = defaultEngines(xdsListen === undefined ? null : xdsEngineOptions(xdsListen, xdsState, security, logger));
  const file = values.policy;
  const text = await readPolicyFile(file);
  const policy = compilePolicy(text, file, engines.limits());
  if (xdsListen === undefined && policy.services.some((s) => s.engine === XDS_ENGINE_KIND)) {
    throw new OptionError(`${file}: a service on engine xds needs --xds-listen HOST:PORT (the port xDS clients subscribe on)`);
  }
  if (xdsListen !== undefined && xdsState === null) {
    logger.warn('no --xds-state: a restarted poller serves xDS clients nothing until its first cycle, when agents may not be back yet');
  }
  const recorder = values.record
    ? new TraceRecorder(values.record, maxBytes, () => logger.warn({ file: values.record, maxBytes }, 'trace reached its size limit; recording stopped'))
    : undefined;
  const poller = new Poller({
    listen: values.listen,
    policy,
    engines,
    strategies: defaultStrategies(),
    logger,
    security,
    orcaChannel,
    limits,
    ...(recorder ? { recorder } : {}),
  });
  const status = values.status === 'off' ? null : new StatusServer({ poller, logger, maxNodeSeries });
  const statusAt = status ? `http://${formatHostPort(await status.listen(values.status))}/` : null;
  let port: number;
  try {
    port = await poller.start();
  } catch (err) {
    await status?.close();
    throw err;
  }
  logger.info(
    {
      listen: values.listen,
      port,
      policy: file,
      services: policy.services.length,
      record: values.record ?? null,
      tls: values['tls-cert'] !== undefined,
      mutualTls: security.auth.mutualTls,
      tokens: security.auth.tokens.size,
      orcaTls: values['orca-tls-ca'] !== undefined,
      status: statusAt,
      xds: xdsListen === undefined ? null : { listen: xdsListen, stateFile: xdsState },
    },
    'poller started',
  );

  const reloader = new PolicyReloader(file, text, engines.limits(), (outcome) => {
    if (outcome.ok) {
      poller.setPolicy(outcome.policy);
      logger.info({ policy: file, services: outcome.policy.services.length }, 'policy reloaded');
    } else {
      poller.refusePolicy(outcome.problems);
      logger.error({ policy: file, problems: outcome.problems.map(formatProblem) }, 'policy refused; the last good policy stays in force');
    }
  });
  await reloader.start();
  await waitForSignal(logger);
  reloader.stop();
  await status?.close();
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
