// Finds what the guest boots: a Debian kernel whose modules include IPVS, the
// static busybox that runs the guest's /init, and QEMU. Each lookup says what
// is missing and how to get it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listDir } from '../helpers/process.js';
import { SYSTEM_BIN_DIRS } from '@loadfeed/kernel-bridge';
import { findExecutable } from '../helpers/system-tools.js';

/** The repository root (this file is test/ipvs-vm/kernel.ts, compiled to test/build/ipvs-vm/kernel.js). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Where scripts/install-ipvs-kernel.sh unpacks kernels (gitignored). */
export const DEFAULT_KERNEL_DIR = path.join(REPO_ROOT, '.cache', 'ipvs-kernel');
/** Overrides the kernel lookup: a folder with boot/vmlinuz-<release> and lib/modules/<release>/. */
export const KERNEL_ROOT_VARIABLE = 'LOADFEED_IPVS_KERNEL_ROOT';
export const KERNEL_DIR_VARIABLE = 'LOADFEED_IPVS_KERNEL_DIR';

export const INSTALL_KERNEL_HINT = 'run scripts/install-ipvs-kernel.sh (downloads Debian\'s linux-image into .cache/ipvs-kernel, ~6 s)';
export const INSTALL_PACKAGES_HINT =
  'apt-get install -y --no-install-recommends qemu-system-x86 busybox-static ipvsadm xz-utils';

export interface GuestKernel {
  /** Folder holding boot/ and lib/modules/ ("/" for an installed kernel). */
  readonly root: string;
  /** `6.1.0-56-amd64`. */
  readonly release: string;
  /** The compressed bzImage. */
  readonly bzImage: string;
  /** lib/modules/<release>. */
  readonly modulesDir: string;
  /** The ELF vmlinux inside the bzImage, booted through PVH (faster under TCG); null if there is none. */
  readonly vmlinux: string | null;
}

/**
 * The kernel to boot: LOADFEED_IPVS_KERNEL_ROOT if set, else the newest under
 * LOADFEED_IPVS_KERNEL_DIR (default .cache/ipvs-kernel), else an installed one
 * under /boot whose modules have ip_vs. A string says why none was found.
 */
export function findGuestKernel(env: NodeJS.ProcessEnv = process.env): GuestKernel | string {
  const explicit = env[KERNEL_ROOT_VARIABLE];
  if (explicit !== undefined && explicit !== '') {
    return kernelIn(explicit) ?? `${KERNEL_ROOT_VARIABLE}=${explicit} has no boot/vmlinuz-* with ip_vs.ko and modules.dep`;
  }
  const dir = env[KERNEL_DIR_VARIABLE] || DEFAULT_KERNEL_DIR;
  const cached = listDir(dir)
    .filter((name) => !name.startsWith('.'))
    .sort(compareReleases)
    .reverse()
    .map((name) => kernelIn(path.join(dir, name)))
    .find((k) => k !== null);
  if (cached !== undefined && cached !== null) return cached;
  const installed = kernelIn('/');
  if (installed !== null) return installed;
  return `no kernel with IPVS modules in ${dir} or /boot (${INSTALL_KERNEL_HINT})`;
}

function kernelIn(root: string): GuestKernel | null {
  const releases = listDir(path.join(root, 'boot'))
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .sort(compareReleases)
    .reverse();
  for (const release of releases) {
    const modulesDir = path.join(root, 'lib', 'modules', release);
    if (!existsSync(path.join(modulesDir, 'kernel', 'net', 'netfilter', 'ipvs', 'ip_vs.ko'))) continue;
    if (!existsSync(path.join(modulesDir, 'modules.dep'))) continue;
    const vmlinux = path.join(root, 'vmlinux');
    return {
      root,
      release,
      bzImage: path.join(root, 'boot', `vmlinuz-${release}`),
      modulesDir,
      vmlinux: root !== '/' && existsSync(vmlinux) ? vmlinux : null,
    };
  }
  return null;
}

/**
 * The ELF vmlinux of `kernel`, extracting it once into `cacheDir` when the
 * kernel folder has none (an installed kernel). Null when it cannot be had
 * (no xz, no PVH entry in the kernel's config): the bzImage is booted then.
 */
export function vmlinuxOf(kernel: GuestKernel, cacheDir: string): string | null {
  if (kernel.vmlinux !== null) return kernel.vmlinux;
  const config = path.join(kernel.root, 'boot', `config-${kernel.release}`);
  if (!readText(config).includes('\nCONFIG_PVH=y')) return null;
  const target = path.join(cacheDir, `vmlinux-${kernel.release}`);
  if (existsSync(target) && statSync(target).mtimeMs >= statSync(kernel.bzImage).mtimeMs) return target;
  const image = readFileSync(kernel.bzImage);
  const start = image.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  if (start < 0) return null;
  // xz stops with an error at the bytes after the stream; the ELF magic decides.
  const xz = spawnSync(findExecutable('xz') ?? 'xz', ['-dc'], { input: image.subarray(start), maxBuffer: 512 * 1024 * 1024 });
  const elf = xz.stdout as Buffer | null;
  if (elf === null || elf.length < 4 || elf.readUInt32BE(0) !== 0x7f454c46) return null;
  mkdirSync(cacheDir, { recursive: true });
  const temporary = `${target}.${process.pid}.tmp`;
  writeFileSync(temporary, elf);
  renameSync(temporary, target);
  return target;
}

/** The system's qemu-system-x86_64, or why not. */
export function findQemu(): string | { readonly missing: string } {
  return findExecutable('qemu-system-x86_64') ?? { missing: `qemu-system-x86_64 not found in ${SYSTEM_BIN_DIRS.join(', ')} (${INSTALL_PACKAGES_HINT})` };
}

/** A statically linked busybox (busybox-static), or why not: /init runs before any libc exists. */
export function findStaticBusybox(): string | { readonly missing: string } {
  const candidate = findExecutable('busybox');
  if (candidate === undefined) return { missing: `busybox not found in ${SYSTEM_BIN_DIRS.join(', ')} (${INSTALL_PACKAGES_HINT})` };
  if (isStaticElf(readFileSync(candidate))) return candidate;
  return { missing: `${candidate} is dynamically linked (${INSTALL_PACKAGES_HINT})` };
}

/** True for a 64-bit little-endian ELF without a PT_INTERP program header. */
export function isStaticElf(image: Buffer): boolean {
  if (image.length < 64 || image.readUInt32BE(0) !== 0x7f454c46 || image[4] !== 2 || image[5] !== 1) return false;
  const phoff = Number(image.readBigUInt64LE(0x20));
  const phentsize = image.readUInt16LE(0x36);
  const phnum = image.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > image.length) return false;
    if (image.readUInt32LE(at) === 3) return false; // PT_INTERP
  }
  return true;
}

/** Everything the guest needs, or the list of what is missing with how to install it. */
export function guestPrerequisites(
  env: NodeJS.ProcessEnv = process.env,
): { readonly qemu: string; readonly busybox: string; readonly kernel: GuestKernel } | { readonly missing: string[] } {
  const qemu = findQemu();
  const busybox = findStaticBusybox();
  const kernel = findGuestKernel(env);
  const missing = [
    typeof qemu === 'string' ? null : qemu.missing,
    typeof busybox === 'string' ? null : busybox.missing,
    typeof kernel === 'string' ? kernel : null,
  ].filter((m): m is string => m !== null);
  if (missing.length > 0 || typeof qemu !== 'string' || typeof busybox !== 'string' || typeof kernel === 'string') {
    return { missing };
  }
  return { qemu, busybox, kernel };
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** `6.1.0-56-amd64` before `6.1.0-100-amd64`: numeric runs compare as numbers. */
export function compareReleases(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
