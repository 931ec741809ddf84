// The IPVS fixtures captured from a real kernel (test/fixtures/ipvs/README.md).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipvsCodec, type NetlinkMessage } from '@loadfeed/kernel-bridge';

/** `uname -r` of the guest kernel the fixtures come from. */
export const IPVS_FIXTURE_KERNEL = '6.1.0-56-amd64';
/** The IPVS family id that kernel gave (CTRL_CMD_GETFAMILY). */
export const IPVS_FIXTURE_FAMILY = 32;

export const ipvsFixtureDir = path.join(
  fileURLToPath(new URL('../../fixtures/ipvs/', import.meta.url)),
  IPVS_FIXTURE_KERNEL,
);

export function ipvsFixtureText(name: string): string {
  return readFileSync(path.join(ipvsFixtureDir, name), 'utf8');
}

export function ipvsFixtureBytes(name: string): Buffer {
  return readFileSync(path.join(ipvsFixtureDir, name));
}

/** The netlink messages of a captured reply (`netlink-get-info` → its datagrams, split into messages). */
export function capturedReply(name: string): NetlinkMessage[] {
  return ipvsCodec.decodeNetlinkMessages(ipvsFixtureBytes(`${name}.reply.bin`));
}
