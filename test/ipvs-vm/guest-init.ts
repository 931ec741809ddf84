// The guest's two boot stages as shell text (busybox sh), and the job file.
// Pure: run.ts puts them into the initramfs.
//
// Stage 1 (/init, PID 1 in the initramfs): load the modules, mount the host's
// / read-only over 9p with a tmpfs overlay on top, put preloaded packages on
// tmpfs over their folders, then switch_root. Stage 2 (PID 1 in the overlay
// root): run the job with stdout/stderr on pipes copied to serial ports 1 and
// 2, wait for the ports to drain, write the exit status to port 3, power off.
// Serial port 0 is the console (kernel log), shown on failure only.

/** Where the guest keeps its own files, inside the overlay root. */
export const GUEST_RUN_DIR = '/run/loadfeed-vm';

/** `'text'` for the shell, whatever the text holds. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export interface JobSpec {
  readonly cwd: string;
  readonly command: readonly string[];
  /** The job's whole environment (nothing else is inherited). */
  readonly env: Readonly<Record<string, string>>;
}

/** The job, run by busybox sh in stage 2. */
export function jobScript(job: JobSpec): string {
  const lines = ['# written by test/ipvs-vm: the job to run in the guest'];
  for (const [name, value] of Object.entries(job.env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`environment variable name "${name}" cannot be passed`);
    lines.push(`export ${name}=${shellQuote(value)}`);
  }
  lines.push(`cd ${shellQuote(job.cwd)} || exit 125`);
  lines.push(`exec ${job.command.map(shellQuote).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

export interface InitSpec {
  /** Module files in load order, as named in the initramfs' /modules. */
  readonly modules: readonly string[];
  /** lib/modules/<release> of the booted kernel, as a host path. */
  readonly modulesDir: string;
  readonly release: string;
  /** Host folders whose preloaded copy (under /preload in the initramfs) is mounted over them. */
  readonly preloaded: readonly string[];
}

/** Stage 1. Any failure writes 125 as the status and powers off, so the host never waits for a timeout. */
export function initScript(spec: InitSpec): string {
  const q = shellQuote;
  const insmods = spec.modules
    .map((m) => `insmod /modules/${m} || fail "insmod ${m} failed"`)
    .join('\n');
  const guestModules = `/lib/modules/${spec.release}`;
  const preload = spec.preloaded
    .map(
      (dir) =>
        `mkdir -p /newroot${dir} && mount -t tmpfs -o mode=0755 tmpfs /newroot${dir} && cp -a /preload${dir}/. /newroot${dir}/ || fail ${q(`preload ${dir} failed`)}`,
    )
    .join('\n');
  return `#!/bin/busybox sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "loadfeed-vm guest: $*" > /dev/ttyS0; echo 125 > /dev/ttyS3; stty -F /dev/ttyS3 raw; poweroff -f; }
${insmods}
mkdir -p /mnt/lower /mnt/upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /mnt/lower || fail "9p mount failed"
mount -t tmpfs -o mode=0755 tmpfs /mnt/upper
mkdir -p /mnt/upper/data /mnt/upper/work
mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/upper/data,workdir=/mnt/upper/work overlay /newroot || fail "overlay mount failed"
# The booted kernel's modules at their usual place, for modprobe on demand.
if [ ${q(spec.modulesDir)} != ${q(guestModules)} ]; then
  mkdir -p /newroot${guestModules}
  mount --bind /newroot${spec.modulesDir} /newroot${guestModules} || fail "cannot bind the kernel modules"
fi
${preload}
mkdir -p /newroot${GUEST_RUN_DIR}
cp /bin/busybox /newroot${GUEST_RUN_DIR}/busybox
ln -s busybox /newroot${GUEST_RUN_DIR}/modprobe
cp /job /stage2 /newroot${GUEST_RUN_DIR}/
for d in proc sys dev; do mkdir -p /newroot/$d; mount --move /$d /newroot/$d; done
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
exec switch_root /newroot ${GUEST_RUN_DIR}/busybox sh ${GUEST_RUN_DIR}/stage2
`;
}

/** Stage 2. */
export function stage2Script(): string {
  const dir = GUEST_RUN_DIR;
  return `bb=${dir}/busybox
# After switch_root the kernel's module helper runs in this root: busybox's modprobe.
echo ${dir}/modprobe > /proc/sys/kernel/modprobe
$bb hostname loadfeed-vm
$bb ip link set lo up
# Serial ports are ttys: raw, or "\\n" becomes "\\r\\n".
for t in 1 2 3; do $bb stty -F /dev/ttyS$t raw -echo; done
# The job writes into pipes (isatty() false, as under a test runner on the host).
$bb mkfifo ${dir}/stdout ${dir}/stderr
$bb cat ${dir}/stdout > /dev/ttyS1 & c1=$!
$bb cat ${dir}/stderr > /dev/ttyS2 & c2=$!
$bb sh ${dir}/job < /dev/null > ${dir}/stdout 2> ${dir}/stderr
rc=$?
# Background processes the job left may hold the pipes open: 2 s, then stop the copies.
( $bb sleep 2; kill $c1 $c2 2> /dev/null ) &
wait $c1 $c2
# tcsetattr(TCSADRAIN) waits until the ports have sent everything.
$bb stty -F /dev/ttyS1 raw; $bb stty -F /dev/ttyS2 raw
echo "$rc" > /dev/ttyS3
$bb stty -F /dev/ttyS3 raw
$bb poweroff -f
`;
}
