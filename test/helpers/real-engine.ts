// Gating for tests against real engines (HAProxy, nftables, IPVS): they run
// where their prerequisites exist. Where something is missing they are
// registered as skipped, with the reason in the title so the summary counts
// them; with LOADFEED_REQUIRE_ENGINES=1 (CI sets it) they fail instead,
// saying what is missing and how to install it, so CI cannot go green by
// skipping the real engines.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { SYSTEM_BIN_DIRS } from '@loadfeed/kernel-bridge';
import { findExecutable } from './system-tools.js';

export { findExecutable };

export const REQUIRE_ENGINES_VARIABLE = 'LOADFEED_REQUIRE_ENGINES';
/** Probes (spawned commands) give up after this long; a hang is a missing prerequisite. */
const PROBE_TIMEOUT_MS = 10_000;

export interface Prerequisite {
  /** What must exist, short, as in "no <what>": `nft binary`, `root`. */
  readonly what: string;
  /** How to provide it: `apt-get install -y --no-install-recommends nftables`. */
  readonly howTo: string;
  /** Undefined when present, else why not (one line). Called once, while tests are registered. */
  probe(): string | undefined;
}

export type TestBody = (t: ExecutionContext) => Promise<void> | void;
export type Register = (title: string, body: TestBody) => void;

export interface RealEngineGate {
  /** Register a test: runs, is skipped, or fails with what is missing (see the file comment). */
  readonly test: Register;
  /** The same for tests that must not run concurrently with the others of their file. */
  readonly serial: Register;
  /** Undefined when every prerequisite is present; else what is missing and how to install it. */
  readonly missing: string | undefined;
}

/**
 * A gate for the tests of one engine (`haproxy`, `nftables`, …). Prerequisites
 * are probed once, now; all of them, so the message lists everything missing.
 */
export function realEngineGate(
  engine: string,
  prerequisites: readonly Prerequisite[],
  env: NodeJS.ProcessEnv = process.env,
): RealEngineGate {
  const absent = prerequisites.flatMap((p) => {
    const why = p.probe();
    return why === undefined ? [] : [{ prerequisite: p, why }];
  });
  if (absent.length === 0) {
    return {
      test: (title, body) => test(title, body),
      serial: (title, body) => test.serial(title, body),
      missing: undefined,
    };
  }

  const missing = absent
    .map(({ prerequisite, why }) => `${prerequisite.what} (${why}; ${prerequisite.howTo})`)
    .join('; ');
  if (env[REQUIRE_ENGINES_VARIABLE] === '1') {
    const message =
      `the ${engine} engine tests cannot run here and ${REQUIRE_ENGINES_VARIABLE}=1 requires them: ` +
      `missing ${missing}`;
    const failing: Register = (title, _body) =>
      test(title, (t) => {
        t.fail(message);
      });
    return { test: failing, serial: failing, missing };
  }
  const reason = absent.map(({ prerequisite }) => prerequisite.what).join(', ');
  const skipped = test.skip;
  const skip: Register = (title, body) =>
    skipped(`${title} (skipped: ${engine}: no ${reason}; ${REQUIRE_ENGINES_VARIABLE}=1 makes this a failure)`, body);
  return { test: skip, serial: skip, missing };
}

/** An executable named `name` in the system directories (findExecutable). */
export function binary(name: string, debianPackage: string): Prerequisite {
  return {
    what: `${name} binary`,
    howTo: `install it: apt-get install -y --no-install-recommends ${debianPackage}`,
    probe: () => (findExecutable(name) === undefined ? `not found in ${SYSTEM_BIN_DIRS.join(', ')}` : undefined),
  };
}

export const ROOT: Prerequisite = {
  what: 'root',
  howTo: 'run the tests as root (CI does)',
  probe: () => (process.getuid?.() === 0 ? undefined : `running as uid ${process.getuid?.() ?? 'unknown'}`),
};

/**
 * Network namespaces this process can create, with nf_tables usable inside
 * them: creates `lf-probe-<random>`, lists its (empty) ruleset and deletes it.
 */
export const NETNS_WITH_NFTABLES: Prerequisite = {
  what: 'network namespaces with nftables',
  howTo:
    'needs root, iproute2 and nftables (apt-get install -y --no-install-recommends iproute2 nftables) ' +
    'and a kernel with CONFIG_NET_NS and nf_tables (modprobe nf_tables if it is a module)',
  probe: () => {
    const name = `lf-probe-${randomBytes(4).toString('hex')}`;
    const add = run('ip', ['netns', 'add', name]);
    if (add !== undefined) return `ip netns add: ${add}`;
    try {
      const nft = findExecutable('nft');
      if (nft === undefined) return 'no nft binary';
      return prefixed('nft list ruleset', run('ip', ['netns', 'exec', name, nft, 'list', 'ruleset']));
    } finally {
      run('ip', ['netns', 'delete', name]);
    }
  },
};

/** Undefined when the command exits 0, else its error in one line. */
function run(command: string, args: readonly string[]): string | undefined {
  const result = spawnSync(findExecutable(command) ?? command, args, { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS });
  if (result.error !== undefined) return result.error.message;
  if (result.status === 0) return undefined;
  const stderr = result.stderr.trim().split('\n')[0] ?? '';
  return `exit ${result.status ?? result.signal}${stderr.length > 0 ? `: ${stderr}` : ''}`;
}

function prefixed(what: string, error: string | undefined): string | undefined {
  return error === undefined ? undefined : `${what}: ${error}`;
}
