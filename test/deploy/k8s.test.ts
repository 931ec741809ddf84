// The Kubernetes manifests in deploy/k8s/, checked three ways:
// 1. against the Kubernetes API's own schemas: kubernetes-models validates
//    each object with JSON Schema validators generated from the Kubernetes
//    OpenAPI document (types, required fields, formats);
// 2. against the API's TypeScript types (kubernetes-types, generated from the
//    same document): each object becomes an object literal typed as its kind
//    and tsc's excess-property check catches a misspelt field, which the
//    OpenAPI schemas (open to unknown fields) and an apiserver without strict
//    field validation would silently drop. Negative controls show both bite;
// 3. for what the manifests promise: least privilege, the host /proc mount,
//    probes on the status port, the policy ConfigMap mounted as a directory
//    (the poller reloads on kubelet's symlink swap), flags and policy the
//    programs accept.
import test from 'ava';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { loadAgentConfig } from '@loadfeed/agent';
import { compilePolicy, defaultEngines } from '@loadfeed/poller';
import { DEPLOY_DIR, REPO_ROOT, runCommand } from './repo.js';

const K8S_DIR = path.join(DEPLOY_DIR, 'k8s');
const require = createRequire(import.meta.url);

type Json = Record<string, unknown>;
interface Manifest {
  readonly file: string;
  readonly index: number;
  readonly object: Json;
}

/** Model class (schema validator) and kubernetes-types import for every kind the manifests use. */
const KINDS: Record<string, { readonly validate: (o: Json) => void; readonly typeModule: string; readonly typeName: string }> = {
  'v1/Namespace': { validate: (o) => new Namespace(o as never).validate(), typeModule: 'kubernetes-types/core/v1', typeName: 'Namespace' },
  'v1/ConfigMap': { validate: (o) => new ConfigMap(o as never).validate(), typeModule: 'kubernetes-types/core/v1', typeName: 'ConfigMap' },
  'v1/Service': { validate: (o) => new Service(o as never).validate(), typeModule: 'kubernetes-types/core/v1', typeName: 'Service' },
  'apps/v1/DaemonSet': { validate: (o) => new DaemonSet(o as never).validate(), typeModule: 'kubernetes-types/apps/v1', typeName: 'DaemonSet' },
  'apps/v1/Deployment': { validate: (o) => new Deployment(o as never).validate(), typeModule: 'kubernetes-types/apps/v1', typeName: 'Deployment' },
};

async function loadManifests(): Promise<Manifest[]> {
  const files = (await readdir(K8S_DIR)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
  const out: Manifest[] = [];
  for (const file of files) {
    const docs = parseAllDocuments(await readFile(path.join(K8S_DIR, file), 'utf8'), { strict: true, uniqueKeys: true });
    if (!Array.isArray(docs)) throw new Error(`${file}: not a YAML stream`);
    docs.forEach((doc, index) => {
      if (doc.errors.length > 0) throw new Error(`${file}#${index}: ${doc.errors.map((e) => e.message).join('; ')}`);
      out.push({ file, index, object: doc.toJS() as Json });
    });
  }
  return out;
}

const kindOf = (o: Json): string => `${String(o['apiVersion'])}/${String(o['kind'])}`;
const get = (o: unknown, ...keys: (string | number)[]): unknown =>
  keys.reduce<unknown>((x, k) => (x !== null && typeof x === 'object' ? (x as Record<string | number, unknown>)[k] : undefined), o);
const find = (ms: readonly Manifest[], kind: string, name: string): Json => {
  const m = ms.find((x) => kindOf(x.object) === kind && get(x.object, 'metadata', 'name') === name);
  if (!m) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return m.object;
};
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name?: string; containerPort: number }[];
  securityContext?: Json;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  startupProbe?: Json;
  livenessProbe?: Json;
  readinessProbe?: Json;
}
const containers = (workload: Json): Container[] => (get(workload, 'spec', 'template', 'spec', 'containers') as Container[] | undefined) ?? [];
const podSpec = (workload: Json): Json => (get(workload, 'spec', 'template', 'spec') as Json | undefined) ?? {};

/** tsc over one generated file; returns its diagnostics ('' when clean). */
async function typeCheck(manifests: readonly { object: Json }[]): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lf-k8s-types-'));
  try {
    const imports = new Map<string, Set<string>>();
    const lines = manifests.map((m, i) => {
      const k = KINDS[kindOf(m.object)];
      if (!k) throw new Error(`no type for ${kindOf(m.object)}`);
      imports.set(k.typeModule, (imports.get(k.typeModule) ?? new Set()).add(k.typeName));
      return `export const object${i}: ${k.typeName} = ${JSON.stringify(m.object, null, 2)};`;
    });
    const head = [...imports].map(([mod, names]) => `import type { ${[...names].join(', ')} } from '${require.resolve(`${mod}.d.ts`).replace(/\.d\.ts$/, '.js')}';`);
    await writeFile(path.join(dir, 'manifests.ts'), [...head, ...lines, ''].join('\n'));
    const tsc = require.resolve('typescript/bin/tsc');
    const r = await runCommand(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--exactOptionalPropertyTypes', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', path.join(dir, 'manifests.ts')],
      { cwd: REPO_ROOT, timeoutMs: 120_000 },
    );
    return r.code === 0 ? '' : r.stdout + r.stderr;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('every manifest parses and validates against the Kubernetes schemas (kubernetes-models)', async (t) => {
  const ms = await loadManifests();
  t.deepEqual([...new Set(ms.map((m) => kindOf(m.object)))].sort(), Object.keys(KINDS).sort(), 'the kinds shipped');
  for (const m of ms) {
    const k = KINDS[kindOf(m.object)];
    t.truthy(k, `${m.file}#${m.index}: ${kindOf(m.object)}`);
    t.notThrows(() => k?.validate(m.object), `${m.file}#${m.index} (${kindOf(m.object)} ${String(get(m.object, 'metadata', 'name'))})`);
  }
});

test('schema validation bites: a wrong type and a missing required field are refused', async (t) => {
  const ds = structuredClone(find(await loadManifests(), 'apps/v1/DaemonSet', 'loadfeed-agent'));
  (containers(ds)[0]?.resources ?? {}).requests = { cpu: ['10m'] } as never;
  t.throws(() => new DaemonSet(ds as never).validate(), { message: /resources\/requests\/cpu/ });
  const noSelector = structuredClone(find(await loadManifests(), 'apps/v1/Deployment', 'loadfeed-poller'));
  delete (noSelector['spec'] as Json)['selector'];
  t.throws(() => new Deployment(noSelector as never).validate(), { message: /selector/ });
});

test('every manifest type-checks as its kind, without a single unknown field (kubernetes-types, tsc)', async (t) => {
  t.timeout(180_000);
  const ms = await loadManifests();
  t.is(await typeCheck(ms), '');
  // Negative control: a misspelt field (readOnlyRootFileSystem), which the schema lets through.
  const typo = structuredClone(find(ms, 'apps/v1/DaemonSet', 'loadfeed-agent'));
  const sc = containers(typo)[0]?.securityContext ?? {};
  delete sc['readOnlyRootFilesystem'];
  sc['readOnlyRootFileSystem'] = true;
  t.notThrows(() => new DaemonSet(typo as never).validate(), 'the OpenAPI schema accepts unknown fields');
  t.regex(await typeCheck([{ object: typo }]), /readOnlyRootFileSystem/);
});

test('least privilege: non-root, no capabilities, no privilege escalation, read-only root, seccomp, resources, pinned images', async (t) => {
  const ms = await loadManifests();
  for (const w of ms.filter((m) => ['apps/v1/DaemonSet', 'apps/v1/Deployment'].includes(kindOf(m.object)))) {
    const name = String(get(w.object, 'metadata', 'name'));
    const pod = podSpec(w.object);
    t.is(get(pod, 'securityContext', 'runAsNonRoot'), true, `${name}: runAsNonRoot`);
    t.not(get(pod, 'securityContext', 'runAsUser'), 0, `${name}: runAsUser`);
    t.is(get(pod, 'securityContext', 'seccompProfile', 'type'), 'RuntimeDefault', `${name}: seccomp`);
    t.is(pod['automountServiceAccountToken'], false, `${name}: no API token`);
    t.not(pod['hostPID'], true, `${name}: no hostPID`);
    t.not(pod['hostIPC'], true, `${name}: no hostIPC`);
    for (const c of containers(w.object)) {
      const sc = c.securityContext ?? {};
      t.is(sc['allowPrivilegeEscalation'], false, `${name}/${c.name}: allowPrivilegeEscalation`);
      t.is(sc['readOnlyRootFilesystem'], true, `${name}/${c.name}: readOnlyRootFilesystem`);
      t.not(sc['privileged'], true, `${name}/${c.name}: privileged`);
      t.deepEqual(get(sc, 'capabilities', 'drop'), ['ALL'], `${name}/${c.name}: drop ALL`);
      t.is(get(sc, 'capabilities', 'add'), undefined, `${name}/${c.name}: adds no capability`);
      for (const r of ['cpu', 'memory']) {
        t.truthy(c.resources?.requests?.[r], `${name}/${c.name}: requests.${r}`);
        t.truthy(c.resources?.limits?.[r], `${name}/${c.name}: limits.${r}`);
      }
      t.regex(c.image, /:[\w.-]+$/, `${name}/${c.name}: image has a tag`);
      t.notRegex(c.image, /:latest$/, `${name}/${c.name}: not latest`);
    }
  }
});

test('agent DaemonSet: host network, host /proc and /sys read-only at /host/*, flags the agent accepts', async (t) => {
  const ds = find(await loadManifests(), 'apps/v1/DaemonSet', 'loadfeed-agent');
  const pod = podSpec(ds);
  t.is(pod['hostNetwork'], true, 'SOCK_DIAG sees the node sockets');
  t.is(pod['dnsPolicy'], 'ClusterFirstWithHostNet', 'cluster DNS with host network');
  const volumes = (pod['volumes'] as { name: string; hostPath?: { path: string } }[] | undefined) ?? [];
  const agent = containers(ds)[0];
  if (agent === undefined) return t.fail('no container');
  const mountOf = (hostPath: string) => {
    const v = volumes.find((x) => x.hostPath?.path === hostPath);
    return agent.volumeMounts?.find((m) => m.name === v?.name);
  };
  t.like(mountOf('/proc'), { mountPath: '/host/proc', readOnly: true });
  t.like(mountOf('/sys'), { mountPath: '/host/sys', readOnly: true });
  const run = agent.volumeMounts?.find((m) => m.mountPath === '/run/loadfeed');
  t.truthy(volumes.find((v) => v.name === run?.name && 'emptyDir' in v), 'the status socket directory is a writable emptyDir');
  const args = agent.args ?? [];
  t.true(args.includes('--proc-root=/host/proc'));
  t.true(args.includes('--sys-root=/host/sys'));

  // The agent's own configuration compiler accepts the manifest's flags and environment.
  const env: Record<string, string> = {};
  for (const e of agent.env ?? []) env[e.name] = e.value ?? (e.valueFrom !== undefined ? 'node-1' : '');
  const { config } = loadAgentConfig(args, env);
  t.is(config?.nodeId, 'node-1', 'node id from the downward API');
  t.is(config?.procRoot, '/host/proc');
  t.is(config?.sysRoot, '/host/sys');
  t.deepEqual(config?.pollers, ['loadfeed-poller.loadfeed.svc.cluster.local:7415']);
  t.deepEqual(config?.labels, { role: 'web' });
});

test('poller: policy ConfigMap mounted as a directory and compiled; probes on the status port; the Service reaches named ports', async (t) => {
  const ms = await loadManifests();
  const deployment = find(ms, 'apps/v1/Deployment', 'loadfeed-poller');
  const poller = containers(deployment)[0];
  if (poller === undefined) return t.fail('no container');
  const args = poller.args ?? [];
  const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

  // The policy: a ConfigMap volume, mounted without subPath so updates arrive.
  const volumes = (podSpec(deployment)['volumes'] as { name: string; configMap?: { name: string } }[] | undefined) ?? [];
  const policyVolume = volumes.find((v) => v.configMap !== undefined);
  const mount = poller.volumeMounts?.find((m) => m.name === policyVolume?.name);
  t.truthy(mount, 'the ConfigMap is mounted');
  t.is(mount?.subPath, undefined, 'no subPath: kubelet could not update it');
  const policyFile = flag('policy') ?? '';
  t.is(mount?.mountPath, path.posix.dirname(policyFile), '--policy points into the mount');
  const configMap = find(ms, 'v1/ConfigMap', policyVolume?.configMap?.name ?? '');
  const text = get(configMap, 'data', path.posix.basename(policyFile));
  t.is(typeof text, 'string', 'the ConfigMap has the key --policy names');
  const policy = compilePolicy(String(text), 'deploy/k8s/poller-configmap.yaml', defaultEngines().limits());
  t.true(policy.services.length > 0);

  // Every flag exists; the status server listens where the probes look.
  const help = await runCommand(process.execPath, [path.join(REPO_ROOT, 'poller', 'build', 'src', 'bin', 'loadfeed-poller.js'), '--help'], { timeoutMs: 30_000 });
  for (const a of args) t.true(help.stdout.includes(`${a.split('=')[0] ?? a} `), `${a} is not in loadfeed-poller --help`);
  const statusPort = Number(/:(\d+)$/.exec(flag('status') ?? '')?.[1]);
  const grpcPort = Number(/:(\d+)$/.exec(flag('listen') ?? '')?.[1]);
  t.is(poller.ports?.find((p) => p.name === 'status')?.containerPort, statusPort);
  t.is(poller.ports?.find((p) => p.name === 'grpc')?.containerPort, grpcPort);
  t.is(get(poller.startupProbe, 'httpGet', 'path'), '/healthz');
  for (const probe of [poller.startupProbe, poller.livenessProbe, poller.readinessProbe]) {
    t.is(get(probe, 'httpGet', 'port'), 'status', 'probes ask the status port');
  }

  // Services: gRPC 7415 and status 7416, by port name, selecting the poller's pods.
  const service = find(ms, 'v1/Service', 'loadfeed-poller');
  const podLabels = get(deployment, 'spec', 'template', 'metadata', 'labels') as Record<string, string>;
  for (const [k, v] of Object.entries(get(service, 'spec', 'selector') as Record<string, string>)) t.is(podLabels[k], v);
  const ports = get(service, 'spec', 'ports') as { port: number; targetPort: string }[];
  t.deepEqual(ports.map((p) => [p.port, p.targetPort]), [[7415, 'grpc'], [7416, 'status']]);
  for (const s of ms.filter((m) => kindOf(m.object) === 'v1/Service')) {
    for (const p of get(s.object, 'spec', 'ports') as { targetPort: string }[]) {
      t.truthy(poller.ports?.find((c) => c.name === p.targetPort), `${s.file}: targetPort ${p.targetPort} is a named container port`);
    }
  }
});

test('kustomization.yaml lists every manifest', async (t) => {
  const text = await readFile(path.join(K8S_DIR, 'kustomization.yaml'), 'utf8');
  const listed = (parseAllDocuments(text)[0]?.toJS() as { resources: string[] }).resources.sort();
  const files = (await readdir(K8S_DIR)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
  t.deepEqual(listed, files);
});
