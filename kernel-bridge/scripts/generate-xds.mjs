// Generates gen/xds.json: the protobuf descriptors (protobufjs JSON) of the
// xDS v3 messages the xds engine serves and decodes. The .proto files are the
// envoy-api, xds, googleapis and protoc-gen-validate trees that
// @grpc/grpc-js-xds ships under deps/ (the gRPC project's own copy of the
// envoy API); protobufjs's own google/protobuf/descriptor.proto fills the one
// well-known file protobufjs does not bundle.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pbjs } from 'protobufjs-cli';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const protobufjs = dirname(require.resolve('protobufjs/package.json'));

const FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  // Not served: the Envoy bootstrap example (deploy/examples/envoy) is checked
  // against these, typed configs included.
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
];

const out = join(here, '..', 'gen', 'xds.json');
mkdirSync(dirname(out), { recursive: true });
const includes = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].flatMap((d) => ['-p', join(deps, d)]);
pbjs.main(['-t', 'json', ...includes, '-p', protobufjs, '-o', out, ...FILES], (err) => {
  if (err) {
    console.error(`generate-xds: ${err.message}`);
    process.exit(1);
  }
});
