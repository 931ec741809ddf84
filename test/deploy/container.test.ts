// The container images in deploy/container/. There is no Docker engine here
// (nor in CI), so no image is built. Instead: (1) the Dockerfiles are parsed and
// held to their invariants (multi-stage, pinned base, lockfile, production
// dependencies only, numeric non-root user, exec-form entrypoint); (2) the
// runtime stage is replayed in a scratch directory standing for the image's
// root: its COPY lines copy from the repository (for `--from=build`, the build
// `npm test` just made, which is what the build stage's `npm ci && npm run
// build` makes), its RUN lines run, and then the ENTRYPOINT runs, as uid 1000
// over a tree nobody may write to, as in a read-only container.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { access, chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findExecutable } from '../helpers/real-engine.js';
import { DEPLOY_DIR, REPO_ROOT, runCommand } from './repo.js';

const CONTAINER_DIR = path.join(DEPLOY_DIR, 'container');
const IMAGES = ['agent', 'poller'] as const;
const RUNTIME_UID = 1000;
const DEV_ONLY = ['typescript', 'ava', 'eslint', 'fast-check', 'protobufjs-cli', 'madge', '@ava', '@eslint'];

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}
interface Stage {
  readonly from: string;
  readonly name: string | null;
  readonly instructions: Instruction[];
}

/** Dockerfile → ARG defaults before the first FROM, and the stages (continuations joined, comments dropped). */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const logical: { text: string; line: number }[] = [];
  let current = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (current === '' && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (current !== '' && trimmed.startsWith('#')) return;
    if (current === '') start = i + 1;
    if (trimmed.endsWith('\\')) {
      current += `${trimmed.slice(0, -1)} `;
      return;
    }
    logical.push({ text: current + trimmed, line: start });
    current = '';
  });
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const { text: l, line } of logical) {
    const m = /^(\w+)\s+(.*)$/.exec(l);
    if (m?.[1] === undefined || m[2] === undefined) throw new Error(`line ${line}: cannot parse "${l}"`);
    const op = m[1].toUpperCase();
    const rest = m[2].trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (f?.[1] === undefined) throw new Error(`line ${line}: bad FROM`);
      stages.push({ from: f[1], name: f[2] ?? null, instructions: [] });
    } else if (stages.length === 0) {
      if (op !== 'ARG') throw new Error(`line ${line}: ${op} before FROM`);
      const a = /^(\w+)=(\S+)$/.exec(rest);
      if (a?.[1] !== undefined && a[2] !== undefined) args.set(a[1], a[2]);
    } else {
      stages.at(-1)?.instructions.push({ op, args: rest, line });
    }
  }
  return { args, stages };
}

const readDockerfile = async (image: string) => {
  const text = await readFile(path.join(CONTAINER_DIR, `${image}.Dockerfile`), 'utf8');
  return { text, ...parseDockerfile(text) };
};
const resolveArgs = (s: string, args: Map<string, string>): string => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a?: string, b?: string) => args.get(a ?? b ?? '') ?? '');
const ops = (stage: Stage | undefined, op: string): string[] => (stage?.instructions ?? []).filter((i) => i.op === op).map((i) => i.args);

for (const image of IMAGES) {
  test(`${image}.Dockerfile: multi-stage, pinned base, lockfile, production dependencies only, numeric non-root user`, async (t) => {
    const { text, args, stages } = await readDockerfile(image);
    t.true(stages.length >= 2, 'multi-stage');
    const build = stages.find((s) => s.name === 'build');
    const runtime = stages.at(-1);
    t.truthy(build, 'a stage named build');
    t.is(runtime?.name, 'runtime', 'the last stage is the runtime image');

    for (const s of stages) {
      const base = resolveArgs(s.from, args);
      t.regex(base, /^node:20[.\d]*-bookworm-slim(@sha256:[0-9a-f]{64})?$/, `base image ${base}: Node 20 on Debian 12, a version tag, never latest`);
      t.notRegex(base, /:latest\b/);
    }

    const buildRuns = ops(build, 'RUN').join('\n');
    t.regex(buildRuns, /npm ci\b/);
    t.regex(buildRuns, /npm run build\b/);
    t.true(ops(build, 'COPY').some((c) => /package-lock\.json/.test(c)), 'build stage copies the lockfile');

    const runtimeRuns = ops(runtime, 'RUN');
    t.true(runtimeRuns.some((r) => /npm ci\b.*--omit=dev/.test(r)), 'runtime installs with npm ci --omit=dev');
    t.false(runtimeRuns.some((r) => /npm (install|i)\b/.test(r)), 'runtime never runs npm install (lockfile only)');
    t.true(ops(runtime, 'COPY').some((c) => /package-lock\.json/.test(c)), 'runtime stage copies the lockfile');
    t.false(ops(runtime, 'COPY').some((c) => /^\.\s/.test(c) || /\s\.\s+\.$/.test(c)), 'runtime does not copy the whole context');
    for (const c of ops(runtime, 'COPY').filter((x) => x.startsWith('--from='))) {
      t.regex(c, /^--from=build\s+\/src\/\S+\s+\S+$/, `COPY ${c}`);
    }

    const users = ops(runtime, 'USER');
    t.is(users.length, 1, 'one USER in the runtime stage');
    const user = users[0] ?? '';
    t.regex(user, /^\d+(:\d+)?$/, 'numeric, so Kubernetes runAsNonRoot can verify it');
    t.not(Number(user.split(':')[0]), 0, 'not root');
    t.true(ops(runtime, 'ENV').some((e) => /NODE_ENV=production/.test(e)));
    const entrypoint = JSON.parse(ops(runtime, 'ENTRYPOINT')[0] ?? 'null') as unknown;
    t.true(Array.isArray(entrypoint) && entrypoint[0] === 'node', 'exec-form ENTRYPOINT running node');

    const ignore = await readFile(path.join(CONTAINER_DIR, `${image}.Dockerfile.dockerignore`), 'utf8');
    for (const p of ['**/node_modules', '**/build', '.git']) t.true(ignore.split('\n').includes(p), `.dockerignore has ${p}`);
    if (image === 'agent') {
      t.regex(text, /-v \/proc:\/host\/proc:ro/, 'documents the host /proc mount');
      t.regex(text, /--proc-root \/host\/proc/, 'documents --proc-root');
      t.regex(text, /--sys-root \/host\/sys/, 'documents --sys-root');
      t.regex(text, /--network host/, 'documents the host network namespace');
    }
  });

  test.serial(`${image}.Dockerfile: the runtime stage, replayed in a scratch root, runs as uid ${RUNTIME_UID} on a read-only tree`, async (t) => {
    t.timeout(300_000);
    const { args, stages } = await readDockerfile(image);
    const runtime = stages.at(-1);
    const root = await mkdtemp(path.join(os.tmpdir(), `lf-image-${image}-`));
    await chmod(root, 0o755); // an image's root: uid 1000 may read and traverse it
    t.teardown(async () => {
      await chmod(root, 0o700).catch(() => undefined);
      spawnSync('chmod', ['-R', 'u+w', root]);
      await rm(root, { recursive: true, force: true });
    });
    const inRoot = (p: string): string => path.join(root, p);
    let workdir = '/';
    const env: Record<string, string> = {};
    let entrypoint: string[] = [];
    for (const ins of runtime?.instructions ?? []) {
      const a = resolveArgs(ins.args, args);
      switch (ins.op) {
        case 'WORKDIR':
          workdir = path.posix.resolve(workdir, a);
          await mkdir(inRoot(workdir), { recursive: true });
          break;
        case 'ENV':
          for (const m of a.matchAll(/(\w+)=(\S+)/g)) if (m[1] !== undefined && m[2] !== undefined) env[m[1]] = m[2];
          break;
        case 'COPY': {
          // Docker's rules: into a directory when the destination ends in / or
          // there are several sources; a directory source copies its contents.
          const words = a.split(/\s+/);
          const from = words[0]?.startsWith('--from=') ? words.shift() : undefined;
          const destRaw = words.pop() ?? '.';
          const dest = path.posix.resolve(workdir, destRaw);
          const intoDir = destRaw.endsWith('/') || words.length > 1;
          for (const src of words) {
            // The build stage's /src is the repository after `npm ci && npm run build`.
            const source = from === undefined ? path.join(REPO_ROOT, src) : path.join(REPO_ROOT, path.posix.relative('/src', src));
            const isDir = (await stat(source)).isDirectory();
            const target = isDir || !intoDir ? inRoot(dest) : path.join(inRoot(dest), path.basename(src));
            await mkdir(isDir ? target : path.dirname(target), { recursive: true });
            await cp(source, target, { recursive: true });
          }
          break;
        }
        case 'RUN': {
          const command = a.replace(/--mount=\S+\s*/g, '');
          // Offline-first: the scratch install reuses npm's cache like a BuildKit cache mount would.
          const r = await runCommand('sh', ['-c', command.replace(/\bnpm ci\b/, 'npm ci --prefer-offline')], {
            cwd: inRoot(workdir),
            env: { ...cleanEnv(), ...env },
            timeoutMs: 240_000,
          });
          t.is(r.code, 0, `RUN ${command}\n${r.stderr}`);
          break;
        }
        case 'ENTRYPOINT':
          entrypoint = JSON.parse(a) as string[];
          break;
        default:
          break;
      }
    }
    // Dependencies: production only; @loadfeed/* are the workspace links the image carries.
    const modules = await readdir(inRoot('/app/node_modules'));
    t.deepEqual(modules.filter((m) => DEV_ONLY.includes(m)), [], 'development-only packages in the image');
    const scoped = (await readdir(inRoot('/app/node_modules/@loadfeed'))).sort();
    t.deepEqual(scoped, image === 'agent' ? ['agent', 'proto'] : ['kernel-bridge', 'poller', 'proto']);

    // Now as the image runs it: uid 1000, nothing writable.
    spawnSync('chmod', ['-R', 'a-w', root]);
    const [command, ...rest] = entrypoint.map((w) => (w.startsWith('/app/') ? inRoot(w) : w));
    const asUser = process.getuid?.() === 0 && findExecutable('setpriv') !== undefined;
    const run = (extra: string[]) =>
      runCommand(
        asUser ? (findExecutable('setpriv') ?? 'setpriv') : (command === 'node' ? process.execPath : (command ?? '')),
        asUser
          ? ['--reuid', String(RUNTIME_UID), '--regid', String(RUNTIME_UID), '--clear-groups', command === 'node' ? process.execPath : (command ?? ''), ...rest, ...extra]
          : [...rest, ...extra],
        { cwd: inRoot('/app'), env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, timeoutMs: 30_000 },
      );
    if (!asUser) t.log('not root (or no setpriv): the entrypoint runs as the current user');
    const help = await run(['--help']);
    t.is(help.code, 0, help.stderr);
    t.regex(help.stdout, image === 'agent' ? /^Usage: loadfeed-agent/ : /^Usage: loadfeed-poller/);
    if (image === 'agent') {
      const once = await run(['--once', '--json', '--interval', '200ms', '--proc-root', '/proc', '--sys-root', '/sys', '--node-id', 'in-image']);
      t.is(once.code, 0, once.stderr);
      t.is((JSON.parse(once.stdout) as { nodeId: string }).nodeId, 'in-image');
    } else {
      await access(inRoot('/app/poller/assets/dashboard.html'));
      await access(inRoot('/app/node_modules/uplot/dist/uPlot.iife.min.js'));
      const check = await runCommand(process.execPath, [inRoot('/app/poller/build/src/bin/loadfeed.js'), 'policy', 'check', path.join(DEPLOY_DIR, 'examples', 'policies', 'web-fastpath.yaml')], {
        cwd: inRoot('/app'),
        timeoutMs: 30_000,
      });
      t.is(check.code, 0, check.stdout + check.stderr);
    }
  });
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return env;
}
