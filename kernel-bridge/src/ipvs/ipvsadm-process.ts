// Runs the ipvsadm binary: the only part of the ipvsadm driver that touches
// the OS. One process per call; stdin is written and closed, stdout and stderr
// collected, and a process that hangs is killed after a timeout.
import { spawn } from 'node:child_process';
import { CommandFailedError, EngineUnavailableError } from '../errors.js';

/** Longest an ipvsadm call may take; a `-R` batch of thousands of lines takes well under a second. */
export const DEFAULT_IPVSADM_TIMEOUT_MS = 30_000;

/** Where Debian and others install ipvsadm, tried when it is not on PATH (a service's PATH may lack sbin). */
const SBIN_PATHS = ['/usr/sbin/ipvsadm', '/sbin/ipvsadm'];

export interface IpvsadmResult {
  /** Exit status; null when killed by a signal. */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface IpvsadmRunner {
  /** Run ipvsadm with `args`, feeding `stdin` when given. Rejects only when the process cannot run. */
  run(args: readonly string[], stdin?: string): Promise<IpvsadmResult>;
}

/** `path` by default: `ipvsadm` on PATH, else /usr/sbin/ipvsadm, else /sbin/ipvsadm (the first found is kept). */
export function createIpvsadmRunner(path?: string, timeoutMs = DEFAULT_IPVSADM_TIMEOUT_MS): IpvsadmRunner {
  const candidates = path === undefined ? ['ipvsadm', ...SBIN_PATHS] : [path];
  let found: string | null = null;
  return {
    async run(args, stdin) {
      const known = found;
      if (known !== null) {
        const result = await runOnce(known, args, stdin, timeoutMs);
        if (result !== null) return result;
        found = null; // removed meanwhile: look again
      }
      for (const candidate of candidates) {
        const result = await runOnce(candidate, args, stdin, timeoutMs);
        if (result === null) continue;
        found = candidate;
        return result;
      }
      throw new EngineUnavailableError(
        `${candidates.join(', ')} not found: install ipvsadm (apt-get install ipvsadm) or use the netlink driver`,
      );
    },
  };
}

/** The result, or null when there is no such program. */
function runOnce(
  path: string,
  args: readonly string[],
  stdin: string | undefined,
  timeoutMs: number,
): Promise<IpvsadmResult | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // EPIPE when ipvsadm exits before reading everything: its exit status tells what happened.
    child.stdin.on('error', () => {});
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ENOENT') resolve(null);
      else reject(new CommandFailedError(`cannot run ${path}: ${error.message}`, { exitCode: null, stderr: '', cause: error }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const said = Buffer.concat(stderr).toString('utf8');
      resolve({
        exitCode: code,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: timedOut ? `${said}${path} killed: no answer within ${timeoutMs} ms\n` : said,
      });
    });
    child.stdin.end(stdin ?? '');
  });
}
