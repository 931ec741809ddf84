// The poller's side of the xds engine: which xDS clients its flags admit
// (the agents' plaintext rule), where the state file goes by default, and
// what /metrics shows of the xDS clients.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { defaultXdsStateFile, StatusMetrics, xdsEngineOptions, type PollerSecurity, type StatusDocument } from '@loadfeed/poller';
import { CLUSTER_TYPE, ENDPOINT_TYPE } from '@loadfeed/kernel-bridge';
import { decision, doc, node } from '../top/fixture.js';

const logger = pino({ level: 'silent' });
const auth = (allowPlaintext: boolean): PollerSecurity['auth'] => ({ tokens: new Map(), mutualTls: false, allowPlaintext });

test('plaintext xDS is admitted from loopback only, unless --allow-plaintext; with TLS the handshake decides', (t) => {
  const plaintext = xdsEngineOptions('127.0.0.1:0', null, { credentials: grpc.ServerCredentials.createInsecure(), auth: auth(false) }, logger);
  t.is(plaintext.admit?.('127.0.0.1:41000'), null);
  t.is(plaintext.admit?.('[::1]:41000'), null);
  t.regex(plaintext.admit?.('10.0.0.9:41000') ?? '', /plaintext xDS is served to loopback only: configure TLS .* or start the poller with --allow-plaintext/);
  const allowed = xdsEngineOptions('0.0.0.0:0', null, { credentials: grpc.ServerCredentials.createInsecure(), auth: auth(true) }, logger);
  t.is(allowed.admit?.('10.0.0.9:41000'), null);
  const fakeTls = Object.assign(Object.create(grpc.ServerCredentials.createInsecure()) as grpc.ServerCredentials, { _isSecure: () => true });
  t.is(xdsEngineOptions('0.0.0.0:0', null, { credentials: fakeTls, auth: auth(false) }, logger).admit?.('10.0.0.9:41000'), null);
});

test('the state file defaults to systemd\'s StateDirectory, else none', (t) => {
  t.is(defaultXdsStateFile({ STATE_DIRECTORY: '/var/lib/loadfeed' }), '/var/lib/loadfeed/xds-state.json');
  t.is(defaultXdsStateFile({ STATE_DIRECTORY: '/var/lib/loadfeed:/var/lib/other' }), '/var/lib/loadfeed/xds-state.json');
  t.is(defaultXdsStateFile({}), null);
});

test('/metrics: connected xDS clients, the version each ACKed and their NACKs', async (t) => {
  const base = doc({ nodes: [node('a1', 0.5)], decisions: [decision('a1', '10.0.0.1:80', 100)] });
  const withXds: StatusDocument = {
    ...base,
    xds: {
      listen: '127.0.0.1:18001',
      version: 7,
      responses: 40,
      nacks: 2,
      streams: 3,
      clients: [
        {
          stream: 3,
          node: 'envoy-1',
          peer: '127.0.0.1:50000',
          connectedAtMs: 0,
          types: [
            { typeUrl: CLUSTER_TYPE, sentVersion: '7', ackedVersion: '5', subscribed: null, nacks: 2, lastNack: 'unsupported lb_policy' },
            { typeUrl: ENDPOINT_TYPE, sentVersion: '7', ackedVersion: '7', subscribed: ['web'], nacks: 0, lastNack: null },
          ],
        },
      ],
    },
  };
  const text = await new StatusMetrics().render(withXds);
  t.regex(text, /^loadfeed_xds_clients 1$/m);
  t.regex(text, /^loadfeed_xds_version 7$/m);
  t.regex(text, /^loadfeed_xds_client_acked_version\{node="envoy-1",type="Cluster"\} 5$/m);
  t.regex(text, /^loadfeed_xds_client_acked_version\{node="envoy-1",type="ClusterLoadAssignment"\} 7$/m);
  t.regex(text, /^loadfeed_xds_client_nacks\{node="envoy-1",type="Cluster"\} 2$/m);
  t.regex(text, /^loadfeed_xds_nacks_total 2$/m);
  t.regex(text, /^loadfeed_xds_responses_total 40$/m);
  t.regex(await new StatusMetrics().render(base), /^loadfeed_xds_clients 0$/m, 'without the xds engine: no client');
});
