// Runs the ipvsadm binary: the only part of the ipvsadm driver that touches
// the OS. One process per call; stdin is written and closed, stdout and stderr
// collected, and a process that hangs is killed after a timeout.
import { spawn } from 'node:child_process';
import { CommandFailedError, EngineUnavailableError } from '../errors.js';

/** Longest an ipvsadm call may take; a `-R` batch of thousands of lines takes well under a second. */
export const DEFAULT_IPVSADM_TIMEOUT_MS = 30_000;

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

export function createIpvsadmRunner(path = 'ipvsadm', timeoutMs = DEFAULT_IPVSADM_TIMEOUT_MS): IpvsadmRunner {
  return {
    run(args, stdin) {
      return new Promise((resolve, reject) => {
        const child = spawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
        child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        // EPIPE when ipvsadm exits before reading everything: its exit status tells what happened.
        child.stdin.on('error', () => {});
        child.on('error', (error: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          if (error.code === 'ENOENT') {
            reject(
              new EngineUnavailableError(
                `${path} not found: install ipvsadm (apt-get install ipvsadm) or use the netlink driver`,
                { cause: error },
              ),
            );
          } else {
            reject(new CommandFailedError(`cannot run ${path}: ${error.message}`, { exitCode: null, stderr: '', cause: error }));
          }
        });
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({
            exitCode: code,
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: Buffer.concat(stderr).toString('utf8'),
          });
        });
        child.stdin.end(stdin ?? '');
      });
    },
  };
}
