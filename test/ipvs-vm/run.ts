// Runs one command inside a throw-away QEMU guest that boots Debian's kernel
// (which has IPVS), with the host's / shared read-only under a tmpfs overlay,
// so every host program and the project's files are at the same paths there.
// Returns the command's stdout, stderr and exit status, and the guest console.
//
// The guest has no network card; only its own loopback. It runs as root.
// KVM is used only with a hardware KVM module (kvm_intel / kvm_amd): other
// /dev/kvm providers (the PVM hypervisor of some sandboxes) cannot boot a
// stock kernel, so everything else runs under TCG (software emulation), where
// a boot costs about 3 s and each Node start about 1.5 s.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InitramfsTree } from './cpio.js';
import { guestPrerequisites, REPO_ROOT, vmlinuxOf } from './kernel.js';
import { GUEST_MODULES, moduleLoadOrder } from './modules.js';
import { initScript, jobScript, stage2Script } from './guest-init.js';
import { preloadPackages, type PreloadSummary } from './preload.js';

export const DEFAULT_GUEST_TIMEOUT_MS = 600_000;
export const DEFAULT_GUEST_MEMORY = '1G';
export const DEFAULT_GUEST_CPUS = 2;
/** Where the extracted vmlinux of an installed kernel is kept. */
export const DEFAULT_CACHE_DIR = path.join(REPO_ROOT, '.cache', 'ipvs-vm');

export interface GuestRunOptions {
  /** Program and arguments; the program is looked up in the guest's PATH (the host's). */
  readonly command: readonly string[];
  /** Working directory in the guest (default: this process's). */
  readonly cwd?: string;
  /** Environment of the command, added to PATH, HOME and LANG=C.UTF-8 (nothing else is inherited). */
  readonly env?: Readonly<Record<string, string>>;
  /** npm packages (and their dependencies) to hold in guest memory; see preload.ts. */
  readonly preload?: readonly string[];
  /** The node_modules the packages come from (default: the repository's). */
  readonly nodeModules?: string;
  readonly timeoutMs?: number;
  readonly memory?: string;
  readonly cpus?: number;
  readonly accel?: 'auto' | 'kvm' | 'tcg';
}

export interface GuestRunResult {
  /** The command's exit status; null when the guest ended without one (see `failure`). */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The kernel console (ttyS0): boot messages and stage 1 failures. */
  readonly console: string;
  /** Why there is no exit status (timeout, QEMU failure, guest setup failure); null otherwise. */
  readonly failure: string | null;
  readonly durationMs: number;
  /** What was booted, for messages. */
  readonly kernel: string;
  readonly accel: 'kvm' | 'tcg';
  readonly preload: PreloadSummary | null;
}

/** Boot a guest, run `options.command` in it, power it off. Rejects only when prerequisites are missing. */
export async function runInGuest(options: GuestRunOptions): Promise<GuestRunResult> {
  const prerequisites = guestPrerequisites();
  if ('missing' in prerequisites) throw new Error(`cannot boot the IPVS guest: ${prerequisites.missing.join('; ')}`);
  const { qemu, busybox, kernel } = prerequisites;
  const started = performance.now();
  const work = mkdtempSync(path.join(tmpdir(), 'loadfeed-vm-'));
  try {
    // --- initramfs ---
    const tree = new InitramfsTree();
    tree.file('/bin/busybox', readFileSync(busybox), 0o755);
    for (const d of ['dev', 'proc', 'sys', 'mnt', 'newroot']) tree.dir(`/${d}`);
    const order = moduleLoadOrder(readFileSync(path.join(kernel.modulesDir, 'modules.dep'), 'utf8'), GUEST_MODULES);
    const moduleFiles = order.map((rel, i) => {
      if (!rel.endsWith('.ko')) throw new Error(`compressed module ${rel} is not supported (Debian 12 ships them plain)`);
      const name = `${String(i + 1).padStart(2, '0')}-${path.basename(rel)}`;
      tree.file(`/modules/${name}`, readFileSync(path.join(kernel.modulesDir, rel)));
      return name;
    });
    const nodeModules = options.nodeModules ?? path.join(REPO_ROOT, 'node_modules');
    const preload =
      options.preload !== undefined && options.preload.length > 0 ? preloadPackages(tree, nodeModules, options.preload) : null;
    tree.file(
      '/init',
      initScript({
        modules: moduleFiles,
        modulesDir: kernel.modulesDir,
        release: kernel.release,
        preloaded: preload === null ? [] : [nodeModules],
      }),
      0o755,
    );
    tree.file('/stage2', stage2Script());
    tree.file(
      '/job',
      jobScript({
        cwd: options.cwd ?? process.cwd(),
        command: options.command,
        env: {
          PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
          HOME: '/root',
          LANG: 'C.UTF-8',
          ...options.env,
        },
      }),
    );
    const initrd = path.join(work, 'initrd');
    writeFileSync(initrd, tree.archive());

    // --- boot ---
    const accel = chooseAccel(options.accel ?? accelFromEnv());
    const image = vmlinuxOf(kernel, DEFAULT_CACHE_DIR) ?? kernel.bzImage;
    const ports = ['console', 'stdout', 'stderr', 'status'].map((name) => path.join(work, name));
    const args = [
      ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
      ...['-machine', 'pc', '-smp', String(options.cpus ?? DEFAULT_GUEST_CPUS), '-m', options.memory ?? DEFAULT_GUEST_MEMORY],
      ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
      ...['-kernel', image, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 mitigations=off quiet loglevel=3'],
      // file: chardevs open with O_TRUNC: private files, read after QEMU exits.
      ...ports.flatMap((p) => ['-serial', `file:${p}`]),
      '-nic',
      'none',
      ...['-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap'],
    ];
    const timeoutMs = options.timeoutMs ?? DEFAULT_GUEST_TIMEOUT_MS;
    const exit = await runQemu(qemu, args, timeoutMs);
    const [consoleText, stdout, stderr, status] = ports.map(readIfExists);
    const digits = (status ?? '').replace(/[^0-9]/g, '');
    const exitCode = digits === '' ? null : Number(digits);
    let failure: string | null = null;
    if (exit.timedOut) failure = `the guest did not finish within ${timeoutMs / 1000} s`;
    else if (exitCode === null) failure = `the guest ended without an exit status (QEMU: ${exit.detail})`;
    else if (exitCode === 125 && /loadfeed-vm guest:/.test(consoleText ?? '')) {
      failure = (consoleText ?? '').split('\n').find((l) => l.includes('loadfeed-vm guest:')) ?? null;
    }
    return {
      exitCode: failure === null ? exitCode : null,
      stdout: stdout ?? '',
      stderr: stderr ?? '',
      console: consoleText ?? '',
      failure,
      durationMs: performance.now() - started,
      kernel: `${kernel.release} from ${kernel.root}${image === kernel.bzImage ? ' (bzImage)' : ' (vmlinux, PVH)'}`,
      accel,
      preload,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function runQemu(
  qemu: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ readonly timedOut: boolean; readonly detail: string }> {
  return new Promise((resolve) => {
    const child = spawn(qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4096);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    // Stop the guest with the test run (Ctrl-C, ava's timeout).
    const stop = (): void => {
      child.kill('SIGKILL');
    };
    process.once('exit', stop);
    child.on('error', (error) => {
      clearTimeout(timer);
      process.off('exit', stop);
      resolve({ timedOut: false, detail: error.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('exit', stop);
      resolve({ timedOut, detail: `exit ${code ?? signal}${stderr.trim() === '' ? '' : `: ${stderr.trim()}`}` });
    });
  });
}

function chooseAccel(choice: 'auto' | 'kvm' | 'tcg'): 'kvm' | 'tcg' {
  if (choice !== 'auto') return choice;
  const hardware = existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd');
  return hardware && existsSync('/dev/kvm') ? 'kvm' : 'tcg';
}

function accelFromEnv(): 'auto' | 'kvm' | 'tcg' {
  const value = process.env.LOADFEED_IPVS_VM_ACCEL;
  return value === 'kvm' || value === 'tcg' ? value : 'auto';
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
