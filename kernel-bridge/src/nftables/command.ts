// Runs nft: the only part of the nftables engine that touches the OS. One
// process per call (a read, or one atomic `nft -f -` transaction); stdin is
// written and closed, stdout and stderr collected, a hung process killed.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { CommandFailedError, EngineUnavailableError } from '../errors.js';

/**
 * Where distributions install nft. Looked up before PATH: under npm, PATH
 * starts with node_modules/.bin, where an unrelated `nft` (@vercel/nft, a
 * file tracer pulled in by tooling) answers every command with exit 0.
 */
export const SYSTEM_NFT_PATHS = ['/usr/sbin/nft', '/sbin/nft', '/usr/local/sbin/nft'] as const;

/** The system's nft (SYSTEM_NFT_PATHS), or plain `nft` from PATH when none is there. */
export function systemNft(): string {
  for (const candidate of SYSTEM_NFT_PATHS) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not installed there
    }
  }
  return 'nft';
}

/** Longest one nft call may take; a table of thousands of elements loads in well under a second. */
export const DEFAULT_NFT_TIMEOUT_MS = 30_000;

export interface NftResult {
  /** Exit status; null when killed by a signal. */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface NftRunner {
  /** The argv prefix, e.g. `['/usr/sbin/nft']` or `['ip', 'netns', 'exec', 'lb', '/usr/sbin/nft']`. */
  readonly command: readonly string[];
  /** Run nft with `args`, feeding `stdin` when given. Rejects only when the process cannot run. */
  run(args: readonly string[], stdin?: string): Promise<NftResult>;
}

export function createNftRunner(command: readonly string[] = [systemNft()], timeoutMs = DEFAULT_NFT_TIMEOUT_MS): NftRunner {
  const [file, ...prefix] = command;
  if (file === undefined) throw new EngineUnavailableError('the nft command is empty');
  const shown = command.join(' ');
  return {
    command,
    run(args, stdin) {
      return new Promise((resolve, reject) => {
        const child = spawn(file, [...prefix, ...args], {
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { ...process.env, LC_ALL: 'C' },
        });
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
        child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        // EPIPE when nft exits before reading its script: its exit status tells why.
        child.stdin.on('error', () => {});
        child.on('error', (error: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          if (error.code === 'ENOENT') {
            reject(
              new EngineUnavailableError(
                `${file} not found (running "${shown}"): install nftables (apt-get install nftables)`,
                { cause: error },
              ),
            );
          } else {
            reject(new CommandFailedError(`cannot run ${shown}: ${error.message}`, { exitCode: null, stderr: '', cause: error }));
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
