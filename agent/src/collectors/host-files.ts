// The host-wide /proc files every report reads (memory, pressure, load, TCP
// totals), held open for the sampler's life and read with one pread each
// instead of open, read and close: at one report a second the three syscalls
// of a cold read were most of what reading a small /proc file costs
// (HeldFile). Host files never go away, unlike a cgroup's, so nothing needs
// reopening; a read that fails closes its file and the next one opens it
// afresh.
import { join } from 'node:path';
import { HeldFile } from './read-text.js';
import { parseLoadavg, type LoadAvg } from './loadavg.js';
import { parseMeminfo, type MemInfo } from './meminfo.js';
import { parsePressure, type Pressure, type PressureResource } from './pressure.js';
import { parseSnmp, parseSockstat, type TcpSnmp } from './sockstat.js';

export class HostFiles {
  private readonly meminfoFile: HeldFile;
  private readonly loadavgFile: HeldFile;
  private readonly sockstat: HeldFile;
  private readonly sockstat6: HeldFile;
  private readonly snmp: HeldFile;
  private readonly pressureFiles: Readonly<Record<PressureResource, HeldFile>>;

  constructor(procRoot: string) {
    this.meminfoFile = new HeldFile(join(procRoot, 'meminfo'));
    this.loadavgFile = new HeldFile(join(procRoot, 'loadavg'));
    this.sockstat = new HeldFile(join(procRoot, 'net', 'sockstat'));
    this.sockstat6 = new HeldFile(join(procRoot, 'net', 'sockstat6'));
    this.snmp = new HeldFile(join(procRoot, 'net', 'snmp'));
    const pressure = (resource: PressureResource): HeldFile => new HeldFile(join(procRoot, 'pressure', resource));
    this.pressureFiles = { cpu: pressure('cpu'), memory: pressure('memory'), io: pressure('io') };
  }

  meminfo(): MemInfo {
    return parseMeminfo(this.meminfoFile.read(), this.meminfoFile.path);
  }

  loadavg(): LoadAvg {
    return parseLoadavg(this.loadavgFile.read(), this.loadavgFile.path);
  }

  /** TCP sockets in use, IPv4 plus IPv6 (sockstat6 is absent when the kernel has no IPv6). */
  tcpInuse(): number {
    const v4 = parseSockstat(this.sockstat.read(), this.sockstat.path);
    const v6 = this.sockstat6.readOrNull();
    return v4 + (v6 === null ? 0 : parseSockstat(v6, this.sockstat6.path));
  }

  tcpSnmp(): TcpSnmp {
    return parseSnmp(this.snmp.read(), this.snmp.path);
  }

  /** The host's pressure for one resource; null when the kernel has no PSI (absent, or disabled: EOPNOTSUPP). */
  pressure(resource: PressureResource): Pressure | null {
    const file = this.pressureFiles[resource];
    const text = file.readOrNull();
    return text === null ? null : parsePressure(text, file.path);
  }

  close(): void {
    for (const file of [this.meminfoFile, this.loadavgFile, this.sockstat, this.sockstat6, this.snmp, ...Object.values(this.pressureFiles)]) file.close();
  }
}
