// deploy/examples/envoy/envoy.yaml, checked as `envoy --mode validate` would
// check its structure: Envoy is not installable here (no Debian package), so
// the file is decoded strictly against Envoy's own Bootstrap message (the
// envoy API as @grpc/grpc-js-xds ships it): every key a field of its message,
// every enum a value of its enum, every typed_config a known type checked the
// same way, at most one member of each oneof. What it cannot check is
// Envoy's semantic validation (e.g. that a cluster named in a route exists).
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { parse } from 'yaml';
import { xdsTypes } from '@loadfeed/kernel-bridge';
import { DEPLOY_DIR } from './repo.js';

const EXAMPLE = path.join(DEPLOY_DIR, 'examples', 'envoy', 'envoy.yaml');

const SCALAR: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  bytes: (v) => typeof v === 'string',
  bool: (v) => typeof v === 'boolean',
  double: (v) => typeof v === 'number',
  float: (v) => typeof v === 'number',
};
const isInteger = (v: unknown): boolean => (typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v));
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const camel = (key: string): string => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Every problem of `value` as a `type` in proto3 JSON/YAML form, each naming its path. */
function problems(type: protobuf.Type, value: unknown, at: string): string[] {
  switch (type.fullName) {
    case '.google.protobuf.Any': {
      if (!isObject(value) || typeof value['@type'] !== 'string') return [`${at}: a typed config needs "@type"`];
      const name = value['@type'].replace(/^type\.googleapis\.com\//, '');
      const inner = type.root.lookup(name);
      if (!(inner instanceof protobuf.Type)) return [`${at}.@type: ${name} is not a known message`];
      return problems(inner, Object.fromEntries(Object.entries(value).filter(([key]) => key !== '@type')), at);
    }
    case '.google.protobuf.Duration':
      return typeof value === 'string' && /^\d+(\.\d+)?s$/.test(value) ? [] : [`${at}: ${JSON.stringify(value)} is not a duration like "1s"`];
    case '.google.protobuf.Struct':
    case '.google.protobuf.Value':
      return [];
  }
  if (type.fullName.startsWith('.google.protobuf.') && type.fullName.endsWith('Value')) {
    return problems(type, { value }, at); // wrappers are written as their bare value
  }
  if (!isObject(value)) return [`${at}: expected a ${type.name} object, got ${JSON.stringify(value)}`];
  const found: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[camel(key)];
    const here = `${at}.${key}`;
    if (field === undefined) {
      found.push(`${here}: no such field in ${type.fullName.slice(1)}`);
      continue;
    }
    field.resolve();
    if (field.map) {
      if (!isObject(v)) found.push(`${here}: expected a map`);
      else for (const [k, item] of Object.entries(v)) found.push(...fieldProblems(field, item, `${here}.${k}`));
    } else if (field.repeated) {
      if (!Array.isArray(v)) found.push(`${here}: expected a list`);
      else v.forEach((item, i) => found.push(...fieldProblems(field, item, `${here}[${i}]`)));
    } else found.push(...fieldProblems(field, v, here));
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => Object.keys(value).some((k) => camel(k) === f.name));
    if (set.length > 1) found.push(`${at}: ${set.map((f) => f.name).join(' and ')} are alternatives (oneof ${oneof.name})`);
  }
  return found;
}

function fieldProblems(field: protobuf.Field, value: unknown, at: string): string[] {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return problems(resolved, value, at);
  if (resolved instanceof protobuf.Enum) {
    return (typeof value === 'string' && value in resolved.values) || isInteger(value) ? [] : [`${at}: ${JSON.stringify(value)} is not one of ${Object.keys(resolved.values).join(', ')}`];
  }
  const scalar = SCALAR[field.type];
  const ok = scalar === undefined ? isInteger(value) : scalar(value);
  return ok ? [] : [`${at}: ${JSON.stringify(value)} is not a ${field.type}`];
}

const bootstrap = (): protobuf.Type => xdsTypes().root.lookupType('envoy.config.bootstrap.v3.Bootstrap');

test('the Envoy bootstrap example decodes strictly as envoy.config.bootstrap.v3.Bootstrap', (t) => {
  const example = parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
  t.deepEqual(problems(bootstrap(), example, 'envoy.yaml'), []);
  // And it asks for what loadfeed serves: state-of-the-world ADS, v3, clusters over ADS.
  t.like(example, { dynamic_resources: { ads_config: { api_type: 'GRPC', transport_api_version: 'V3' }, cds_config: { ads: {}, resource_api_version: 'V3' } } });
});

test('the strict decoder finds a misspelt field, a wrong enum, a wrong typed config and two oneof members', (t) => {
  const example = parse(readFileSync(EXAMPLE, 'utf8')) as { dynamic_resources: Record<string, unknown>; static_resources: { clusters: Record<string, unknown>[] } };
  example.dynamic_resources['cds_confg'] = {};
  (example.dynamic_resources['ads_config'] as Record<string, unknown>)['api_type'] = 'INCREMENTAL';
  const cluster = example.static_resources.clusters[0] as { transport_socket: { typed_config: Record<string, unknown> }; type?: string; cluster_type?: unknown };
  cluster.transport_socket.typed_config['sni_name'] = 'x';
  cluster.cluster_type = { name: 'envoy.clusters.aggregate' };
  t.deepEqual(problems(bootstrap(), example, 'envoy.yaml'), [
    'envoy.yaml.dynamic_resources.ads_config.api_type: "INCREMENTAL" is not one of DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE, REST, GRPC, DELTA_GRPC, AGGREGATED_GRPC, AGGREGATED_DELTA_GRPC',
    'envoy.yaml.dynamic_resources.cds_confg: no such field in envoy.config.bootstrap.v3.Bootstrap.DynamicResources',
    'envoy.yaml.static_resources.clusters[0].transport_socket.typed_config.sni_name: no such field in envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    'envoy.yaml.static_resources.clusters[0]: type and clusterType are alternatives (oneof clusterDiscoveryType)',
  ]);
});
