// A gRPC server publishing ORCA load reports through grpc-js's own
// ServerMetricRecorder, as its own process (so a test can stop it with
// SIGSTOP, like a hung host, or kill it). Usage:
//   node orca-server.js [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]] [application_utilization qps eps]
// With a certificate it serves TLS only (and with a client CA, asks every
// client for a certificate that CA signed). Prints its port on stdout once it listens.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'tls-client-ca': { type: 'string' } },
  allowPositionals: true,
});
const [appUtil = '0.5', qps = '100', eps = '0'] = positionals;
const cert = values['tls-cert'];
const key = values['tls-key'];
const clientCa = values['tls-client-ca'] === undefined ? null : readFileSync(values['tls-client-ca']);
const credentials =
  cert === undefined || key === undefined
    ? grpc.ServerCredentials.createInsecure()
    : grpc.ServerCredentials.createSsl(clientCa, [{ cert_chain: readFileSync(cert), private_key: readFileSync(key) }], clientCa !== null);
const server = new grpc.Server();
const recorder = new grpc.ServerMetricRecorder();
recorder.setApplicationUtilizationMetric(Number(appUtil));
recorder.setQpsMetric(Number(qps));
recorder.setEpsMetric(Number(eps));
recorder.setCpuUtilizationMetric(0.05);
recorder.addToServer(server);
server.bindAsync('127.0.0.1:0', credentials, (err, port) => {
  if (err) throw err;
  process.stdout.write(`${port}\n`);
});
process.on('SIGTERM', () => server.forceShutdown());
