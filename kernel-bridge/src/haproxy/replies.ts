// Pure parsers of HAProxy runtime API replies (as HAProxy 2.6 answers them;
// test/kernel-bridge/haproxy-replies.test.ts holds the captured replies).
//
// Replies are not self-delimiting: success of `set server … weight` is one
// empty line, most errors end with a blank line, some do not ("Empty weight
// string…\n"), `del server` answers "Server deleted.\n". So the replies of
// several commands joined with `;` cannot be told apart by their shape. The
// client interleaves a marker command, `show cli level`, whose reply is one
// line naming the session's level (`admin`, `operator` or `user`): the batch
//   show cli level; C1; show cli level; C2; …; Cn; show cli level
// answers L, R1, L, R2, …, Rn, L, and every Ri is the text between two L lines.
// The first line also tells the level, which explains "Permission denied".
import { StringDecoder } from 'node:string_decoder';

/** The marker command; its reply is the session's CLI level, alone on a line. */
export const MARKER_COMMAND = 'show cli level';
export const CLI_LEVELS = ['admin', 'operator', 'user'] as const;
export type CliLevel = (typeof CLI_LEVELS)[number];

export interface MarkedReplies {
  /** The level of the CLI session, from the first marker. */
  readonly level: CliLevel;
  /** One reply per command, blank lines around it removed; '' is HAProxy's success answer for `set` commands. */
  readonly replies: readonly string[];
}

/** A reply the bridge cannot make sense of; the engine turns it into a typed error. */
export class ReplyFormatError extends Error {
  override readonly name = 'ReplyFormatError';
}

/** Interleave the marker with `commands`, as one line without its newline. */
export function markedLine(commands: readonly string[]): string {
  return [MARKER_COMMAND, ...commands.flatMap((command) => [command, MARKER_COMMAND])].join('; ');
}

/**
 * Reads the answer to `markedLine(commands)` as it arrives, in chunks of any
 * size (a UTF-8 sequence may be split between chunks). `end()` checks that a
 * reply came for each of the `expected` commands.
 */
export class MarkedReplyReader {
  readonly #expected: number;
  readonly #decoder = new StringDecoder('utf8');
  #partial = '';
  #level: CliLevel | null = null;
  #current: string[] = [];
  readonly #replies: string[] = [];
  #markers = 0;

  constructor(expected: number) {
    this.#expected = expected;
  }

  push(chunk: Buffer | string): void {
    const text = this.#partial + (typeof chunk === 'string' ? chunk : this.#decoder.write(chunk));
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) this.#line(line);
  }

  /** Replies complete so far (each one closed by the marker after it). */
  get replies(): readonly string[] {
    return this.#replies;
  }

  end(): MarkedReplies {
    const rest = this.#partial + this.#decoder.end();
    this.#partial = '';
    if (rest.length > 0) this.#line(rest);
    if (this.#level === null) {
      const said = trimBlankLines(this.#current);
      throw new ReplyFormatError(
        said.length === 0
          ? 'HAProxy closed the connection without answering'
          : `HAProxy did not answer "${MARKER_COMMAND}" with a CLI level (is this a HAProxy stats socket, version 2.0 or later?): ${firstLine(said)}`,
      );
    }
    const trailing = trimBlankLines(this.#current);
    if (this.#replies.length !== this.#expected || trailing.length > 0) {
      throw new ReplyFormatError(
        `HAProxy answered ${this.#replies.length} of ${this.#expected} commands` +
          (trailing.length > 0 ? `, then: ${firstLine(trailing)}` : ' before closing the connection'),
      );
    }
    return { level: this.#level, replies: this.#replies };
  }

  #line(line: string): void {
    if (this.#level === null) {
      const level = CLI_LEVELS.find((l) => l === line);
      if (level !== undefined && trimBlankLines(this.#current).length === 0) {
        this.#level = level;
        this.#current = [];
        this.#markers = 1;
      } else {
        this.#current.push(line);
      }
      return;
    }
    if (line === this.#level && this.#markers <= this.#expected) {
      this.#replies.push(trimBlankLines(this.#current));
      this.#current = [];
      this.#markers++;
      return;
    }
    this.#current.push(line);
  }
}

/** Parse a whole marked answer at once (what MarkedReplyReader does chunk by chunk). */
export function parseMarkedReplies(text: string, expected: number): MarkedReplies {
  const reader = new MarkedReplyReader(expected);
  reader.push(text);
  return reader.end();
}

/** What one command's reply means. `kind` is decided from HAProxy 2.6's fixed messages. */
export type ReplyOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly kind:
        | 'no-such-server'
        | 'no-such-backend'
        | 'permission-denied'
        | 'server-exists'
        | 'server-busy'
        | 'not-dynamic'
        | 'other';
      readonly message: string;
    };

/** Success answers that are not empty. */
const SUCCESS_MESSAGES = new Set(['New server registered.', 'Server deleted.']);

const FAILURES: ReadonlyArray<readonly [RegExp, Exclude<ReplyOutcome, { ok: true }>['kind']]> = [
  [/^No such server\.$/, 'no-such-server'],
  [/^No such backend\.$/, 'no-such-backend'],
  [/^Permission denied$/, 'permission-denied'],
  [/^Already exists a server with the same name in backend\.$/, 'server-exists'],
  [/^Server still has connections attached to it, cannot remove it\.$/, 'server-busy'],
  [/^Backend must use a dynamic load balancing to support dynamic servers\.$/, 'not-dynamic'],
];

/** Classify one command's reply (as MarkedReplies.replies gives it). */
export function classifyReply(reply: string): ReplyOutcome {
  if (reply === '' || SUCCESS_MESSAGES.has(reply)) return { ok: true };
  for (const [pattern, kind] of FAILURES) {
    if (pattern.test(reply)) return { ok: false, kind, message: reply };
  }
  return { ok: false, kind: 'other', message: reply };
}

/** One server line of `show servers state` (format version 1). */
export interface ServerState {
  readonly backendId: number;
  readonly backend: string;
  readonly serverId: number;
  readonly server: string;
  readonly address: string;
  readonly port: number;
  /** srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping. */
  readonly operationalState: number;
  /** srv_admin_state bit field: 0x01 forced maintenance, 0x08 forced drain, … */
  readonly adminState: number;
  /** srv_uweight: the weight in force. */
  readonly userWeight: number;
  /** srv_iweight: the weight haproxy.cfg gave. */
  readonly initialWeight: number;
}

// Field positions in format version 1; the header line is checked against them.
const STATE_FIELDS = {
  be_id: 0,
  be_name: 1,
  srv_id: 2,
  srv_name: 3,
  srv_addr: 4,
  srv_op_state: 5,
  srv_admin_state: 6,
  srv_uweight: 7,
  srv_iweight: 8,
  srv_port: 18,
} as const;

/**
 * Parse `show servers state [backend]`: a version line (`1`), a header line
 * (`# be_id be_name …`), then one line per server, then a blank line.
 */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n');
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const [version, header, ...rows] = lines;
  if (version === undefined || version.trim() === '') throw new ReplyFormatError('show servers state: empty reply');
  if (version.trim() !== '1') {
    throw new ReplyFormatError(`show servers state: format version "${firstLine(version)}", expected 1`);
  }
  const names = header?.startsWith('# ') === true ? header.slice(2).trim().split(/\s+/) : [];
  for (const [name, index] of Object.entries(STATE_FIELDS)) {
    if (names[index] !== name) {
      throw new ReplyFormatError(`show servers state: header field ${index + 1} is "${names[index] ?? ''}", expected ${name}`);
    }
  }
  return rows.map((row, i) => {
    const fields = row.trim().split(/\s+/);
    if (fields.length < names.length) {
      throw new ReplyFormatError(`show servers state line ${i + 3}: ${fields.length} fields, expected ${names.length}`);
    }
    const field = (name: keyof typeof STATE_FIELDS): string => fields[STATE_FIELDS[name]] ?? '';
    const int = (name: keyof typeof STATE_FIELDS): number => integerField(field(name), `show servers state line ${i + 3} ${name}`);
    return {
      backendId: int('be_id'),
      backend: field('be_name'),
      serverId: int('srv_id'),
      server: field('srv_name'),
      address: field('srv_addr'),
      port: int('srv_port'),
      operationalState: int('srv_op_state'),
      adminState: int('srv_admin_state'),
      userWeight: int('srv_uweight'),
      initialWeight: int('srv_iweight'),
    };
  });
}

/** `show backend`: a `# name` header, then one backend name per line. */
export function parseShowBackend(text: string): string[] {
  const lines = text.split('\n').filter((line) => line.length > 0);
  const [header, ...names] = lines;
  if (header !== '# name') throw new ReplyFormatError(`show backend: header "${firstLine(header ?? '')}", expected "# name"`);
  return names;
}

/** One proxy of `show stat`: the backend itself and its servers, in HAProxy's order. */
export interface StatBackend {
  readonly name: string;
  /** The backend's `algo` column (`roundrobin`, `leastconn`, `source`, …). */
  readonly algorithm: string;
  readonly servers: readonly StatServer[];
}

export interface StatServer {
  readonly name: string;
  /** `uweight`: the user-set weight in force (0..256). */
  readonly weight: number;
  /** `scur`: sessions now. */
  readonly currentSessions: number;
  /** `stot`: sessions since start. */
  readonly totalSessions: number;
  /** `slim`: maxconn; 0 when the column is empty (no limit). */
  readonly maxConnections: number;
  /** `status`: UP, DOWN, MAINT, DRAIN, NOLB, "no check", "UP 1/3", "MAINT (via b/s)", … */
  readonly status: string;
}

// `type` column values.
const STAT_TYPE_BACKEND = '1';
const STAT_TYPE_SERVER = '2';
const STAT_COLUMNS = ['pxname', 'svname', 'scur', 'slim', 'stot', 'status', 'type', 'algo', 'uweight'] as const;

/**
 * Parse `show stat` CSV (HAProxy ≥ 2.5 for `uweight`): backends in order of
 * first appearance with their servers; frontend and listener rows are left out.
 * Columns are found by the header, so added columns do not matter.
 */
export function parseShowStat(text: string): StatBackend[] {
  const lines = text.split('\n').filter((line) => line.length > 0);
  const [header, ...rows] = lines;
  if (header?.startsWith('# ') !== true) {
    throw new ReplyFormatError(`show stat: header "${firstLine(header ?? '')}", expected "# pxname,svname,…"`);
  }
  const names = splitCsvLine(header.slice(2));
  const column = Object.fromEntries(
    STAT_COLUMNS.map((name) => {
      const index = names.indexOf(name);
      if (index < 0) throw new ReplyFormatError(`show stat: no "${name}" column (HAProxy 2.6 or later has it)`);
      return [name, index];
    }),
  ) as Record<(typeof STAT_COLUMNS)[number], number>;

  const backends = new Map<string, { algorithm: string; servers: StatServer[] }>();
  const backendOf = (name: string): { algorithm: string; servers: StatServer[] } => {
    let backend = backends.get(name);
    if (backend === undefined) {
      backend = { algorithm: '', servers: [] };
      backends.set(name, backend);
    }
    return backend;
  };
  rows.forEach((row, i) => {
    const fields = splitCsvLine(row);
    const field = (name: (typeof STAT_COLUMNS)[number]): string => fields[column[name]] ?? '';
    const where = `show stat line ${i + 2}`;
    if (fields.length < names.length - 1) {
      throw new ReplyFormatError(`${where}: ${fields.length} fields, expected ${names.length}`);
    }
    const type = field('type');
    if (type === STAT_TYPE_BACKEND) {
      backendOf(field('pxname')).algorithm = field('algo');
    } else if (type === STAT_TYPE_SERVER) {
      const slim = field('slim');
      backendOf(field('pxname')).servers.push({
        name: field('svname'),
        weight: integerField(field('uweight'), `${where} uweight`),
        currentSessions: integerField(field('scur'), `${where} scur`),
        totalSessions: integerField(field('stot'), `${where} stot`),
        maxConnections: slim === '' ? 0 : integerField(slim, `${where} slim`),
        status: field('status'),
      });
    }
  });
  return [...backends].map(([name, b]) => ({ name, algorithm: b.algorithm, servers: b.servers }));
}

/** Split one CSV line as HAProxy writes it: fields quoted with `"` when they hold a comma or a quote (`""` inside). */
export function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const quote = line.indexOf('"', i);
        if (quote < 0) throw new ReplyFormatError(`unterminated quoted CSV field: ${firstLine(line)}`);
        value += line.slice(i, quote);
        if (line[quote + 1] === '"') {
          value += '"';
          i = quote + 2;
        } else {
          i = quote + 1;
          break;
        }
      }
      fields.push(value);
    } else {
      const comma = line.indexOf(',', i);
      fields.push(line.slice(i, comma < 0 ? line.length : comma));
      i = comma < 0 ? line.length : comma;
    }
    if (i >= line.length) break;
    if (line[i] !== ',') throw new ReplyFormatError(`CSV: expected "," at column ${i + 1}: ${firstLine(line)}`);
    i++;
    if (i === line.length) {
      fields.push('');
      break;
    }
  }
  return fields;
}

function integerField(text: string, where: string): number {
  if (!/^\d+$/.test(text)) throw new ReplyFormatError(`${where}: "${text}" is not a non-negative integer`);
  return Number(text);
}

function trimBlankLines(lines: readonly string[]): string {
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start]?.trim() === '') start++;
  while (end > start && lines[end - 1]?.trim() === '') end--;
  return lines.slice(start, end).join('\n');
}

function firstLine(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
