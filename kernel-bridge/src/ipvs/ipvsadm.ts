// The ipvsadm driver: the same engine as netlink, for hosts where the netlink
// socket cannot be used. All edits of one apply() go through ONE `ipvsadm -R`
// process (a script of -A/-D/-a/-e/-d lines on stdin); observe() runs three
// listings in parallel and merges them:
//   ipvsadm -Ln --exact --tun-info     forwarding method, tunnel, weight, active/inactive
//   ipvsadm -Ln --exact --thresholds   upper/lower thresholds
//   ipvsadm -Ln --exact --stats        total connections, packets, bytes
// (ipvsadm older than 1.31 has no --tun-info: the plain listing is used then.)
//
// `ipvsadm -R` goes on after a failing line and exits 0 anyway, printing only
// the error text (e.g. "No such destination") on stderr. So when stderr is not
// empty, the services are read again and the first edit whose result is
// missing is reported, with ipvsadm's words.
//
// The parsers are pure and tested on output captured from a real kernel
// (test/fixtures/ipvs/); the process is run by an injected IpvsadmRunner.
import {
  CommandFailedError,
  ConflictError,
  EnginePermissionError,
  EngineUnavailableError,
  MalformedReplyError,
  UnknownTargetError,
  UnsupportedError,
  type BridgeError,
} from '../errors.js';
import { parseHostPort } from '../address.js';
import type { IpvsBackend } from './backend.js';
import type { IpvsEdit } from './edits.js';
import { familyOf } from './inet.js';
import { createCommandRunner, type CommandResult, type CommandRunner } from '../command.js';
import {
  compareDestinationKeys,
  compareServiceKeys,
  formatDestinationKey,
  formatServiceKey,
  parseDestinationKey,
  type IpvsDestination,
  type IpvsDestinationKey,
  type IpvsDestinationSettings,
  type IpvsForwardMethod,
  type IpvsServiceKey,
  type IpvsServiceSettings,
  type IpvsServiceState,
  type IpvsStats,
  type IpvsTunnel,
  type IpvsTunnelType,
} from './model.js';
import { describeEdit } from './netlink-driver.js';
import { IPVS_UNAVAILABLE_MESSAGE } from './socket.js';
import { IP_VS_SVC_F } from './uapi.js';

export interface IpvsadmOptions {
  /** The binary: an absolute path, or by default `ipvsadm` from the system's directories (SYSTEM_BIN_DIRS, never PATH). */
  readonly path?: string;
  /** Runs ipvsadm; tests pass a fake. */
  readonly runner?: IpvsadmRunner;
}

export type IpvsadmResult = CommandResult;
/** Runs ipvsadm (see createCommandRunner); tests pass a fake. */
export type IpvsadmRunner = Pick<CommandRunner, 'run'>;

export function createIpvsadmRunner(path = 'ipvsadm', timeoutMs?: number): IpvsadmRunner {
  return createCommandRunner([path], { install: 'install ipvsadm (apt-get install ipvsadm) or use the netlink driver', ...(timeoutMs === undefined ? {} : { timeoutMs }) });
}

// --- listing parsers ---------------------------------------------------------

/** One service line of a listing with its destination lines, columns still as text. */
export interface ListingService {
  readonly key: IpvsServiceKey;
  /** Words after the address: `wrr persistent 300 mask 255.255.255.0`, or the counters of --stats. */
  readonly rest: readonly string[];
  readonly destinations: readonly { readonly key: IpvsDestinationKey; readonly columns: readonly string[] }[];
}

/** What kind of listing a header says it is. */
export type ListingFormat = 'plain' | 'tun-info' | 'thresholds' | 'stats' | 'rate' | 'persistent-conn';

export interface Listing {
  readonly format: ListingFormat;
  readonly services: readonly ListingService[];
}

const SERVICE_LINE = /^(TCP|UDP|SCTP)\s+(\S+)(.*)$/;
const FWM_LINE = /^FWM\s+(\d+)(\s+IPv6)?(.*)$/;
const DEST_LINE = /^\s+->\s+(\S+)(.*)$/;

/** Split `ipvsadm -Ln [--exact] [--tun-info|--thresholds|--stats|--rate|--persistent-conn]` output into lines. */
export function parseListing(text: string): Listing {
  let format: ListingFormat | null = null;
  const services: { key: IpvsServiceKey; rest: string[]; destinations: { key: IpvsDestinationKey; columns: string[] }[] }[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trimEnd();
    const where = (): string => `ipvsadm listing line ${i + 1} "${line}"`;
    if (line === '' || line.startsWith('IP Virtual Server version')) continue;
    if (line.startsWith('Prot LocalAddress:Port') || /^\s+->\s+RemoteAddress:Port/.test(line)) {
      format = headerFormat(line) ?? format;
      continue;
    }
    const dest = DEST_LINE.exec(line);
    if (dest) {
      const service = services.at(-1);
      if (service === undefined || dest[1] === undefined) throw new MalformedReplyError(`${where()}: destination before any service`);
      service.destinations.push({ key: listedDestination(dest[1], where), columns: words(dest[2]) });
      continue;
    }
    const fwm = FWM_LINE.exec(line);
    if (fwm) {
      services.push({
        key: { kind: 'fwmark', family: fwm[2] === undefined ? 'inet' : 'inet6', fwmark: Number(fwm[1]) },
        rest: words(fwm[3]),
        destinations: [],
      });
      continue;
    }
    const svc = SERVICE_LINE.exec(line);
    if (svc && svc[1] !== undefined && svc[2] !== undefined) {
      const { host, port } = hostPort(svc[2], where);
      services.push({
        key: {
          kind: 'address',
          family: familyOf(host),
          protocol: svc[1].toLowerCase() as 'tcp' | 'udp' | 'sctp',
          address: parseDestinationKey(`${bracket(host)}:${port}`).address,
          port,
        },
        rest: words(svc[3]),
        destinations: [],
      });
      continue;
    }
    throw new MalformedReplyError(`${where()}: not a service or destination line`);
  }
  if (format === null) {
    if (services.length === 0 && text.trim() === '') return { format: 'plain', services: [] };
    throw new MalformedReplyError('ipvsadm listing without its "Prot LocalAddress:Port" header');
  }
  return { format, services };
}

function headerFormat(line: string): ListingFormat | null {
  if (line.includes('TunnelInfo')) return 'tun-info';
  if (line.includes('Uthreshold')) return 'thresholds';
  if (line.includes('InPkts')) return 'stats';
  if (line.includes('InPPS')) return 'rate';
  if (line.includes('PersistConn')) return 'persistent-conn';
  if (line.includes('Forward') || line.includes('Scheduler')) return 'plain';
  return null;
}

const FORWARD_NAMES: Readonly<Record<string, IpvsForwardMethod>> = {
  Masq: 'masq',
  Local: 'local',
  Tunnel: 'tunnel',
  Route: 'route',
  Bypass: 'bypass',
};

/**
 * `ipvsadm -Ln --exact [--tun-info]`, `--thresholds` and `--stats` merged into
 * the model. Without a thresholds listing the thresholds read as 0; without a
 * stats listing the stats are null. A destination missing from a listing taken
 * a moment later (removed meanwhile) is treated the same way.
 */
export function mergeListings(base: Listing, thresholds: Listing | null, stats: Listing | null): IpvsServiceState[] {
  if (base.format !== 'plain' && base.format !== 'tun-info') {
    throw new MalformedReplyError(`expected a plain or --tun-info listing, got --${base.format}`);
  }
  const thresholdsOf = indexDestinations(thresholds, 'thresholds');
  const statsOf = indexDestinations(stats, 'stats');
  const serviceStats = new Map((stats?.services ?? []).map((s) => [formatServiceKey(s.key), s.rest]));
  const states = base.services.map((service): IpvsServiceState => {
    const name = formatServiceKey(service.key);
    const destinations = service.destinations.map((d): IpvsDestination => {
      const where = `ipvsadm listing "${name}" -> ${formatDestinationKey(d.key)}`;
      const c = d.columns;
      const tunInfo = base.format === 'tun-info';
      const [forwardText, tunnelText] = [c[0], tunInfo ? c[1] : undefined];
      const numbers = c.slice(tunInfo ? 2 : 1);
      const forward = forwardText === undefined ? undefined : FORWARD_NAMES[forwardText];
      if (forward === undefined || numbers.length !== 3) {
        throw new MalformedReplyError(`${where}: expected "Forward${tunInfo ? ' TunnelInfo' : ''} Weight ActiveConn InActConn", got "${c.join(' ')}"`);
      }
      const [weight, active, inactive] = numbers.map((n) => integer(n, where));
      const key = `${name} ${formatDestinationKey(d.key)}`;
      const t = thresholdsOf.get(key);
      const s = statsOf.get(key);
      const settings: IpvsDestinationSettings = {
        forward,
        weight: weight ?? 0,
        upperThreshold: t === undefined ? 0 : integer(t[0], where),
        lowerThreshold: t === undefined ? 0 : integer(t[1], where),
        tunnel: tunnelText === undefined ? null : parseTunnelInfo(tunnelText, where),
      };
      return {
        key: d.key,
        settings,
        counters: {
          activeConnections: active ?? 0,
          inactiveConnections: inactive ?? 0,
          persistentConnections: null,
          stats: s === undefined ? null : statsOfColumns(s, where),
        },
      };
    });
    destinations.sort((a, b) => compareDestinationKeys(a.key, b.key));
    const counters = serviceStats.get(name);
    return {
      service: {
        key: service.key,
        settings: serviceSettings(service.rest, service.key, `ipvsadm listing "${name}"`),
        stats: counters === undefined ? null : statsOfColumns(counters, `ipvsadm --stats "${name}"`),
      },
      destinations,
    };
  });
  return states.sort((a, b) => compareServiceKeys(a.service.key, b.service.key));
}

function indexDestinations(listing: Listing | null, format: ListingFormat): Map<string, readonly string[]> {
  const index = new Map<string, readonly string[]>();
  if (listing === null) return index;
  if (listing.format !== format) throw new MalformedReplyError(`expected a --${format} listing, got ${listing.format}`);
  for (const s of listing.services) {
    for (const d of s.destinations) index.set(`${formatServiceKey(s.key)} ${formatDestinationKey(d.key)}`, d.columns);
  }
  return index;
}

/** `wrr`, `rr persistent 300 mask 255.255.255.0`, `sh (sh-fallback,sh-port)`, `rr persistent 10 pe sip`, `rr ops`. */
export function serviceSettings(rest: readonly string[], key: IpvsServiceKey, where: string): IpvsServiceSettings {
  const [scheduler, ...flagWords] = rest;
  if (scheduler === undefined) throw new MalformedReplyError(`${where}: no scheduler`);
  let flags = 0;
  let timeout = 0;
  let netmask = key.family === 'inet' ? 0xffffffff : 128;
  let persistenceEngine: string | null = null;
  for (let i = 0; i < flagWords.length; i++) {
    const word = flagWords[i] ?? '';
    const next = flagWords[i + 1];
    if (word === 'persistent' && next !== undefined) {
      flags |= IP_VS_SVC_F.PERSISTENT;
      timeout = integer(next, where);
      i++;
    } else if (word === 'mask' && next !== undefined) {
      netmask = key.family === 'inet' ? ipv4Mask(next, where) : integer(next, where);
      i++;
    } else if (word === 'pe' && next !== undefined) {
      persistenceEngine = next;
      i++;
    } else if (word === 'ops') {
      flags |= IP_VS_SVC_F.ONEPACKET;
    } else if (word.startsWith('(') && word.endsWith(')')) {
      for (const f of word.slice(1, -1).split(',')) {
        if (f === 'flag-1' || f.endsWith('-fallback')) flags |= IP_VS_SVC_F.SCHED1;
        else if (f === 'flag-2' || f.endsWith('-port')) flags |= IP_VS_SVC_F.SCHED2;
        else if (f === 'flag-3') flags |= IP_VS_SVC_F.SCHED3;
      }
    }
  }
  return { scheduler, flags, timeout, netmask, persistenceEngine };
}

/** ipvsadm's spelling of IP_VS_TUNNEL_ENCAP_FLAG_{NOCSUM,CSUM,REMCSUM}. */
const TUNNEL_FLAGS: Readonly<Record<string, number>> = { '-c': 0, '+c': 1, 'r+c': 2 };

/** `--tun-info` column: `n/a`, `ipip`, `gue:6080:-c`, `gue:6080:r+c`, `gre:+c`. Null for `n/a`. */
export function parseTunnelInfo(text: string, where: string): IpvsTunnel | null {
  if (text === 'n/a') return null;
  const [type, ...parts] = text.split(':');
  if (type !== 'ipip' && type !== 'gue' && type !== 'gre') {
    throw new MalformedReplyError(`${where}: unknown tunnel info "${text}"`);
  }
  let port = 0;
  let flags = 0;
  for (const part of parts) {
    const f = TUNNEL_FLAGS[part];
    if (f !== undefined) flags = f;
    else port = integer(part, where);
  }
  return { type: type as IpvsTunnelType, port, flags };
}

function statsOfColumns(columns: readonly string[], where: string): IpvsStats {
  if (columns.length !== 5) throw new MalformedReplyError(`${where}: expected 5 --stats counters, got "${columns.join(' ')}"`);
  const [connections, inPackets, outPackets, inBytes, outBytes] = columns.map((c) => bigInteger(c, where));
  return {
    connections: connections ?? 0n,
    inPackets: inPackets ?? 0n,
    outPackets: outPackets ?? 0n,
    inBytes: inBytes ?? 0n,
    outBytes: outBytes ?? 0n,
    connectionsPerSecond: null,
    inPacketsPerSecond: null,
    outPacketsPerSecond: null,
    inBytesPerSecond: null,
    outBytesPerSecond: null,
  };
}

// --- script -----------------------------------------------------------------

/** ipvsadm's service options: `-t 192.0.2.10:80`, `-u [2001:db8::1]:53`, `--sctp-service …`, `-f 7 [-6]`. */
export function serviceOption(key: IpvsServiceKey): string {
  if (key.kind === 'fwmark') return `-f ${key.fwmark}${key.family === 'inet6' ? ' -6' : ''}`;
  const flag = key.protocol === 'tcp' ? '-t' : key.protocol === 'udp' ? '-u' : '--sctp-service';
  return `${flag} ${bracket(key.address)}:${key.port}`;
}

const FORWARD_OPTIONS: Partial<Record<IpvsForwardMethod, string>> = { masq: '-m', route: '-g', tunnel: '-i' };
const TUNNEL_FLAG_OPTIONS = ['--tun-nocsum', '--tun-csum', '--tun-remcsum'];

/** The `ipvsadm -R` line of one edit. */
export function scriptLine(edit: IpvsEdit): string {
  const service = serviceOption(edit.service);
  switch (edit.kind) {
    case 'add-service': {
      const s = edit.settings;
      if (s.flags !== 0 || s.persistenceEngine !== null) {
        throw new UnsupportedError(`${describeEdit(edit)}: the ipvsadm driver adds services without flags only`);
      }
      return `-A ${service} -s ${s.scheduler}`;
    }
    case 'remove-service':
      return `-D ${service}`;
    case 'add-destination':
    case 'set-destination': {
      const s = edit.settings;
      const forward = FORWARD_OPTIONS[s.forward];
      if (forward === undefined) {
        throw new UnsupportedError(
          `${describeEdit(edit)}: ipvsadm cannot write forwarding method "${s.forward}"; use the netlink driver`,
        );
      }
      let line = `${edit.kind === 'add-destination' ? '-a' : '-e'} ${service} -r ${destinationOption(edit.destination)} ${forward} -w ${s.weight} -x ${s.upperThreshold} -y ${s.lowerThreshold}`;
      if (s.forward === 'tunnel' && s.tunnel !== null) {
        line += ` --tun-type ${s.tunnel.type}`;
        if (s.tunnel.type === 'gue') line += ` --tun-port ${s.tunnel.port}`;
        if (s.tunnel.type !== 'ipip') line += ` ${TUNNEL_FLAG_OPTIONS[s.tunnel.flags] ?? '--tun-nocsum'}`;
      }
      return line;
    }
    case 'remove-destination':
      return `-d ${service} -r ${destinationOption(edit.destination)}`;
  }
}

function destinationOption(key: IpvsDestinationKey): string {
  return `${bracket(key.address)}:${key.port}`;
}

// --- errors -------------------------------------------------------------------

/** ipvsadm's words (libipvs ipvs_strerror) → the engine's typed errors. */
export function ipvsadmError(stderr: string, what: string): BridgeError {
  const text = stderr.trim().split('\n')[0] ?? '';
  const said = `${what}: ipvsadm said "${text}"`;
  if (/No such service|Service not defined|No such destination/i.test(text)) return new UnknownTargetError(said);
  if (/already exists/i.test(text)) return new ConflictError(said);
  if (/Permission denied|must be root/i.test(text)) return new EnginePermissionError(`${said}; ipvsadm needs CAP_NET_ADMIN`);
  if (/Scheduler or persistence engine not found/i.test(text)) return new UnsupportedError(said);
  if (/Can't initialize ipvs|Protocol not available/i.test(stderr)) {
    return new EngineUnavailableError(`${IPVS_UNAVAILABLE_MESSAGE} (ipvsadm: ${stderr.trim().replace(/\n/g, ' ')})`);
  }
  return new CommandFailedError(said, { exitCode: null, stderr });
}

// --- backend ------------------------------------------------------------------

export function createIpvsadmBackend(options: IpvsadmOptions = {}): IpvsBackend {
  const runner = options.runner ?? createIpvsadmRunner(options.path);
  let tunInfo = true;

  async function list(flags: readonly string[]): Promise<Listing> {
    const result = await runner.run(['-Ln', '--exact', ...flags]);
    if (result.exitCode !== 0) {
      const error = ipvsadmError(result.stderr, `ipvsadm -Ln --exact ${flags.join(' ')}`.trim());
      if (error instanceof CommandFailedError) {
        throw new CommandFailedError(error.message, { exitCode: result.exitCode, stderr: result.stderr });
      }
      throw error;
    }
    return parseListing(result.stdout);
  }

  async function baseListing(): Promise<Listing> {
    if (tunInfo) {
      try {
        return await list(['--tun-info']);
      } catch (error) {
        // ipvsadm < 1.31 has no --tun-info.
        if (!(error instanceof CommandFailedError) || !/tun-info/.test(error.stderr)) throw error;
        tunInfo = false;
      }
    }
    return list([]);
  }

  async function read(only?: ReadonlySet<string>, options: { readonly counters?: boolean } = {}): Promise<IpvsServiceState[]> {
    const [base, thresholds, stats] = await Promise.all([
      baseListing(),
      list(['--thresholds']),
      options.counters === false ? null : list(['--stats']),
    ]);
    const states = mergeListings(base, thresholds, stats);
    return only === undefined ? states : states.filter((s) => only.has(formatServiceKey(s.service.key)));
  }

  async function write(edits: readonly IpvsEdit[]): Promise<void> {
    if (edits.length === 0) return;
    const lines: string[] = [];
    let refused: BridgeError | null = null;
    for (const edit of edits) {
      try {
        lines.push(scriptLine(edit));
      } catch (error) {
        refused = error as BridgeError;
        break;
      }
    }
    const sent = edits.slice(0, lines.length);
    if (lines.length > 0) {
      const result = await runner.run(['-R'], `${lines.join('\n')}\n`);
      if (result.stderr.trim() !== '' || result.exitCode !== 0) {
        const touched = new Set(sent.map((e) => formatServiceKey(e.service)));
        const missing = firstMissing(sent, await read(touched, { counters: false }));
        if (missing !== null) throw ipvsadmError(result.stderr, describeEdit(missing));
        // Everything is in place, yet ipvsadm complained: an add of something that
        // existed already ("… already exists") looks in place afterwards.
        const added = sent.find((e) => e.kind === 'add-service' || e.kind === 'add-destination') ?? sent[0];
        const error = ipvsadmError(result.stderr, added === undefined ? 'ipvsadm -R' : describeEdit(added));
        if (!(error instanceof CommandFailedError)) throw error;
        if (result.exitCode !== 0) {
          throw new CommandFailedError(`ipvsadm -R exited with ${String(result.exitCode)}: ${result.stderr.trim()}`, {
            exitCode: result.exitCode,
            stderr: result.stderr,
          });
        }
      }
    }
    if (refused !== null) throw refused;
  }

  return {
    driver: 'ipvsadm',
    read,
    write,
    async probe() {
      await list([]);
    },
    async close() {},
  };
}

/**
 * The first edit whose result is not in `state`. Only the last edit of each
 * service or destination decides what it should look like now.
 */
export function firstMissing(edits: readonly IpvsEdit[], state: readonly IpvsServiceState[]): IpvsEdit | null {
  const services = new Map(state.map((s) => [formatServiceKey(s.service.key), s]));
  const last = new Map<string, IpvsEdit>();
  for (const edit of edits) last.set(objectOf(edit), edit);
  const missing = [...last.values()].filter((edit) => {
    const service = services.get(formatServiceKey(edit.service));
    switch (edit.kind) {
      case 'add-service':
        return service === undefined || service.service.settings.scheduler !== edit.settings.scheduler;
      case 'remove-service':
        return service !== undefined;
      case 'remove-destination':
        return service?.destinations.some((d) => sameKey(d.key, edit.destination)) ?? false;
      case 'add-destination':
      case 'set-destination': {
        const d = service?.destinations.find((x) => sameKey(x.key, edit.destination));
        return (
          d === undefined ||
          d.settings.weight !== edit.settings.weight ||
          d.settings.forward !== edit.settings.forward ||
          d.settings.upperThreshold !== edit.settings.upperThreshold ||
          d.settings.lowerThreshold !== edit.settings.lowerThreshold
        );
      }
    }
  });
  // The earliest of them, in batch order: the one that failed first.
  const first = edits.find((e) => missing.some((m) => objectOf(m) === objectOf(e)));
  return first ?? null;
}

function objectOf(edit: IpvsEdit): string {
  const service = formatServiceKey(edit.service);
  return 'destination' in edit ? `${service} ${formatDestinationKey(edit.destination)}` : service;
}

function sameKey(a: IpvsDestinationKey, b: IpvsDestinationKey): boolean {
  return a.address === b.address && a.port === b.port && a.family === b.family;
}

// --- small helpers --------------------------------------------------------------

function words(text: string | undefined): string[] {
  return (text ?? '').trim().split(/\s+/).filter((w) => w !== '');
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function hostPort(text: string, where: () => string): { host: string; port: number } {
  try {
    return parseHostPort(text, { allowPortZero: true });
  } catch (error) {
    throw new MalformedReplyError(`${where()}: ${(error as Error).message}`, { cause: error });
  }
}

function listedDestination(text: string, where: () => string): IpvsDestinationKey {
  const { host, port } = hostPort(text, where);
  return parseDestinationKey(`${bracket(host)}:${port}`);
}

function integer(text: string | undefined, where: string): number {
  if (text === undefined || !/^\d+$/.test(text)) throw new MalformedReplyError(`${where}: "${String(text)}" is not a count`);
  return Number(text);
}

function bigInteger(text: string, where: string): bigint {
  if (!/^\d+$/.test(text)) throw new MalformedReplyError(`${where}: "${text}" is not a count (was --exact given?)`);
  return BigInt(text);
}

function ipv4Mask(text: string, where: string): number {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new MalformedReplyError(`${where}: "${text}" is not an IPv4 netmask`);
  }
  return parts.reduce((n, p) => n * 256 + p, 0);
}
