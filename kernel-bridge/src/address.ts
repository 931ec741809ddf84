import { isIP } from 'node:net';
import { AddressError } from './errors.js';

export type Protocol = 'tcp' | 'udp';

export interface HostPort {
  /** IP address text, without brackets for IPv6. */
  readonly host: string;
  readonly port: number;
}

export interface L4Address extends HostPort {
  readonly protocol: Protocol;
}

export interface ParseAddressOptions {
  /** Accept port 0 ("any free port"): only meaningful for a listener, e.g. tests binding `listen(0)`. */
  readonly allowPortZero?: boolean;
}

/** Parse `192.0.2.21:8080` or `[2001:db8::1]:8080`. */
export function parseHostPort(text: string, options: ParseAddressOptions = {}): HostPort {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || isIP(host) === 0) {
    throw new AddressError(`"${text}" is not an address: expected IP:PORT, e.g. 192.0.2.21:8080 or [2001:db8::1]:8080`);
  }
  const minPort = options.allowPortZero === true ? 0 : 1;
  if (!Number.isInteger(port) || port < minPort || port > 65535) {
    throw new AddressError(`"${text}": port ${m[3]} must be ${minPort}..65535`);
  }
  return { host, port };
}

/** Parse `tcp 192.0.2.10:80` (the protocol defaults to tcp when omitted). */
export function parseL4Address(text: string, options: ParseAddressOptions = {}): L4Address {
  const m = /^\s*(?:(tcp|udp)\s+)?(\S+)\s*$/i.exec(text);
  if (!m || m[2] === undefined) {
    throw new AddressError(`"${text}" is not a service address: expected "tcp IP:PORT", e.g. "tcp 192.0.2.10:80"`);
  }
  const protocol = (m[1]?.toLowerCase() ?? 'tcp') as Protocol;
  return { protocol, ...parseHostPort(m[2], options) };
}

export function formatHostPort(a: HostPort): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export function formatL4Address(a: L4Address): string {
  return `${a.protocol} ${formatHostPort(a)}`;
}
