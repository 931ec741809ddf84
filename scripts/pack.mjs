#!/usr/bin/env node
// Packs one npm package per role: @loadfeed/agent (loadfeed-agent) and
// @loadfeed/poller (loadfeed-poller, loadfeed). Each tarball holds its bins
// bundled with esbuild together with the code of the workspaces they use
// (proto's generated code, kernel-bridge), so it depends only on packages from
// the npm registry: `npm install -g loadfeed-agent-0.1.0.tgz` is the whole
// install, and @grpc/grpc-js, which the proto code and the role's own code
// must share, can only ever be installed once per role.
//
//   npm run pack                        # = npm run build && node scripts/pack.mjs [DIR]
//
// DIR defaults to dist/. Prints one JSON line per tarball: name, version, file
// (absolute path), files (the paths inside) and integrity. The output is the
// same bytes for the same build: esbuild is deterministic and npm pack fixes
// every entry's time and owner.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Workspaces that become tarballs; the others are bundled into them. */
const ROLES = ['agent', 'poller'];
/** Where the bundles go inside a tarball; bins keep their names. */
const BIN_DIR = 'bin';

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const rootManifest = readJson(path.join(root, 'package.json'));
/** Workspace directory by package name, e.g. '@loadfeed/proto' → 'proto'. */
const workspaceDirs = new Map(rootManifest.workspaces.map((ws) => [readJson(path.join(root, ws, 'package.json')).name, ws]));
const manifestOf = (ws) => readJson(path.join(root, ws, 'package.json'));
/** The npm package a bare specifier names: `@grpc/grpc-js/build/x` → `@grpc/grpc-js`. */
const packageName = (specifier) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

function fail(message) {
  process.stderr.write(`pack: ${message}\n`);
  process.exit(1);
}

/**
 * Bundle the bins of workspace `ws` into `stage`: workspace packages are
 * inlined, every other package stays an import. Returns the third-party
 * dependencies the bundle needs, with the ranges its workspaces declare.
 */
async function bundle(ws, stage) {
  const manifest = manifestOf(ws);
  const externals = [];
  const result = await build({
    absWorkingDir: root,
    entryPoints: Object.entries(manifest.bin).map(([name, file]) => ({ in: path.join(ws, file), out: `${BIN_DIR}/${name}` })),
    outdir: stage,
    chunkNames: `${BIN_DIR}/lib/[name]-[hash]`,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    metafile: true,
    logLevel: 'warning',
    plugins: [
      {
        name: 'registry-packages-external',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) => {
            if (args.path.startsWith('node:') || workspaceDirs.has(packageName(args.path))) return undefined;
            externals.push({ name: packageName(args.path), importer: args.importer });
            return { path: args.path, external: true };
          });
        },
      },
    ],
  });
  // The workspaces whose code went in (first path segment of each input) declare the dependencies.
  const used = new Set(Object.keys(result.metafile.inputs).map((input) => input.split('/')[0]));
  const dependencies = {};
  for (const dir of [...used].filter((d) => rootManifest.workspaces.includes(d))) {
    for (const [name, range] of Object.entries(manifestOf(dir).dependencies ?? {})) {
      if (workspaceDirs.has(name)) continue;
      if (dependencies[name] !== undefined && dependencies[name] !== range) {
        fail(`${ws}: ${name} is wanted as ${dependencies[name]} and as ${range} (${dir}/package.json); make the ranges one`);
      }
      dependencies[name] = range;
    }
  }
  for (const { name, importer } of externals) {
    const ownDir = path.relative(root, importer).split(path.sep)[0] ?? '';
    if (manifestOf(ownDir).dependencies?.[name] === undefined) fail(`${importer} imports ${name}, which ${ownDir}/package.json does not list`);
  }
  return Object.fromEntries(Object.entries(dependencies).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** The tarball's package.json: the role's identity and bins, registry dependencies only. */
function stageManifest(ws, dependencies) {
  const m = manifestOf(ws);
  return {
    name: m.name,
    version: m.version,
    description: m.description,
    license: m.license,
    type: 'module',
    bin: Object.fromEntries(Object.keys(m.bin).map((name) => [name, `${BIN_DIR}/${name}.js`])),
    // The code finds its own package.json (version, assets) by name.
    exports: { './package.json': './package.json' },
    engines: m.engines,
    dependencies,
    publishConfig: { access: 'public' },
  };
}

for (const ws of ROLES) {
  if (!existsSync(path.join(root, ws, 'build', 'src', 'index.js'))) fail(`${ws}/build is missing; run "npm run build" first`);
}
const destination = path.resolve(process.argv[2] ?? path.join(root, 'dist'));
mkdirSync(destination, { recursive: true });
const scratch = mkdtempSync(path.join(os.tmpdir(), 'loadfeed-pack-'));
try {
  for (const ws of ROLES) {
    const stage = path.join(scratch, ws);
    const dependencies = await bundle(ws, stage);
    writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(stageManifest(ws, dependencies), null, 2)}\n`);
    cpSync(path.join(root, 'README.md'), path.join(stage, 'README.md'));
    // Files the workspace ships besides its build (the poller's dashboard assets).
    for (const entry of manifestOf(ws).files ?? []) {
      if (entry.startsWith('build/') || entry.startsWith('!')) continue;
      cpSync(path.join(root, ws, entry), path.join(stage, entry), { recursive: true });
    }
    const packed = spawnSync('npm', ['pack', '--json', '--pack-destination', destination], {
      cwd: stage,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (packed.status !== 0) fail(`npm pack of ${ws} exited ${packed.status ?? packed.signal}`);
    for (const p of JSON.parse(packed.stdout)) {
      const line = { name: p.name, version: p.version, file: path.join(destination, p.filename), files: p.files.map((f) => f.path), integrity: p.integrity };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
