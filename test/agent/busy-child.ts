// Real busy processes for CPU-time tests. The child (optionally with one
// grandchild) announces itself, waits for "go", burns a set amount of CPU
// time at a set duty cycle, and reports the CPU seconds it used
// (process.cpuUsage): tests compare the agent's figure with the processes'
// own account instead of guessing from timings. The amount is CPU time, not
// wall time: on a loaded machine the burn takes longer, but each process
// still uses what the test expects (a wall-clock burn left a starved
// grandchild with almost nothing to measure).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';

/**
 * argv: busyMs dutyPercent withGrandchild(0|1): burn busyMs × duty of CPU
 * time (the busy period on an idle core). Speaks JSON lines on stdin/stdout.
 */
const PROGRAM = String.raw`
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const [busyMs, duty, withGrandchild] = process.argv.slice(1).map(Number);
const send = (msg) => process.stdout.write(JSON.stringify(msg) + '\n');
const lines = (stream) => {
  const queue = [];
  const waiting = [];
  readline.createInterface({ input: stream }).on('line', (l) => (waiting.length ? waiting.shift()(l) : queue.push(l)));
  return () => new Promise((resolve) => (queue.length ? resolve(queue.shift()) : waiting.push(resolve)));
};
function burn() {
  const start = process.cpuUsage();
  const usedMs = () => {
    const u = process.cpuUsage(start);
    return (u.user + u.system) / 1000;
  };
  const cell = new Int32Array(new SharedArrayBuffer(4));
  // Busy for duty % of every 10 ms slice, blocked in Atomics.wait (no CPU) for the rest.
  while (usedMs() < (busyMs * duty) / 100) {
    const slice = performance.now();
    while (performance.now() - slice < duty / 10) {}
    if (duty < 100) Atomics.wait(cell, 0, 0, 10 - duty / 10);
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}
async function main() {
  let grandchild = null;
  let fromGrandchild = null;
  if (withGrandchild) {
    grandchild = spawn(process.execPath, ['-e', process.env.LOADFEED_BUSY_PROGRAM, String(busyMs), '100', '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
    fromGrandchild = lines(grandchild.stdout);
    await fromGrandchild();
  }
  const commands = lines(process.stdin);
  process.stdin.on('end', () => {
    if (grandchild) grandchild.kill();
    process.exit(0);
  });
  send({ ready: true, pid: process.pid, grandchildPid: grandchild ? grandchild.pid : null });
  for (;;) {
    const command = await commands();
    if (command === 'go') {
      if (grandchild) grandchild.stdin.write('go\n');
      let cpuSeconds = burn();
      let rssBytes = process.memoryUsage().rss;
      let grandchildCpuSeconds = 0;
      if (grandchild) {
        const report = JSON.parse(await fromGrandchild());
        grandchildCpuSeconds = report.cpuSeconds;
        cpuSeconds += report.cpuSeconds;
        rssBytes += report.rssBytes;
      }
      send({ cpuSeconds, grandchildCpuSeconds, rssBytes });
    } else if (command === 'end-grandchild' && grandchild) {
      const exited = new Promise((resolve) => grandchild.once('exit', resolve));
      grandchild.stdin.end();
      await exited;
      grandchild = null;
      send({ grandchildExited: true });
    }
  }
}
main();
`;

export interface BusyReport {
  /** CPU seconds the child (plus its grandchild, when it has one) used while busy. */
  readonly cpuSeconds: number;
  /** The grandchild's share of cpuSeconds (0 without one). */
  readonly grandchildCpuSeconds: number;
  /** Resident memory of the child (plus grandchild) right after, bytes. */
  readonly rssBytes: number;
}

export interface BusyChild {
  readonly pid: number;
  readonly grandchildPid: number | null;
  /** Burns CPU now; resolves with the report once the busy period is over (the processes stay alive). */
  run(): Promise<BusyReport>;
  /** Ends the grandchild only, and resolves once it has exited. */
  endGrandchild(): Promise<void>;
  /** Ends the child (and its grandchild) and resolves once the child has exited. */
  end(): Promise<void>;
}

export async function startBusyChild(busyMs: number, dutyPercent: number, withGrandchild: boolean): Promise<BusyChild> {
  const child = spawn(process.execPath, ['-e', PROGRAM, String(busyMs), String(dutyPercent), withGrandchild ? '1' : '0'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, LOADFEED_BUSY_PROGRAM: PROGRAM },
  });
  const replies = readline.createInterface({ input: child.stdout });
  const next = async (): Promise<Record<string, unknown>> => {
    const [line] = (await once(replies, 'line')) as [string];
    return JSON.parse(line) as Record<string, unknown>;
  };
  const exited = once(child, 'exit');
  const hello = await next();
  return {
    pid: hello['pid'] as number,
    grandchildPid: hello['grandchildPid'] as number | null,
    run: async () => {
      const reply = next();
      child.stdin.write('go\n');
      return (await reply) as unknown as BusyReport;
    },
    endGrandchild: async () => {
      const reply = next();
      child.stdin.write('end-grandchild\n');
      await reply;
    },
    end: async () => {
      if (child.exitCode === null && child.signalCode === null) child.stdin.end();
      await exited;
    },
  };
}
