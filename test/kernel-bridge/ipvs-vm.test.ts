// Every IPVS test that needs the real kernel (ipvs-kernel.test.ts,
// ipvs-contract.test.ts), run by ava inside ONE boot of the QEMU guest
// (test/ipvs-vm), with LOADFEED_IPVS_GUEST=1. This test passes when the
// guest's run passed; its failures are repeated in the assertion message.
//
// Needs qemu-system-x86, busybox-static, ipvsadm (apt) and Debian's kernel
// (scripts/install-ipvs-kernel.sh). Without them it is skipped, or fails
// with what to install when LOADFEED_REQUIRE_ENGINES=1 (CI).
import test from 'ava';
import path from 'node:path';
import { binary, realEngineGate, type Prerequisite } from '../helpers/real-engine.js';
import {
  findGuestKernel,
  findQemu,
  findStaticBusybox,
  INSTALL_KERNEL_HINT,
  INSTALL_PACKAGES_HINT,
  REPO_ROOT,
} from '../ipvs-vm/kernel.js';
import { runInGuest } from '../ipvs-vm/run.js';
import { summarizeTap } from '../ipvs-vm/tap.js';
import { GUEST_VARIABLE, IN_GUEST } from './ipvs-guest.js';

/** The test files that run in the guest, compiled, relative to test/. */
export const GUEST_TEST_FILES = ['build/kernel-bridge/ipvs-kernel.test.js', 'build/kernel-bridge/ipvs-contract.test.js'];
/** What the guest imports, held in its memory (test/ipvs-vm/preload.ts says why). */
const PRELOAD = ['ava', '@loadfeed/kernel-bridge', 'netlink'];
/** Seconds the whole guest run may take; about 1 minute on an idle 2-core machine under TCG. */
const GUEST_TIMEOUT_S = Number(process.env.LOADFEED_IPVS_VM_TIMEOUT ?? 600);

const missingOf = (found: string | { readonly missing: string }): string | undefined =>
  typeof found === 'string' ? undefined : found.missing;

const PREREQUISITES: readonly Prerequisite[] = [
  { what: 'qemu-system-x86_64', howTo: INSTALL_PACKAGES_HINT, probe: () => missingOf(findQemu()) },
  { what: 'static busybox', howTo: INSTALL_PACKAGES_HINT, probe: () => missingOf(findStaticBusybox()) },
  {
    what: 'Debian kernel with IPVS modules',
    howTo: INSTALL_KERNEL_HINT,
    probe: () => {
      const kernel = findGuestKernel();
      return typeof kernel === 'string' ? kernel : undefined;
    },
  },
  binary('ipvsadm', 'ipvsadm'),
];

const TITLE = 'ipvs: the real-kernel IPVS tests pass in one QEMU guest boot';

if (IN_GUEST) {
  const skip = test.skip;
  skip(`${TITLE} (this is the guest already)`, () => {});
} else {
  const gate = realEngineGate('ipvs', PREREQUISITES);
  gate.test(TITLE, async (t) => {
    t.timeout((GUEST_TIMEOUT_S + 60) * 1000);
    const result = await runInGuest({
      command: [
        process.execPath,
        path.join(REPO_ROOT, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'),
        '--config',
        'ipvs-vm/ava-guest.config.js',
        '--tap',
        '--serial',
        '--concurrency',
        '1',
        ...GUEST_TEST_FILES,
      ],
      cwd: path.join(REPO_ROOT, 'test'),
      env: { [GUEST_VARIABLE]: '1' },
      preload: PRELOAD,
      timeoutMs: GUEST_TIMEOUT_S * 1000,
    });
    const tap = summarizeTap(result.stdout);
    const seconds = (result.durationMs / 1000).toFixed(1);
    t.log(`guest: ${result.kernel}, ${result.accel}, ${seconds} s: ${tap.pass} passed, ${tap.fail} failed, ${tap.skip} skipped`);
    const tail = (text: string, lines: number): string => text.trimEnd().split('\n').slice(-lines).join('\n');
    if (result.failure !== null) {
      t.fail(
        `the guest failed: ${result.failure}\n--- console (last 30 lines)\n${tail(result.console, 30)}\n` +
          `--- stdout (last 30 lines)\n${tail(result.stdout, 30)}\n--- stderr (last 30 lines)\n${tail(result.stderr, 30)}`,
      );
      return;
    }
    t.is(
      result.exitCode,
      0,
      `ava in the guest exited with ${String(result.exitCode)}: ${tap.fail} failed\n${tap.failures.join('\n')}\n` +
        (tap.complete ? '' : `--- output ended early; stdout tail\n${tail(result.stdout, 40)}\n--- stderr tail\n${tail(result.stderr, 40)}`),
    );
    t.true(tap.complete, 'ava printed its summary');
    t.is(tap.skip, 0, `nothing is skipped in the guest (is ${GUEST_VARIABLE} passed?)`);
    t.true(tap.pass >= 30, `${tap.pass} tests ran in the guest`);
  });
}
