// Runs a system tool (ipvsadm, nft, ip): the only place the kernel bridge
// spawns processes. One process per call; stdin is written and closed, stdout
// and stderr collected, and a process that hangs is killed after a timeout.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { CommandFailedError, EngineUnavailableError } from './errors.js';

/**
 * Where system tools are looked up, in this order, and never on PATH: under
 * npm, PATH starts with node_modules/.bin, where an unrelated `nft`
 * (@vercel/nft, a file tracer pulled in by tooling) answered every command
 * with exit 0; and a service's PATH may lack the sbin directories.
 */
export const SYSTEM_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'] as const;

/** Longest one call may take; a batch of thousands of lines takes well under a second. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

/** The system's `name` (first executable in SYSTEM_BIN_DIRS), or null; an absolute path is taken as given. */
export function systemTool(name: string): string | null {
  if (path.isAbsolute(name)) return name;
  for (const dir of SYSTEM_BIN_DIRS) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not installed there
    }
  }
  return null;
}

export interface CommandResult {
  /** Exit status; null when killed by a signal. */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandRunner {
  /** The argv prefix as given, e.g. `['nft']` or `['ip', 'netns', 'exec', 'lb', 'nft']`. */
  readonly command: readonly string[];
  /** Run the command with `args`, feeding `stdin` when given. Rejects only when the process cannot run. */
  run(args: readonly string[], stdin?: string): Promise<CommandResult>;
}

export interface CommandOptions {
  readonly timeoutMs?: number;
  /** What to do when the tool is missing, for the error (e.g. "install nftables (apt-get install nftables)"). */
  readonly install: string;
}

/**
 * A runner for `command`. Each tool in the argv prefix given by name (the
 * first, and the one after `ip netns exec NS`) is looked up in
 * SYSTEM_BIN_DIRS at every call, so a tool installed or removed meanwhile is
 * found; an absolute path (e.g. from configuration) is used as given.
 */
export function createCommandRunner(command: readonly string[], options: CommandOptions): CommandRunner {
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  if (command.length === 0) throw new EngineUnavailableError('the command is empty');
  const shown = command.join(' ');
  const tools = toolPositions(command);
  return {
    command,
    run(args, stdin) {
      const argv = [...command];
      for (const i of tools) {
        const name = command[i] ?? '';
        const found = systemTool(name);
        if (found === null) {
          return Promise.reject(
            new EngineUnavailableError(`${name} not found in ${SYSTEM_BIN_DIRS.join(', ')} (running "${shown}"): ${options.install}`),
          );
        }
        argv[i] = found;
      }
      const [file = '', ...prefix] = argv;
      return runOnce(file, [...prefix, ...args], stdin, timeoutMs, shown, options.install);
    },
  };
}

/** Indexes of the tools in an argv prefix: the first word, and the program `ip netns exec NS` runs. */
function toolPositions(command: readonly string[]): number[] {
  const positions = [0];
  if (path.basename(command[0] ?? '') === 'ip' && command[1] === 'netns' && command[2] === 'exec' && command.length > 4) positions.push(4);
  return positions;
}

function runOnce(file: string, args: readonly string[], stdin: string | undefined, timeoutMs: number, shown: string, install: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // EPIPE when the tool exits before reading all its input: its exit status tells what happened.
    child.stdin.on('error', () => {});
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const running = shown === file ? '' : ` (running "${shown}")`;
      if (error.code === 'ENOENT') reject(new EngineUnavailableError(`${file} not found${running}: ${install}`, { cause: error }));
      else reject(new CommandFailedError(`cannot run ${shown}: ${error.message}`, { exitCode: null, stderr: '', cause: error }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const said = Buffer.concat(stderr).toString('utf8');
      resolve({
        exitCode: code,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: timedOut ? `${said}${file} killed: no answer within ${timeoutMs} ms\n` : said,
      });
    });
    child.stdin.end(stdin ?? '');
  });
}
