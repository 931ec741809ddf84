// From engine ops to HAProxy runtime API commands, checked against a fresh
// `show stat`: pure, so the engine's decisions are table-tested without a
// HAProxy. HAProxy runs every command of a line even after one fails, so the
// plan stops at the first op that cannot apply (unknown backend or server,
// a server that exists already) and returns its error with the commands for
// the ops before it: the contract's "earlier ops stay applied, later ones not".
import { formatHostPort, parseHostPort } from '../address.js';
import {
  AddressError,
  ConflictError,
  UnknownTargetError,
  UnsupportedError,
  type BridgeError,
} from '../errors.js';
import type { EngineOp } from '../model.js';
import { checkMaxConnections } from '../op-checks.js';
import { MARKER_COMMAND, type StatBackend } from './replies.js';

/** What HAProxy accepts in proxy and server names; also keeps `;`, spaces and newlines out of command lines. */
const NAME = /^[A-Za-z0-9_.:-]{1,200}$/;

/** Where `add server` puts a new server: `HOST:PORT`, from the backend and server names. */
export type ServerAddressResolver = (backend: string, server: string) => string;

/**
 * The default resolver: a dynamic server is named after its address, so
 * add-destination `10.0.0.1:8080` creates server `10.0.0.1:8080` at that
 * address. IPv4 only: HAProxy names cannot hold the brackets of `[2001:db8::1]:80`.
 */
export const serverNamedByAddress: ServerAddressResolver = (backend, server) => {
  if (!/^\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}$/.test(server)) {
    throw new UnsupportedError(
      `add-destination "${backend}" "${server}": HAProxy needs an address for a new server; name dynamic ` +
        `servers after their IPv4 address (e.g. "10.0.0.1:8080") or give the engine a resolveServer option`,
    );
  }
  return server;
};

/** Commands for one op; `index` is the op's position in the batch. */
export interface PlannedOp {
  readonly index: number;
  readonly backend: string;
  /** `set-weight "b" "s"`, for error messages. */
  readonly label: string;
  readonly commands: readonly string[];
  /**
   * True when a command of this op may fail in a way the plan cannot foresee
   * (a dynamic server on a backend that does not allow them, a server with
   * connections still attached): no later op may share its line.
   */
  readonly endsLine: boolean;
}

export interface HaproxyPlan {
  /** Ops that change something, in batch order (a weight already in force is left out). */
  readonly ops: readonly PlannedOp[];
  /** Why the op after the planned ones cannot apply; null when every op can. */
  readonly error: BridgeError | null;
}

/**
 * Check every name and connection limit of a batch before anything is
 * applied (weights are checked by op-checks.ts).
 */
export function checkOps(ops: readonly EngineOp[]): void {
  for (const op of ops) {
    const backend = op.op === 'add-service' ? op.service.address : op.service;
    checkName(op.op, 'backend', backend);
    if (op.op === 'add-destination' || op.op === 'set-weight' || op.op === 'remove-destination') {
      checkName(op.op, 'server', op.destination);
    }
    if (op.op === 'set-weight') checkMaxConnections(op);
  }
}

function checkName(op: string, what: string, name: string): void {
  if (!NAME.test(name)) {
    throw new AddressError(
      `${op}: "${name}" is not a HAProxy ${what} name (letters, digits, "-", "_", ".", ":"; the engine's ` +
        `service address is the backend name, its destination address the server name)`,
    );
  }
}

/**
 * The commands that carry out `ops` on `backends` (a fresh `show stat`), up to
 * the first op that cannot apply. Ops are assumed checked (checkOps).
 */
export function planCommands(
  ops: readonly EngineOp[],
  backends: readonly StatBackend[],
  resolve: ServerAddressResolver,
): HaproxyPlan {
  // Backend → server → what is in force, updated as ops are planned.
  const state = new Map(
    backends.map((b) => [b.name, new Map(b.servers.map((s) => [s.name, { weight: s.weight, maxConnections: s.maxConnections }]))]),
  );
  const planned: PlannedOp[] = [];
  const done = (error: BridgeError | null): HaproxyPlan => ({ ops: planned, error });

  for (const [index, op] of ops.entries()) {
    if (op.op === 'add-service') {
      return done(
        new UnsupportedError(
          `add-service "${op.service.address}": HAProxy backends are configured in haproxy.cfg; add it there and reload HAProxy`,
        ),
      );
    }
    const servers = state.get(op.service);
    if (servers === undefined) return done(new UnknownTargetError(`no HAProxy backend "${op.service}"`));
    const target = `${op.service}/${op.op === 'remove-service' ? '' : op.destination}`;
    switch (op.op) {
      case 'remove-service':
        return done(
          new UnsupportedError(
            `remove-service "${op.service}": HAProxy backends are configured in haproxy.cfg; remove it there and reload HAProxy`,
          ),
        );
      case 'set-weight': {
        const server = servers.get(op.destination);
        if (server === undefined) return done(unknownServer(op.service, op.destination));
        const commands: string[] = [];
        if (server.weight !== op.weight) commands.push(`set server ${target} weight ${op.weight}`);
        if (op.maxConnections !== undefined && server.maxConnections !== op.maxConnections) {
          commands.push(`set maxconn server ${target} ${op.maxConnections}`);
        }
        servers.set(op.destination, { weight: op.weight, maxConnections: op.maxConnections ?? server.maxConnections });
        if (commands.length > 0) {
          planned.push({ index, backend: op.service, label: `set-weight "${op.service}" "${op.destination}"`, commands, endsLine: false });
        }
        break;
      }
      case 'add-destination': {
        if (servers.has(op.destination)) {
          return done(new ConflictError(`HAProxy backend "${op.service}" has server "${op.destination}" already`));
        }
        let address: string;
        try {
          address = formatHostPort(parseHostPort(resolve(op.service, op.destination)));
        } catch (error) {
          return done(error as BridgeError);
        }
        servers.set(op.destination, { weight: op.weight, maxConnections: 0 });
        planned.push({
          index,
          backend: op.service,
          label: `add-destination "${op.service}" "${op.destination}"`,
          // A dynamic server starts in maintenance: make it ready at once.
          commands: [`add server ${target} ${address} weight ${op.weight}`, `set server ${target} state ready`],
          endsLine: true,
        });
        break;
      }
      case 'remove-destination': {
        if (!servers.has(op.destination)) return done(unknownServer(op.service, op.destination));
        servers.delete(op.destination);
        planned.push({
          index,
          backend: op.service,
          label: `remove-destination "${op.service}" "${op.destination}"`,
          // HAProxy deletes only servers in maintenance, and only once their connections are gone.
          commands: [`set server ${target} state maint`, `del server ${target}`],
          endsLine: true,
        });
        break;
      }
    }
  }
  return done(null);
}

function unknownServer(backend: string, server: string): UnknownTargetError {
  return new UnknownTargetError(`HAProxy backend "${backend}" has no server "${server}"`);
}

/** Bytes a command adds to a line, with its separator and the marker after it (see replies.ts). */
export function commandBytes(command: string): number {
  return Buffer.byteLength(command) + Buffer.byteLength(`; ; ${MARKER_COMMAND}`);
}

/**
 * Group planned ops into command lines: an op that `endsLine` closes its line,
 * and a line closes before it would pass `maxLineBytes`. An op longer than
 * that on its own gets a line of its own.
 */
export function groupLines(ops: readonly PlannedOp[], maxLineBytes: number): PlannedOp[][] {
  const lines: PlannedOp[][] = [];
  let line: PlannedOp[] = [];
  let bytes = Buffer.byteLength(MARKER_COMMAND);
  for (const op of ops) {
    const opBytes = op.commands.reduce((sum, command) => sum + commandBytes(command), 0);
    if (line.length > 0 && bytes + opBytes > maxLineBytes) {
      lines.push(line);
      line = [];
      bytes = Buffer.byteLength(MARKER_COMMAND);
    }
    line.push(op);
    bytes += opBytes;
    if (op.endsLine) {
      lines.push(line);
      line = [];
      bytes = Buffer.byteLength(MARKER_COMMAND);
    }
  }
  if (line.length > 0) lines.push(line);
  return lines;
}
