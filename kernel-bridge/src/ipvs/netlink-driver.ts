// The netlink driver: reads IPVS with GET_SERVICE / GET_DEST dumps and writes
// it with NEW_/SET_/DEL_ commands, all over one IpvsSocket. Writes of one batch
// go out back to back (a window at a time) and their ACKs are awaited together.
import {
  ConflictError,
  MalformedReplyError,
  NetlinkErrnoError,
  UnknownTargetError,
  UnsupportedError,
} from '../errors.js';
import { ipvsCodec, type CommandAttributes, type IpvsCodec } from './codec.js';
import type { IpvsEdit } from './edits.js';
import type { IpvsBackend } from './backend.js';
import {
  compareDestinationKeys,
  compareServiceKeys,
  destinationFromAttributes,
  destinationKeyAttributes,
  destinationSettingsAttributes,
  formatDestinationKey,
  formatServiceKey,
  IncompleteRecordError,
  serviceFromAttributes,
  serviceKeyAttributes,
  type IpvsDestination,
  type IpvsService,
  type IpvsServiceState,
} from './model.js';
import type { IpvsSocket } from './socket.js';
import { IPVS_CMD, NLM_F } from './uapi.js';

/**
 * Requests in flight at once. Each ACK takes room in the socket's receive
 * buffer (about 200 kB by default) until Node reads it; 64 stay well inside it,
 * so no ACK is dropped (ENOBUFS) however large the batch.
 */
export const DEFAULT_NETLINK_WINDOW = 64;

export interface NetlinkDriverOptions {
  readonly window?: number;
  readonly codec?: IpvsCodec;
}

export function createNetlinkBackend(socket: IpvsSocket, options: NetlinkDriverOptions = {}): IpvsBackend {
  const codec = options.codec ?? ipvsCodec;
  const window = options.window ?? DEFAULT_NETLINK_WINDOW;

  async function read(only?: ReadonlySet<string>): Promise<IpvsServiceState[]> {
    const services: IpvsService[] = [];
    for (const bytes of await socket.execute(IPVS_CMD.GET_SERVICE, {}, NLM_F.DUMP)) {
      const attrs = decode(() => codec.decodeCommand(bytes).service, 'IPVS_CMD_GET_SERVICE');
      if (attrs === undefined) continue;
      const service = decode(() => serviceFromAttributes(attrs), 'IPVS_CMD_GET_SERVICE');
      if (only === undefined || only.has(formatServiceKey(service.key))) services.push(service);
    }
    services.sort((a, b) => compareServiceKeys(a.key, b.key));
    const states: IpvsServiceState[] = [];
    // One dump at a time: the kernel answers EBUSY to a second dump on a socket
    // while the first is still running.
    for (const service of services) {
      const destinations: IpvsDestination[] = [];
      const request: CommandAttributes = { service: serviceKeyAttributes(service.key) };
      for (const bytes of await socket.execute(IPVS_CMD.GET_DEST, request, NLM_F.DUMP)) {
        const attrs = decode(() => codec.decodeCommand(bytes).dest, 'IPVS_CMD_GET_DEST');
        if (attrs === undefined) continue;
        destinations.push(decode(() => destinationFromAttributes(attrs, service.key.family), 'IPVS_CMD_GET_DEST'));
      }
      destinations.sort((a, b) => compareDestinationKeys(a.key, b.key));
      states.push({ service, destinations });
    }
    return states;
  }

  async function write(edits: readonly IpvsEdit[]): Promise<void> {
    for (let start = 0; start < edits.length; start += window) {
      const chunk = edits.slice(start, start + window);
      const results = await Promise.allSettled(chunk.map((edit) => socket.execute(...request(edit))));
      for (const [i, result] of results.entries()) {
        const edit = chunk[i];
        if (result.status === 'rejected' && edit !== undefined) throw kernelError(result.reason, edit);
      }
    }
  }

  return {
    driver: 'netlink',
    read,
    write,
    async probe() {
      await socket.execute(IPVS_CMD.GET_INFO, {});
    },
    async close() {
      socket.close();
    },
  };
}

/** The command and attributes that carry out one edit. */
export function request(edit: IpvsEdit): [number, CommandAttributes] {
  const service = serviceKeyAttributes(edit.service);
  switch (edit.kind) {
    case 'add-service':
      return [
        IPVS_CMD.NEW_SERVICE,
        {
          service: {
            ...service,
            schedName: edit.settings.scheduler,
            flags: { flags: edit.settings.flags, mask: 0xffffffff },
            timeout: edit.settings.timeout,
            netmask: edit.settings.netmask,
          },
        },
      ];
    case 'remove-service':
      return [IPVS_CMD.DEL_SERVICE, { service }];
    case 'add-destination':
    case 'set-destination':
      return [
        edit.kind === 'add-destination' ? IPVS_CMD.NEW_DEST : IPVS_CMD.SET_DEST,
        {
          service,
          dest: { ...destinationKeyAttributes(edit.destination), ...destinationSettingsAttributes(edit.settings) },
        },
      ];
    case 'remove-destination':
      return [IPVS_CMD.DEL_DEST, { service, dest: destinationKeyAttributes(edit.destination) }];
  }
}

/**
 * Kernel errno → typed error, naming what the edit was about. IPVS answers
 * ESRCH for a missing service, ENOENT for a missing destination (and for a
 * scheduler module it cannot load), EEXIST for a duplicate.
 */
export function kernelError(error: unknown, edit: IpvsEdit): unknown {
  if (!(error instanceof NetlinkErrnoError)) return error;
  const service = formatServiceKey(edit.service);
  const destination = 'destination' in edit ? formatDestinationKey(edit.destination) : null;
  switch (error.errnoName) {
    case 'ESRCH':
      return new UnknownTargetError(`${edit.kind}: no service "${service}" (kernel: ESRCH)`);
    case 'ENOENT':
      if (edit.kind === 'add-service') {
        return new UnsupportedError(
          `add-service "${service}": scheduler "${edit.settings.scheduler}" is not available in this kernel (no module ip_vs_${edit.settings.scheduler}; kernel: ENOENT)`,
        );
      }
      return destination === null
        ? new UnknownTargetError(`${edit.kind}: no service "${service}" (kernel: ENOENT)`)
        : new UnknownTargetError(`${edit.kind}: service "${service}" has no destination "${destination}" (kernel: ENOENT)`);
    case 'EEXIST':
      return destination === null
        ? new ConflictError(`${edit.kind}: service "${service}" exists already (kernel: EEXIST)`)
        : new ConflictError(`${edit.kind}: service "${service}" has destination "${destination}" already (kernel: EEXIST)`);
    default:
      return new NetlinkErrnoError(error.errno, error.errnoName, `${describeEdit(edit)}: ${error.message}`);
  }
}

/** `set-destination "tcp 192.0.2.10:80" "192.0.2.21:8080" (masq, weight 5, thresholds 0/0)`. */
export function describeEdit(edit: IpvsEdit): string {
  const service = `${edit.kind} "${formatServiceKey(edit.service)}"`;
  switch (edit.kind) {
    case 'add-service':
      return `${service} (scheduler ${edit.settings.scheduler})`;
    case 'remove-service':
      return service;
    case 'add-destination':
    case 'set-destination': {
      const s = edit.settings;
      const tunnel = s.forward !== 'tunnel' || s.tunnel === null ? '' : `, tunnel ${s.tunnel.type}`;
      return `${service} "${formatDestinationKey(edit.destination)}" (${s.forward}, weight ${s.weight}, thresholds ${s.upperThreshold}/${s.lowerThreshold}${tunnel})`;
    }
    case 'remove-destination':
      return `${service} "${formatDestinationKey(edit.destination)}"`;
  }
}

function decode<T>(f: () => T, what: string): T {
  try {
    return f();
  } catch (error) {
    if (error instanceof IncompleteRecordError) {
      throw new MalformedReplyError(`${what}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}
