// What the IPVS engine needs from a driver: read the kernel's services and
// destinations, send edits. Both drivers (netlink, ipvsadm) implement it; the
// engine (engine.ts) does everything else the same way over either.
import type { IpvsEdit } from './edits.js';
import type { IpvsServiceState } from './model.js';

export type IpvsDriver = 'netlink' | 'ipvsadm';

export interface IpvsBackend {
  readonly driver: IpvsDriver;
  /**
   * Every service (or those whose `formatServiceKey` is in `only`) with its
   * destinations, sorted (compareServiceKeys, compareDestinationKeys).
   * `counters: false` says the stats are not needed (a driver may then skip
   * reading them and report them as null).
   */
  read(only?: ReadonlySet<string>, options?: { readonly counters?: boolean }): Promise<IpvsServiceState[]>;
  /**
   * Send `edits` in order. Rejects with the typed error of the first edit the
   * kernel refused; edits sent after it may have been applied.
   */
  write(edits: readonly IpvsEdit[]): Promise<void>;
  /** Resolve when the driver can talk to IPVS; reject with why not. */
  probe(): Promise<void>;
  close(): Promise<void>;
}
