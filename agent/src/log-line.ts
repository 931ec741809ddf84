// The agent's log records: one JSON object per line for journald and log
// shippers; on a terminal (or --log-format pretty) one readable line each:
// `12:00:01.234 web-1 stream connected  poller=director1:7415`.

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function formatLogRecord(record: Readonly<Record<string, unknown>>, pretty: boolean): string {
  if (!pretty) return `${JSON.stringify(record)}\n`;
  const { time, node, msg, ...rest } = record;
  const clock = typeof time === 'string' ? time.slice(11, 23) : '';
  const fields = Object.entries(rest)
    .filter(([, v]) => v !== '' && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`);
  return `${clock} ${String(node ?? '')} ${String(msg ?? '')}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}\n`;
}
