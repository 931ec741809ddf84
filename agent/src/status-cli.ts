// `loadfeed-agent status`: asks the agent running on this host (through its
// status socket) what it measures, where it streams, and whether each
// stream is connected, and the state of each application metrics source.
// Read-only; exit 0 when every stream is connected and every application
// source has fresh values, 1 when not, 2 when no agent answered.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { AgentError } from './errors.js';
import { defaultStatusSocket } from './config.js';
import { AGENT_STATUS_VERSION, type AgentStatusDocument } from './status-socket.js';
import type { AppReading } from './reading.js';

const TIMEOUT_MS = 3_000;
const MAX_BYTES = 1024 * 1024;

export function agentStatusUsage(env: NodeJS.ProcessEnv): string {
  return `Usage: loadfeed-agent status [options]

Shows what the agent running on this host measures (scope, services), where it
streams, whether each stream is connected, and what each application metrics
source (ORCA, Prometheus endpoint, push socket) holds. Read-only.

  --status-socket PATH   the running agent's status socket (LOADFEED_STATUS_SOCKET;
                         default ${defaultStatusSocket(env)})
  --json                 print the agent's status document as JSON
  -h, --help             show this help

Exit status: 0 every stream connected and every application source fresh,
1 otherwise, 2 no agent answered.
`;
}

export async function agentStatusMain(argv: readonly string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { 'status-socket': { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    throw new AgentError('AGENT_CONFIG_INVALID', `${(err as Error).message}; see loadfeed-agent status --help`, { cause: err });
  }
  if (values.help) {
    out.write(agentStatusUsage(env));
    return 0;
  }
  const socketPath = values['status-socket'] ?? env['LOADFEED_STATUS_SOCKET'] ?? defaultStatusSocket(env);
  if (socketPath === 'off') throw new AgentError('AGENT_CONFIG_INVALID', '--status-socket off: nothing to ask; give the path the agent listens on');
  let doc: AgentStatusDocument;
  try {
    doc = await fetchAgentStatus(socketPath);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
        ? 'no agent is listening there'
        : e.code === 'EACCES'
          ? 'permission denied: run as the agent\'s user or group (or root)'
          : e.message;
    process.stderr.write(
      `loadfeed-agent status: cannot reach ${socketPath}: ${why}.\n` +
        'Is loadfeed-agent running on this host? If it was started with --status-socket PATH, pass the same PATH.\n',
    );
    return 2;
  }
  out.write(values.json ? `${JSON.stringify(doc, null, 2)}\n` : formatAgentStatus(doc));
  const healthy = doc.streams.every((s) => s.state === 'connected') && (doc.app?.sources ?? []).every((s) => s.state === 'ok');
  return healthy ? 0 : 1;
}

export function fetchAgentStatus(socketPath: string): Promise<AgentStatusDocument> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: '/status', timeout: TIMEOUT_MS, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BYTES) req.destroy(new Error(`answer larger than ${MAX_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        try {
          if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode ?? '?'}`);
          const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AgentStatusDocument;
          if (doc.version !== AGENT_STATUS_VERSION) throw new Error(`status version ${String(doc.version)}, expected ${AGENT_STATUS_VERSION}: use the agent's own loadfeed-agent`);
          resolve(doc);
        } catch (err) {
          reject(err as Error);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

/** The human form: who, what it measures, and one line per stream. */
export function formatAgentStatus(doc: AgentStatusDocument): string {
  const pct = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
  const scope =
    doc.scope.kind === 'host'
      ? 'the host'
      : doc.scope.kind === 'cgroup'
        ? `cgroup ${doc.scope.path}`
        : `process tree of pid ${doc.scope.pid}`;
  const services = doc.services.length === 0 ? 'none (no --service)' : doc.services.map((s) => {
    const n = doc.lastSample?.services.find((x) => x.name === s.name)?.established;
    return `${s.name}:${s.port}${n === undefined || n === null ? '' : ` (${n} established)`}`;
  }).join(', ');
  const labels = Object.entries(doc.labels).map(([k, v]) => `${k}=${v}`).join(' ');
  const last = doc.lastSample;
  const connected = doc.streams.filter((s) => s.state === 'connected').length;
  const lines = [
    `loadfeed-agent ${doc.nodeId}  version ${doc.agentVersion}  pid ${doc.pid}  up ${duration(doc.now - doc.startedAt)}`,
    `measures  ${scope}: ${round(doc.capacity.cores)} cores, ${gib(doc.capacity.memoryBytes)}, every ${duration(doc.intervalMs)}`,
    `services  ${services}`,
    ...(labels === '' ? [] : [`labels    ${labels}`]),
    last === null
      ? `samples   none yet`
      : `samples   ${doc.samples}, last ${duration(doc.now - last.at)} ago: cpu ${pct(last.cpuUtilization)}  memory ${pct(last.memUtilization)}  psi cpu ${pct(last.psiCpuSome)}`,
    `streams   ${doc.streams.length} poller${doc.streams.length === 1 ? '' : 's'}, ${connected} connected  (${doc.transport.security}${doc.transport.token ? ', token' : ''})`,
    ...doc.streams.map((s) => {
      const head = `  ${s.target.padEnd(22)} ${s.state.padEnd(10)} for ${duration(doc.now - s.since).padEnd(7)} ${s.sent} sent, ${s.dropped} dropped`;
      return s.detail === '' ? head : `${head}\n      ${s.detail}`;
    }),
    ...(doc.app === null ? [] : formatAppStatus(doc)),
  ];
  return `${lines.join('\n')}\n`;
}

function formatAppStatus(doc: AgentStatusDocument): string[] {
  if (doc.app === null) return [];
  const ok = doc.app.sources.filter((s) => s.state === 'ok').length;
  return [
    `app       ${doc.app.sources.length} source${doc.app.sources.length === 1 ? '' : 's'}, ${ok} with fresh values`,
    ...doc.app.sources.map((s) => {
      const head = `  ${s.kind.padEnd(10)} ${s.target.padEnd(30)} ${s.state.padEnd(10)} for ${duration(doc.now - s.since).padEnd(7)} ${s.updates} taken, ${s.refused} refused`;
      const names = s.names.length === 0 ? 'no values: sent as absent' : s.names.join(' ');
      return `${head}\n      ${names}${s.detail === '' ? '' : `\n      ${s.detail}`}`;
    }),
    ...(doc.app.droppedNames.length === 0 ? [] : [`  over the limit of named metrics, not sent: ${doc.app.droppedNames.join(' ')}`]),
    ...(doc.lastSample === null ? [] : formatAppReading(doc.lastSample).map((l) => `  last sample: ${l}`)),
  ];
}

/** The application metrics of one reading, one line; none when there are none. */
export function formatAppReading(app: AppReading): string[] {
  const fixed = [
    ['application_utilization', app.applicationUtilization],
    ['rps', app.rpsFractional],
    ['eps', app.eps],
  ] as const;
  const parts: string[] = [];
  for (const [n, v] of [...fixed, ...Object.entries(app.namedMetrics)]) if (v !== null) parts.push(`${n} ${round(v)}`);
  return parts.length === 0 ? [] : [`app ${parts.join('  ')}`];
}

function duration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${Math.round(s * 10) / 10}s`;
  if (s < 120) return `${Math.round(s)}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function gib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB memory` : `${Math.round(bytes / 2 ** 20)} MiB memory`;
}

function round(x: number): string {
  return String(Math.round(x * 100) / 100);
}
