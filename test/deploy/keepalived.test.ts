// The keepalived configuration shipped for a director pair: keepalived's own
// config test accepts both files (and refuses a broken one), and the two
// directors agree on everything but their identity and priority.
// test/ha/director-pair.test.ts runs them for real.
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { binary, findExecutable, realEngineGate } from '../helpers/real-engine.js';
import { DEPLOY_DIR, runCommand } from './repo.js';

const DIR = path.join(DEPLOY_DIR, 'examples', 'keepalived');
const FILES = ['keepalived-director1.conf', 'keepalived-director2.conf'];
const gate = realEngineGate('keepalived configuration', [binary('keepalived', 'keepalived')]);

/** keepalived --config-test: on success keepalived 2.2 ends by signalling itself (SIGTERM), printing nothing. */
async function configTest(file: string): Promise<{ ok: boolean; output: string }> {
  const r = await runCommand(findExecutable('keepalived') ?? 'keepalived', ['--config-test', '--use-file', file], { timeoutMs: 30_000 });
  const output = (r.stdout + r.stderr).trim();
  return { ok: (r.code === 0 || r.signal === 'SIGTERM') && output === '', output };
}

gate.test('keepalived --config-test accepts both directors\' files and refuses a broken one', async (t) => {
  for (const f of FILES) {
    const r = await configTest(path.join(DIR, f));
    t.true(r.ok, `${f}: ${r.output}`);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lf-keepalived-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const broken = path.join(dir, 'broken.conf');
  await writeFile(broken, (await readFile(path.join(DIR, FILES[0] ?? ''), 'utf8')).replace('virtual_router_id 51', 'virtual_router_id 300'));
  const r = await configTest(broken);
  t.false(r.ok);
  t.regex(r.output, /300/);
});

test('the two directors differ only in router_id and priority; health check on the status server', async (t) => {
  const [one, two] = await Promise.all(FILES.map((f) => readFile(path.join(DIR, f), 'utf8')));
  const strip = (s: string): string[] =>
    s.split('\n').filter((l) => !l.trim().startsWith('#') && !/\b(router_id|priority)\b/.test(l));
  t.deepEqual(strip(one ?? ''), strip(two ?? ''));
  t.regex(one ?? '', /priority 150/);
  t.regex(two ?? '', /priority 100/);
  for (const s of [one ?? '', two ?? '']) {
    t.regex(s, /script "\/usr\/bin\/curl [^"]*http:\/\/127\.0\.0\.1:7416\/healthz"/);
    t.regex(s, /track_script \{\s*chk_loadfeed_poller\s*\}/);
    t.regex(s, /nopreempt/);
    t.regex(s, /vrrp_version 3/);
  }
});
