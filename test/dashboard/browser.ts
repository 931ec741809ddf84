// Headless Chromium for the dashboard tests: Debian's `chromium` driven by
// playwright-core (which downloads no browser of its own), with a fresh
// profile per test. Gated like the real engines: where Chromium is missing
// the tests are registered as skipped, and LOADFEED_REQUIRE_ENGINES=1 (CI)
// makes that a failure.
import type { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { findExecutable, realEngineGate, type Prerequisite } from '../helpers/real-engine.js';

/** LOADFEED_CHROMIUM overrides where the browser is. */
export const CHROMIUM_PATH = process.env['LOADFEED_CHROMIUM'] ?? findExecutable('chromium') ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const CHROMIUM: Prerequisite = {
  what: 'chromium',
  howTo: 'install it: apt-get install -y --no-install-recommends chromium (or set LOADFEED_CHROMIUM to a Chromium binary)',
  probe: () => {
    const r = spawnSync(CHROMIUM_PATH, ['--version'], { encoding: 'utf8', timeout: 20_000 });
    if (r.error !== undefined) return `${CHROMIUM_PATH}: ${r.error.message}`;
    return r.status === 0 && /Chromium|Chrome/.test(r.stdout) ? undefined : `${CHROMIUM_PATH} --version: exit ${r.status ?? r.signal}`;
  },
};

export const browserGate = realEngineGate('dashboard (headless Chromium)', [CHROMIUM]);

/** A browser with a fresh profile, closed (and its profile removed) when the test ends. */
export async function openBrowser(t: ExecutionContext): Promise<BrowserContext> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'lf-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 1000 },
    deviceScaleFactor: 1,
  });
  t.teardown(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return context;
}
