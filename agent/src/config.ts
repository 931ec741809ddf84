// Agent configuration: command-line flags, then LOADFEED_* environment
// variables, then a YAML/JSON config file, then defaults — in that precedence.
// Everything is compiled here into a fully defaulted `AgentConfig`; nothing
// downstream checks for undefined.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { AgentError } from './errors.js';
import { LOG_FORMATS, type LogFormat } from './log-line.js';
import { APP_METRIC_NAME, isOrcaNodeId, ORCA_NODE_PREFIX } from '@loadfeed/proto';
import { parseSeriesSelector } from './app/prometheus-text.js';
import type { SeriesSpec } from './app/prometheus-source.js';

export const DEFAULT_INTERVAL_MS = 1_000;
export const MIN_INTERVAL_MS = 100;
export const MAX_INTERVAL_MS = 60_000;
/**
 * A change of CPU utilisation (fraction of the scope's capacity) at least
 * this large since the last report is reported at once, between intervals.
 * An antagonist or a slowdown moves it by 0.3-0.5 within a quarter second;
 * a quarter second of Poisson traffic at half load moves it by about 0.15.
 */
export const DEFAULT_EARLY_CHANGE = 0.25;
/**
 * A relative move of an application metric at least this large since the
 * last report (and beyond its own jitter) is reported at once: a dependency
 * turning 3x slower moves the mean latency of the requests an application
 * averages by a quarter once an eighth of them met the slowdown.
 */
export const DEFAULT_EARLY_APP_CHANGE = 0.25;
export const DEFAULT_POLLER_PORT = 7415;
/** Application metrics not refreshed within this long are dropped (sent as absent). */
export const DEFAULT_APP_TTL_MS = 5_000;
/** Longest Unix socket path the kernel takes (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

/** Where the status socket is by default: `$XDG_RUNTIME_DIR/loadfeed-agent.sock` in a user session, else `/run/loadfeed/agent.sock`. */
export function defaultStatusSocket(env: NodeJS.ProcessEnv): string {
  const runtime = env['XDG_RUNTIME_DIR'];
  return runtime !== undefined && runtime !== '' ? path.join(runtime, 'loadfeed-agent.sock') : '/run/loadfeed/agent.sock';
}

export type ScopeConfig =
  | { readonly kind: 'host' }
  | { readonly kind: 'cgroup'; readonly path: string }
  | { readonly kind: 'process'; readonly pid: number; readonly cores: number; readonly memoryBytes: number | null };

export interface AgentConfig {
  readonly nodeId: string;
  /** `host:port` of every poller to stream to (a director pair gets every sample). */
  readonly pollers: readonly string[];
  readonly intervalMs: number;
  /** Report between intervals when CPU utilisation moved this much since the last report (0 = only every interval). */
  readonly earlyChange: number;
  /** Report between intervals when an application metric moved by this fraction of its value since the last report (0 = never). */
  readonly earlyAppChange: number;
  readonly scope: ScopeConfig;
  readonly services: readonly { readonly name: string; readonly port: number }[];
  readonly labels: Readonly<Record<string, string>>;
  readonly procRoot: string;
  readonly sysRoot: string;
  /** Unix socket of the local read-only status endpoint (`loadfeed-agent status`); null when off. */
  readonly statusSocket: string | null;
  /** json, pretty, or auto (pretty when stderr is a terminal). */
  readonly logFormat: LogFormat;
  readonly transport: TransportConfig;
  readonly app: AppMetricsConfig;
  /** Print one sample and exit instead of streaming. */
  readonly once: boolean;
  readonly json: boolean;
}

/** Where the application's own metrics come from; every source is optional. */
export interface AppMetricsConfig {
  /** `host:port` of the application's ORCA service; null when off. */
  readonly orca: string | null;
  /** TLS to the ORCA service (files named as configured); null: plaintext. */
  readonly orcaTls: OrcaTlsConfig | null;
  /** http(s) URL of the application's Prometheus endpoint; null when off. */
  readonly prometheus: string | null;
  /** Series kept from it, each under an application metric name. */
  readonly series: readonly SeriesSpec[];
  /** Unix socket the application writes `name value` lines to; null when off. */
  readonly pushSocket: string | null;
  /** A value not refreshed within this long is dropped, ms. */
  readonly ttlMs: number;
}

/** Whether any application metrics source is configured (ORCA, Prometheus or push). */
export function appSourcesConfigured(c: AppMetricsConfig): boolean {
  return c.orca !== null || c.prometheus !== null || c.pushSocket !== null;
}

export interface OrcaTlsConfig {
  /** CA that signs the ORCA server's certificate. */
  readonly ca: string;
  /** Client certificate and key, for a server that asks for one (both or neither). */
  readonly cert: string | null;
  readonly key: string | null;
  /** Name to expect in the server's certificate when it differs from the host dialled. */
  readonly serverName: string | null;
}

export interface TransportConfig {
  /** CA that signs the pollers' certificates: turns on TLS. */
  readonly tlsCa: string | null;
  /** Client certificate and key for mutual TLS (both or neither). */
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  /** Name to expect in the poller's certificate when it differs from the host dialled (e.g. dialling an IP). */
  readonly tlsServerName: string | null;
  /** File holding this node's bearer token (never on the command line, where `ps` shows it). */
  readonly tokenFile: string | null;
  /** Send a token or stream unencrypted to a poller that is not on loopback. */
  readonly allowPlaintext: boolean;
}

/** Raw settings as any source gives them: every value still text or a list of text. */
interface RawSettings {
  nodeId?: string;
  pollers?: string[];
  interval?: string;
  earlyChange?: string;
  earlyAppChange?: string;
  scope?: string;
  capacity?: string;
  memory?: string;
  services?: string[];
  labels?: string[];
  procRoot?: string;
  sysRoot?: string;
  statusSocket?: string;
  logFormat?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
  tokenFile?: string;
  allowPlaintext?: string;
  orca?: string;
  orcaTlsCa?: string;
  orcaTlsCert?: string;
  orcaTlsKey?: string;
  orcaTlsServerName?: string;
  appMetrics?: string;
  appMetricSeries?: string[];
  appSocket?: string;
  appTtl?: string;
}

const FLAG_OPTIONS = {
  config: { type: 'string' },
  'node-id': { type: 'string' },
  poller: { type: 'string', multiple: true },
  interval: { type: 'string' },
  'early-change': { type: 'string' },
  'early-app-change': { type: 'string' },
  scope: { type: 'string' },
  capacity: { type: 'string' },
  memory: { type: 'string' },
  service: { type: 'string', multiple: true },
  label: { type: 'string', multiple: true },
  'proc-root': { type: 'string' },
  'sys-root': { type: 'string' },
  'status-socket': { type: 'string' },
  'log-format': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-server-name': { type: 'string' },
  'token-file': { type: 'string' },
  'allow-plaintext': { type: 'boolean' },
  orca: { type: 'string' },
  'orca-tls-ca': { type: 'string' },
  'orca-tls-cert': { type: 'string' },
  'orca-tls-key': { type: 'string' },
  'orca-tls-server-name': { type: 'string' },
  'app-metrics': { type: 'string' },
  'app-metric': { type: 'string', multiple: true },
  'app-socket': { type: 'string' },
  'app-ttl': { type: 'string' },
  once: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const AGENT_USAGE = `Usage: loadfeed-agent [options]

Samples this server's load and streams it to one or more loadfeed pollers.

  --poller HOST:PORT     poller to stream to; repeat for a director pair (LOADFEED_POLLERS, comma-separated)
  --node-id ID           identity of this server (LOADFEED_NODE_ID; default: host name)
  --interval DURATION    sampling interval, e.g. 1s or 250ms (LOADFEED_INTERVAL; default 1s; the poller may change it)
  --early-change F       look four times per interval and report at once when CPU utilisation moved by F (0..1) since
                         the last report; 0 = report only every interval (LOADFEED_EARLY_CHANGE; default ${DEFAULT_EARLY_CHANGE})
  --early-app-change F   report at once, too, when an application metric (--orca, --app-metrics, --app-socket) moved
                         by F of its value since the last report, beyond its own jitter; 0 = off
                         (LOADFEED_EARLY_APP_CHANGE; default ${DEFAULT_EARLY_APP_CHANGE})
  --scope SCOPE          host | cgroup:PATH | cgroup:self | process:PID (LOADFEED_SCOPE; default host)
  --capacity CORES       CPU capacity of a process scope, in cores (LOADFEED_CAPACITY)
  --memory BYTES         memory capacity of a process scope (LOADFEED_MEMORY; default: host memory)
  --service NAME:PORT    count connections of a local service; repeatable (LOADFEED_SERVICES, comma-separated)
  --label KEY=VALUE      label for pool selection; repeatable (LOADFEED_LABELS, comma-separated)
  --proc-root DIR        where /proc is mounted (LOADFEED_PROC_ROOT; default /proc)
  --sys-root DIR         where /sys is mounted (LOADFEED_SYS_ROOT; default /sys)
  --tls-ca FILE          CA of the pollers' certificates: stream over TLS (LOADFEED_TLS_CA)
  --tls-cert FILE        client certificate for mutual TLS; it must name --node-id (LOADFEED_TLS_CERT)
  --tls-key FILE         its private key (LOADFEED_TLS_KEY)
  --tls-server-name NAME name in the poller's certificate, when dialling an IP (LOADFEED_TLS_SERVER_NAME)
  --token-file FILE      bearer token for this node, read from FILE (LOADFEED_TOKEN_FILE)
  --allow-plaintext      stream without TLS to a poller that is not on loopback (LOADFEED_ALLOW_PLAINTEXT=true)
  --orca HOST:PORT       read the application's ORCA load reports (OpenRcaService) (LOADFEED_ORCA)
  --orca-tls-ca FILE     CA of the ORCA server's certificate: read it over TLS (LOADFEED_ORCA_TLS_CA)
  --orca-tls-cert FILE   client certificate, for an ORCA server that asks for one (LOADFEED_ORCA_TLS_CERT)
  --orca-tls-key FILE    its private key (LOADFEED_ORCA_TLS_KEY)
  --orca-tls-server-name NAME  name in the ORCA server's certificate, when dialling an IP
                         (LOADFEED_ORCA_TLS_SERVER_NAME)
  --app-metrics URL      scrape the application's Prometheus endpoint, e.g. http://127.0.0.1:9100/metrics
                         (LOADFEED_APP_METRICS)
  --app-metric NAME=SERIES  keep SERIES (metric{label="v"}) of that endpoint as NAME: rps, eps,
                         application_utilization or a name of your own; counters become rates per second;
                         repeatable (LOADFEED_APP_METRIC_SERIES, separated by ;)
  --app-socket PATH      Unix socket where the application writes "name value" lines (LOADFEED_APP_SOCKET)
  --app-ttl DURATION     application values not refreshed within this are dropped (LOADFEED_APP_TTL; default 5s)
  --config FILE          YAML or JSON file with the same settings in camelCase (LOADFEED_CONFIG)
  --status-socket PATH   local read-only status for "loadfeed-agent status", or off (LOADFEED_STATUS_SOCKET;
                         default $XDG_RUNTIME_DIR/loadfeed-agent.sock, else /run/loadfeed/agent.sock)
  --log-format FORMAT    json, pretty, or auto: pretty on a terminal, else json (LOADFEED_LOG_FORMAT; default auto)
  --once                 take one sample, print it and exit
  --json                 with --once: print JSON
  -h, --help             show this help

Precedence: flags, then environment, then the config file, then defaults.
`;

export interface ParsedCommandLine {
  readonly help: boolean;
  readonly config: AgentConfig | null;
}

export function loadAgentConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: FLAG_OPTIONS, allowPositionals: false, strict: true });
  } catch (err) {
    throw new AgentError('AGENT_CONFIG_INVALID', `${(err as Error).message}; see loadfeed-agent --help`, { cause: err });
  }
  const v = parsed.values;
  if (v.help) return { help: true, config: null };

  const flags: RawSettings = {
    nodeId: v['node-id'],
    pollers: v.poller,
    interval: v.interval,
    earlyChange: v['early-change'],
    earlyAppChange: v['early-app-change'],
    scope: v.scope,
    capacity: v.capacity,
    memory: v.memory,
    services: v.service,
    labels: v.label,
    procRoot: v['proc-root'],
    sysRoot: v['sys-root'],
    statusSocket: v['status-socket'],
    logFormat: v['log-format'],
    tlsCa: v['tls-ca'],
    tlsCert: v['tls-cert'],
    tlsKey: v['tls-key'],
    tlsServerName: v['tls-server-name'],
    tokenFile: v['token-file'],
    allowPlaintext: v['allow-plaintext'] ? 'true' : undefined,
    orca: v.orca,
    orcaTlsCa: v['orca-tls-ca'],
    orcaTlsCert: v['orca-tls-cert'],
    orcaTlsKey: v['orca-tls-key'],
    orcaTlsServerName: v['orca-tls-server-name'],
    appMetrics: v['app-metrics'],
    appMetricSeries: v['app-metric'],
    appSocket: v['app-socket'],
    appTtl: v['app-ttl'],
  };
  const list = (s: string | undefined): string[] | undefined =>
    s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  const fromEnv: RawSettings = {
    nodeId: env['LOADFEED_NODE_ID'],
    pollers: list(env['LOADFEED_POLLERS']),
    interval: env['LOADFEED_INTERVAL'],
    earlyChange: env['LOADFEED_EARLY_CHANGE'],
    earlyAppChange: env['LOADFEED_EARLY_APP_CHANGE'],
    scope: env['LOADFEED_SCOPE'],
    capacity: env['LOADFEED_CAPACITY'],
    memory: env['LOADFEED_MEMORY'],
    services: list(env['LOADFEED_SERVICES']),
    labels: list(env['LOADFEED_LABELS']),
    procRoot: env['LOADFEED_PROC_ROOT'],
    sysRoot: env['LOADFEED_SYS_ROOT'],
    statusSocket: env['LOADFEED_STATUS_SOCKET'],
    logFormat: env['LOADFEED_LOG_FORMAT'],
    tlsCa: env['LOADFEED_TLS_CA'],
    tlsCert: env['LOADFEED_TLS_CERT'],
    tlsKey: env['LOADFEED_TLS_KEY'],
    tlsServerName: env['LOADFEED_TLS_SERVER_NAME'],
    tokenFile: env['LOADFEED_TOKEN_FILE'],
    allowPlaintext: env['LOADFEED_ALLOW_PLAINTEXT'],
    orca: env['LOADFEED_ORCA'],
    orcaTlsCa: env['LOADFEED_ORCA_TLS_CA'],
    orcaTlsCert: env['LOADFEED_ORCA_TLS_CERT'],
    orcaTlsKey: env['LOADFEED_ORCA_TLS_KEY'],
    orcaTlsServerName: env['LOADFEED_ORCA_TLS_SERVER_NAME'],
    appMetrics: env['LOADFEED_APP_METRICS'],
    appMetricSeries: env['LOADFEED_APP_METRIC_SERIES']?.split(';').map((x) => x.trim()).filter((x) => x !== ''),
    appSocket: env['LOADFEED_APP_SOCKET'],
    appTtl: env['LOADFEED_APP_TTL'],
  };
  const file = v.config ?? env['LOADFEED_CONFIG'];
  const fromFile = file === undefined ? {} : readConfigFile(file);
  const pick = <K extends keyof RawSettings>(k: K): [RawSettings[K], string] => {
    if (flags[k] !== undefined) return [flags[k], 'flag'];
    if (fromEnv[k] !== undefined) return [fromEnv[k], 'environment'];
    return [fromFile[k], file ?? 'config file'];
  };
  return { help: false, config: compile(pick, Boolean(v.once), Boolean(v.json), defaultStatusSocket(env)) };
}

function readConfigFile(file: string): RawSettings {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AgentError('AGENT_CONFIG_INVALID', `${file}: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new AgentError('AGENT_CONFIG_INVALID', `${file}: expected a mapping of settings, got ${JSON.stringify(doc)}`);
  }
  const known = new Set([
    'nodeId', 'pollers', 'interval', 'earlyChange', 'earlyAppChange', 'scope', 'capacity', 'memory', 'services', 'labels', 'procRoot', 'sysRoot', 'statusSocket', 'logFormat',
    'tlsCa', 'tlsCert', 'tlsKey', 'tlsServerName', 'tokenFile', 'allowPlaintext', 'orca',
    'orcaTlsCa', 'orcaTlsCert', 'orcaTlsKey', 'orcaTlsServerName', 'appMetrics', 'appMetricSeries', 'appSocket', 'appTtl',
  ]);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (!known.has(key)) {
      throw new AgentError('AGENT_CONFIG_INVALID', `${file}: unknown setting "${key}" (known: ${[...known].join(', ')})`);
    }
    const isList = key === 'pollers' || key === 'services' || key === 'labels' || key === 'appMetricSeries';
    if (isList) {
      const items = (key === 'labels' || key === 'appMetricSeries') && !Array.isArray(value) && typeof value === 'object' && value !== null
        ? Object.entries(value).map(([k, x]) => `${k}=${String(x)}`)
        : value;
      if (!Array.isArray(items)) throw new AgentError('AGENT_CONFIG_INVALID', `${file}: ${key}: expected a list, got ${JSON.stringify(value)}`);
      out[key] = items.map(String);
    } else {
      out[key] = String(value);
    }
  }
  return out as RawSettings;
}

type Pick = <K extends keyof RawSettings>(k: K) => [RawSettings[K], string];

function compile(pick: Pick, once: boolean, json: boolean, defaultSocket: string): AgentConfig {
  const bad = (source: string, field: string, value: unknown, want: string): never => {
    throw new AgentError('AGENT_CONFIG_INVALID', `${source}: ${field}: ${JSON.stringify(value)} ${want}`);
  };

  const [nodeIdRaw, nodeIdSrc] = pick('nodeId');
  const nodeId = nodeIdRaw ?? os.hostname();
  if (!/^[A-Za-z0-9._:-]{1,253}$/.test(nodeId)) bad(nodeIdSrc, 'nodeId', nodeId, 'must be 1..253 characters of A-Z a-z 0-9 . _ : -');
  if (isOrcaNodeId(nodeId)) bad(nodeIdSrc, 'nodeId', nodeId, `must not start with "${ORCA_NODE_PREFIX}": pollers keep those ids for the gRPC backends they read without an agent`);

  const [pollersRaw, pollersSrc] = pick('pollers');
  const pollers = (pollersRaw ?? []).map((p) => {
    const withPort = /:\d+$/.test(p) ? p : `${p}:${DEFAULT_POLLER_PORT}`;
    const port = Number(/:(\d+)$/.exec(withPort)?.[1]);
    if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d+$/.test(withPort) || port < 1 || port > 65535) {
      bad(pollersSrc, 'pollers', p, 'must be HOST:PORT, e.g. director1:7415');
    }
    return withPort;
  });

  const [intervalRaw, intervalSrc] = pick('interval');
  const intervalMs = intervalRaw === undefined ? DEFAULT_INTERVAL_MS : parseIntervalMs(intervalRaw);
  if (!Number.isFinite(intervalMs) || intervalMs < MIN_INTERVAL_MS || intervalMs > MAX_INTERVAL_MS) {
    bad(intervalSrc, 'interval', intervalRaw, `must be ${MIN_INTERVAL_MS}ms..${MAX_INTERVAL_MS / 1000}s, e.g. 1s or 250ms`);
  }

  const [earlyRaw, earlySrc] = pick('earlyChange');
  const earlyChange = earlyRaw === undefined ? DEFAULT_EARLY_CHANGE : Number(earlyRaw);
  if (earlyRaw !== undefined && (earlyRaw.trim() === '' || !(earlyChange >= 0 && earlyChange <= 1))) {
    bad(earlySrc, 'earlyChange', earlyRaw, 'must be a fraction 0..1 (0 = off), e.g. 0.25');
  }
  const [earlyAppRaw, earlyAppSrc] = pick('earlyAppChange');
  const earlyAppChange = earlyAppRaw === undefined ? DEFAULT_EARLY_APP_CHANGE : Number(earlyAppRaw);
  if (earlyAppRaw !== undefined && (earlyAppRaw.trim() === '' || !(earlyAppChange >= 0 && Number.isFinite(earlyAppChange)))) {
    bad(earlyAppSrc, 'earlyAppChange', earlyAppRaw, 'must be a fraction >= 0 (0 = off), e.g. 0.25');
  }

  const [scopeRaw, scopeSrc] = pick('scope');
  const scope = compileScope(scopeRaw ?? 'host', scopeSrc, pick, bad);

  const [servicesRaw, servicesSrc] = pick('services');
  const services = (servicesRaw ?? []).map((s) => {
    const m = /^([A-Za-z0-9._-]{1,64}):(\d{1,5})$/.exec(s);
    const port = Number(m?.[2]);
    if (!m || m[1] === undefined || port < 1 || port > 65535) return bad(servicesSrc, 'services', s, 'must be NAME:PORT, e.g. http:80');
    return { name: m[1], port };
  });
  const names = new Set<string>();
  for (const s of services) {
    if (names.has(s.name)) bad(servicesSrc, 'services', s.name, 'is named twice');
    names.add(s.name);
  }

  const [labelsRaw, labelsSrc] = pick('labels');
  const labels: Record<string, string> = {};
  for (const l of labelsRaw ?? []) {
    const m = /^([A-Za-z0-9._/-]{1,63})=([^,]{0,253})$/.exec(l);
    if (!m || m[1] === undefined || m[2] === undefined) return bad(labelsSrc, 'labels', l, 'must be KEY=VALUE, e.g. role=web');
    labels[m[1]] = m[2];
  }

  return {
    nodeId,
    pollers,
    intervalMs,
    earlyChange,
    earlyAppChange,
    scope,
    services,
    labels,
    procRoot: pick('procRoot')[0] ?? '/proc',
    sysRoot: pick('sysRoot')[0] ?? '/sys',
    statusSocket: compileStatusSocket(pick, defaultSocket, bad),
    logFormat: compileLogFormat(pick, bad),
    transport: compileTransport(pick, pollers, bad),
    app: compileAppMetrics(pick, bad),
    once,
    json,
  };
}

function compileTransport(pick: Pick, pollers: readonly string[], bad: (source: string, field: string, value: unknown, want: string) => never): TransportConfig {
  const [allowRaw, allowSrc] = pick('allowPlaintext');
  if (allowRaw !== undefined && !['true', 'false', '1', '0', 'yes', 'no'].includes(allowRaw)) bad(allowSrc, 'allowPlaintext', allowRaw, 'must be true or false');
  const t: TransportConfig = {
    tlsCa: pick('tlsCa')[0] ?? null,
    tlsCert: pick('tlsCert')[0] ?? null,
    tlsKey: pick('tlsKey')[0] ?? null,
    tlsServerName: pick('tlsServerName')[0] ?? null,
    tokenFile: pick('tokenFile')[0] ?? null,
    allowPlaintext: allowRaw !== undefined && ['true', '1', 'yes'].includes(allowRaw),
  };
  if ((t.tlsCert === null) !== (t.tlsKey === null)) bad(pick('tlsCert')[1], 'tlsCert', t.tlsCert, 'and tlsKey go together');
  if (t.tlsCert !== null && t.tlsCa === null) bad(pick('tlsCert')[1], 'tlsCa', null, 'is needed with a client certificate: the CA of the pollers\' certificates');
  if (t.tlsCa === null && !t.allowPlaintext) {
    // Plaintext to another host would expose samples, and a token, to the network.
    const remote = pollers.find((p) => !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/.test(p));
    if (remote !== undefined) {
      bad(pick('pollers')[1], 'pollers', remote, 'is not on loopback: give --tls-ca (see "loadfeed certs --help"), or --allow-plaintext on a trusted network');
    }
  }
  return t;
}

function compileAppMetrics(pick: Pick, bad: (source: string, field: string, value: unknown, want: string) => never): AppMetricsConfig {
  const [orca, orcaSrc] = pick('orca');
  if (orca !== undefined && !/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(orca)) bad(orcaSrc, 'orca', orca, 'must be HOST:PORT of the application\'s gRPC server');
  const orcaTls = compileOrcaTls(pick, orca, bad);
  const [url, urlSrc] = pick('appMetrics');
  if (url !== undefined) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      // reported below
    }
    if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) bad(urlSrc, 'appMetrics', url, 'must be an http(s) URL, e.g. http://127.0.0.1:9100/metrics');
  }
  const [seriesRaw, seriesSrc] = pick('appMetricSeries');
  const names = new Set<string>();
  const series = (seriesRaw ?? []).map((text): SeriesSpec => {
    const eq = text.indexOf('=');
    const name = text.slice(0, eq).trim();
    const selector = text.slice(eq + 1).trim();
    if (eq < 1 || !APP_METRIC_NAME.test(name)) bad(seriesSrc, 'appMetricSeries', text, 'must be NAME=SERIES with NAME of a-z 0-9 _ (starting with a letter), e.g. in_flight=http_requests_in_flight');
    if (names.has(name)) bad(seriesSrc, 'appMetricSeries', name, 'is named twice');
    names.add(name);
    try {
      return { name, selector: parseSeriesSelector(selector), text: selector };
    } catch (err) {
      return bad(seriesSrc, 'appMetricSeries', text, `is not a series selector: ${(err as Error).message}`);
    }
  });
  if (url === undefined && series.length > 0) bad(seriesSrc, 'appMetricSeries', seriesRaw?.[0], 'needs appMetrics, the URL to scrape');
  if (url !== undefined && series.length === 0) bad(urlSrc, 'appMetrics', url, 'needs at least one appMetricSeries (--app-metric NAME=SERIES) to keep');
  const [socket, socketSrc] = pick('appSocket');
  if (socket !== undefined && (!path.isAbsolute(socket) || Buffer.byteLength(socket) > MAX_SOCKET_PATH)) {
    bad(socketSrc, 'appSocket', socket, `must be an absolute path of at most ${MAX_SOCKET_PATH} bytes`);
  }
  const [ttlRaw, ttlSrc] = pick('appTtl');
  const ttlMs = ttlRaw === undefined ? DEFAULT_APP_TTL_MS : parseIntervalMs(ttlRaw);
  if (!Number.isFinite(ttlMs) || ttlMs < MIN_INTERVAL_MS || ttlMs > 10 * MAX_INTERVAL_MS) {
    bad(ttlSrc, 'appTtl', ttlRaw, `must be ${MIN_INTERVAL_MS}ms..${(10 * MAX_INTERVAL_MS) / 1000}s, e.g. 5s`);
  }
  return { orca: orca ?? null, orcaTls, prometheus: url ?? null, series, pushSocket: socket ?? null, ttlMs };
}

function compileOrcaTls(pick: Pick, orca: string | undefined, bad: (source: string, field: string, value: unknown, want: string) => never): OrcaTlsConfig | null {
  const [ca, caSrc] = pick('orcaTlsCa');
  const [cert, certSrc] = pick('orcaTlsCert');
  const [key, keySrc] = pick('orcaTlsKey');
  const [serverName, nameSrc] = pick('orcaTlsServerName');
  const given: [string, string | undefined, string][] = [['orcaTlsCa', ca, caSrc], ['orcaTlsCert', cert, certSrc], ['orcaTlsKey', key, keySrc], ['orcaTlsServerName', serverName, nameSrc]];
  const first = given.find(([, value]) => value !== undefined);
  if (first === undefined) return null;
  if (orca === undefined) return bad(first[2], first[0], first[1], 'needs orca, the ORCA server to read');
  if (ca === undefined) return bad(caSrc, 'orcaTlsCa', null, `is needed with ${first[0]}: the CA of the ORCA server's certificate`);
  if (cert === undefined && key !== undefined) bad(keySrc, 'orcaTlsKey', key, 'needs orcaTlsCert: they go together');
  if (cert !== undefined && key === undefined) bad(certSrc, 'orcaTlsCert', cert, 'needs orcaTlsKey: they go together');
  return { ca, cert: cert ?? null, key: key ?? null, serverName: serverName ?? null };
}

function compileLogFormat(pick: Pick, bad: (source: string, field: string, value: unknown, want: string) => never): LogFormat {
  const [raw, source] = pick('logFormat');
  if (raw === undefined) return 'auto';
  if (!(LOG_FORMATS as readonly string[]).includes(raw)) bad(source, 'logFormat', raw, `must be one of ${LOG_FORMATS.join(', ')}`);
  return raw as LogFormat;
}

function compileStatusSocket(pick: Pick, defaultSocket: string, bad: (source: string, field: string, value: unknown, want: string) => never): string | null {
  const [raw, source] = pick('statusSocket');
  if (raw === 'off') return null;
  const socket = raw ?? defaultSocket;
  if (!path.isAbsolute(socket) || Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    bad(source, 'statusSocket', socket, `must be an absolute path of at most ${MAX_SOCKET_PATH} bytes, or off`);
  }
  return socket;
}

function compileScope(
  text: string,
  source: string,
  pick: Pick,
  bad: (source: string, field: string, value: unknown, want: string) => never,
): ScopeConfig {
  if (text === 'host') return { kind: 'host' };
  const cgroup = /^cgroup:(.+)$/.exec(text);
  if (cgroup?.[1] !== undefined) return { kind: 'cgroup', path: cgroup[1] };
  const proc = /^process:(\d+)$/.exec(text);
  if (proc?.[1] !== undefined) {
    const [capRaw, capSrc] = pick('capacity');
    const cores = Number(capRaw);
    if (capRaw === undefined || !Number.isFinite(cores) || cores <= 0 || cores > 4096) {
      bad(capSrc, 'capacity', capRaw ?? null, 'must be the process scope\'s CPU capacity in cores (> 0), e.g. 0.5');
    }
    const [memRaw, memSrc] = pick('memory');
    const memoryBytes = memRaw === undefined ? null : Number(memRaw);
    if (memoryBytes !== null && (!Number.isSafeInteger(memoryBytes) || memoryBytes <= 0)) {
      bad(memSrc, 'memory', memRaw, 'must be a positive number of bytes');
    }
    return { kind: 'process', pid: Number(proc[1]), cores, memoryBytes };
  }
  return bad(source, 'scope', text, 'must be host, cgroup:PATH, cgroup:self or process:PID');
}

/** `250ms`, `1s`, `1.5s` or a bare number of milliseconds; NaN when it is none of these. */
export function parseIntervalMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (!m) return Number.NaN;
  return Math.round(Number(m[1]) * (m[2] === 's' ? 1000 : 1));
}
