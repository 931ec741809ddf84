// Hot reload against real files: a changed file is swapped in, a bad one is
// refused and the last good policy stays in force, SIGHUP forces a re-read.
import test from 'ava';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { compilePolicy, defaultEngines, defaultStrategies, Poller, PolicyReloader, type ReloadOutcome } from '@loadfeed/poller';

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
  reloader.start();
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
