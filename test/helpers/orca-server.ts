// A gRPC server publishing ORCA load reports through grpc-js's own
// ServerMetricRecorder, as its own process (so a test can stop it with
// SIGSTOP, like a hung host, or kill it). Usage:
//   node orca-server.js [application_utilization qps eps]
// Prints its port on stdout once it listens.
import * as grpc from '@grpc/grpc-js';

const [appUtil = '0.5', qps = '100', eps = '0'] = process.argv.slice(2);
const server = new grpc.Server();
const recorder = new grpc.ServerMetricRecorder();
recorder.setApplicationUtilizationMetric(Number(appUtil));
recorder.setQpsMetric(Number(qps));
recorder.setEpsMetric(Number(eps));
recorder.setCpuUtilizationMetric(0.05);
recorder.addToServer(server);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${port}\n`);
});
process.on('SIGTERM', () => server.forceShutdown());
