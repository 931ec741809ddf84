// Static facts about the host, collected once at start for Hello. This is the
// one place systeminformation is used: si.cpu() may run lscpu/dmidecode (it
// spawns, we do not), which is fine once per process and never on the
// sampling path.
import os from 'node:os';
import * as si from 'systeminformation';

export interface Facts {
  readonly hostname: string;
  /** e.g. "AMD EPYC"; empty when unknown. */
  readonly cpuModel: string;
  /** Logical CPUs of the host (informational: capacity comes from the sampler's scope). */
  readonly cores: number;
  /** Non-internal IPv4 and IPv6 addresses, without IPv6 link-local ones (only meaningful with an interface). */
  readonly addresses: string[];
}

export type CpuInfo = Pick<si.Systeminformation.CpuData, 'manufacturer' | 'brand' | 'cores'>;

/** `readCpu` defaults to si.cpu(); on failure the facts fall back to os.cpus(). */
export async function collectFacts(readCpu: () => Promise<CpuInfo> = si.cpu): Promise<Facts> {
  const cpu = await readCpu().catch(() => null);
  const fallback = os.cpus();
  const model = cpu === null ? '' : `${cpu.manufacturer} ${cpu.brand}`.trim();
  return {
    hostname: os.hostname(),
    cpuModel: model !== '' ? model : (fallback[0]?.model.trim() ?? ''),
    cores: cpu !== null && cpu.cores > 0 ? cpu.cores : fallback.length,
    addresses: hostAddresses(os.networkInterfaces()),
  };
}

export function hostAddresses(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>): string[] {
  const found = new Set<string>();
  for (const infos of Object.values(interfaces)) {
    for (const info of infos ?? []) {
      if (info.internal) continue;
      if (info.family === 'IPv6' && /^fe[89ab]/i.test(info.address)) continue;
      found.add(info.address);
    }
  }
  return [...found];
}
