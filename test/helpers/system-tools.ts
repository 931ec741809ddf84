// The system's programs (ip, nft, haproxy, …) for tests and benches: looked up
// only where the engines look, kernel-bridge's SYSTEM_BIN_DIRS, never on PATH.
// Under npm, PATH starts with node_modules/.bin, which can hold namesakes
// (@vercel/nft installs an `nft` that exits 0 whatever it is asked): a test
// taking a tool from there ran against the wrong program instead of skipping.
// Kept apart from real-engine.ts, which imports ava, so benches can use it.
import { systemTool } from '@loadfeed/kernel-bridge';

/** The absolute path of the system's executable `name`, or undefined. */
export function findExecutable(name: string): string | undefined {
  return systemTool(name) ?? undefined;
}
