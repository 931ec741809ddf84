// Hot reload against real files: a changed file is swapped in, a bad one is
// refused and the last good policy stays in force, SIGHUP forces a re-read.
import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { compilePolicy, defaultEngines, defaultStrategies, Poller, PolicyReloader, RELOAD_DEBOUNCE_MS, type ReloadOutcome } from '@loadfeed/poller';
import type { ExecutionContext } from 'ava';

const policyText = (max: number): string => `apiVersion: loadfeed/v1
services:
  - name: web
    engine: memory
    address: tcp 10.0.0.1:80
    weights: { max: ${max} }
    servers:
      - { node: a, address: "10.0.0.2:80" }
`;

test.serial('file changes reload the policy; a bad file is refused and the last good one stays', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-reload-'));
  const file = path.join(dir, 'policy.yaml');
  writeFileSync(file, policyText(100));
  const engines = defaultEngines();
  const poller = new Poller({ listen: '127.0.0.1:0', policy: compilePolicy(policyText(100), file, engines.limits()), engines, strategies: defaultStrategies(), logger: pino({ level: 'silent' }) });
  await poller.start();
  t.teardown(() => poller.stop());

  const outcomes: ReloadOutcome[] = [];
  let wake: (() => void) | null = null;
  const reloader = new PolicyReloader(file, readFileSync(file, 'utf8'), engines.limits(), (o) => {
    if (o.ok) poller.setPolicy(o.policy);
    else poller.refusePolicy(o.problems);
    outcomes.push(o);
    wake?.();
  });
  await reloader.start();
  t.teardown(() => reloader.stop());
  const next = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reload within 5 s')), 5000);
      wake = () => {
        clearTimeout(timer);
        wake = null;
        resolve();
      };
    });

  let reloaded = next();
  writeFileSync(file, policyText(50));
  await reloaded;
  t.true(outcomes.at(-1)?.ok);
  t.is(poller.snapshot().health, 'ok');

  // Editors and ConfigMaps replace the file by rename: seen too.
  reloaded = next();
  writeFileSync(path.join(dir, 'tmp'), 'apiVersion: loadfeed/v1\nservices: []\n');
  renameSync(path.join(dir, 'tmp'), file);
  await reloaded;
  const refused = outcomes.at(-1);
  t.false(refused?.ok);
  const snap = poller.snapshot();
  t.is(snap.health, 'degraded');
  t.deepEqual(snap.policy.refused.map((p) => `${p.line}: ${p.path}: ${p.message}`), ['2: services: needs at least one service']);
  t.deepEqual(snap.services.map((s) => s.name), ['web'], 'the last good policy is still in force');

  // SIGHUP re-reads even an unchanged file.
  writeFileSync(file, policyText(70));
  await next();
  reloaded = next();
  process.kill(process.pid, 'SIGHUP');
  await reloaded;
  t.true(outcomes.at(-1)?.ok);
  t.is(poller.snapshot().health, 'ok');
  t.deepEqual(poller.snapshot().policy.refused, []);
});

/** A reloader on `file` whose outcomes the test awaits one by one. */
async function watching(t: ExecutionContext, file: string): Promise<{ next(): Promise<ReloadOutcome> }> {
  const waiting: ((o: ReloadOutcome) => void)[] = [];
  const reloader = new PolicyReloader(file, readFileSync(file, 'utf8'), defaultEngines().limits(), (o) => waiting.shift()?.(o));
  await reloader.start();
  t.teardown(() => reloader.stop());
  return {
    next: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reload within 5 s')), 5000);
        waiting.push((o) => {
          clearTimeout(timer);
          resolve(o);
        });
      }),
  };
}

const maxOf = (o: ReloadOutcome): number | undefined => (o.ok ? o.policy.services[0]?.weights.max : undefined);

test.serial('a file written beside the policy all the time does not hold its reload back', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-reload-'));
  const file = path.join(dir, 'policy.yaml');
  writeFileSync(file, policyText(100));
  const r = await watching(t, file);
  // A trace or log beside it, written more often than the debounce.
  let n = 0;
  const writer = setInterval(() => writeFileSync(path.join(dir, 'trace.jsonl'), `${n++}\n`, { flag: 'a' }), RELOAD_DEBOUNCE_MS / 4);
  t.teardown(() => clearInterval(writer));
  const reloaded = r.next();
  writeFileSync(file, policyText(60));
  t.is(maxOf(await reloaded), 60);
  t.true(n > 0);
});

test.serial('a Kubernetes ConfigMap update (the ..data symlink swapped) reloads the policy', async (t) => {
  // The layout the kubelet makes: policy.yaml → ..data/policy.yaml, ..data → ..<timestamp>/.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-configmap-'));
  const generation = (name: string, max: number): void => {
    mkdirSync(path.join(dir, name));
    writeFileSync(path.join(dir, name, 'policy.yaml'), policyText(max));
  };
  generation('..2026_01_01_00_00_00.1', 100);
  symlinkSync('..2026_01_01_00_00_00.1', path.join(dir, '..data'));
  symlinkSync('..data/policy.yaml', path.join(dir, 'policy.yaml'));
  const r = await watching(t, path.join(dir, 'policy.yaml'));
  for (const [i, max] of [40, 30].entries()) {
    const reloaded = r.next();
    const name = `..2026_01_01_00_00_0${i + 1}.1`;
    generation(name, max);
    symlinkSync(name, path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    t.is(maxOf(await reloaded), max);
    rmSync(path.join(dir, i === 0 ? '..2026_01_01_00_00_00.1' : '..2026_01_01_00_00_01.1'), { recursive: true });
  }
});

test.serial('a policy that is a symlink to a file elsewhere reloads when that file is edited', async (t) => {
  const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-target-'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-link-'));
  writeFileSync(path.join(elsewhere, 'real.yaml'), policyText(100));
  symlinkSync(path.join(elsewhere, 'real.yaml'), path.join(dir, 'policy.yaml'));
  const r = await watching(t, path.join(dir, 'policy.yaml'));
  const reloaded = r.next();
  writeFileSync(path.join(elsewhere, 'real.yaml'), policyText(20));
  t.is(maxOf(await reloaded), 20);
});
