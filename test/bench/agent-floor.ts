/**
 * The floor under bench:agent-cost: a Node process started with the agent's
 * launcher options that holds one gRPC stream to the poller (the agent's own
 * PollerStream) and sends a constant reading on a timer at the agent's
 * interval. It is everything the agent does except measuring (no /proc or
 * /sys reads, no SOCK_DIAG dump, no watch windows), so the agent's CPU above
 * it is what sampling costs. Prints "ready" once the poller has acknowledged
 * it; exits on SIGTERM.
 */
import { parseArgs } from 'node:util';
import { loadTransport, PollerStream, type Reading } from '@loadfeed/agent';
import { Scope } from '@loadfeed/proto';

const { values } = parseArgs({ options: { poller: { type: 'string' }, 'node-id': { type: 'string', default: 'floor' }, 'interval-ms': { type: 'string', default: '1000' } } });
const target = values.poller;
if (target === undefined) throw new Error('agent-floor: --poller HOST:PORT is required');
const intervalMs = Number(values['interval-ms']);

const READING: Reading = {
  cpuUtilization: 0.1, memUtilization: 0.3, load1: 0.2, runnable: 1, psiCpuSome: 0, psiMemorySome: 0, psiIoSome: 0, cpuThrottled: null,
  tcpInuse: 10, tcpEstablished: 5, tcpAcceptsPerSecond: 0, applicationUtilization: null, rpsFractional: null, eps: null,
  services: [], windowMs: intervalMs, cpuStep: 0, namedMetrics: {},
};
const transport = loadTransport({ tlsCa: null, tlsCert: null, tlsKey: null, tlsServerName: null, tokenFile: null, allowPlaintext: false });
let ready = false;
const stream = new PollerStream(
  target,
  () => ({
    nodeId: values['node-id'], hostname: 'floor', addresses: [], cores: 2, memoryBytes: 2 ** 30, labels: {}, services: [],
    agentVersion: 'floor', scope: Scope.SCOPE_HOST, cpuModel: '', intervalMs,
  }),
  {
    onInterval: () => undefined,
    onState: (_poller, state) => {
      if (state === 'connected' && !ready) {
        ready = true;
        process.stdout.write('ready\n');
      }
    },
  },
  transport,
);
stream.start();
const timer = setInterval(() => stream.send(READING, Date.now()), intervalMs);
process.on('SIGTERM', () => {
  clearInterval(timer);
  stream.close();
});
