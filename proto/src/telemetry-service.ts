// The grpc-js service definition of loadfeed.agent.v1.Telemetry, written out
// because pbjs static code carries no grpc-js types. It is the one place where
// the RPC path and the codecs of each direction are named.
import * as grpc from '@grpc/grpc-js';
import { AgentMessage, PollerMessage } from './messages.js';

export const TELEMETRY_REPORT_PATH = '/loadfeed.agent.v1.Telemetry/Report';

const encodeAgent = (m: AgentMessage): Buffer => Buffer.from(AgentMessage.encode(m).finish());
const encodePoller = (m: PollerMessage): Buffer => Buffer.from(PollerMessage.encode(m).finish());

export const telemetryService = {
  report: {
    path: TELEMETRY_REPORT_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: encodeAgent,
    requestDeserialize: (b: Buffer): AgentMessage => AgentMessage.decode(b),
    responseSerialize: encodePoller,
    responseDeserialize: (b: Buffer): PollerMessage => PollerMessage.decode(b),
    originalName: 'Report',
  },
} satisfies grpc.ServiceDefinition;

export type TelemetryReportCall = grpc.ServerDuplexStream<AgentMessage, PollerMessage>;

export interface TelemetryServer extends grpc.UntypedServiceImplementation {
  report: grpc.handleBidiStreamingCall<AgentMessage, PollerMessage>;
}

export interface TelemetryClient extends grpc.Client {
  report(metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<AgentMessage, PollerMessage>;
}

const TelemetryClientCtor = grpc.makeGenericClientConstructor(telemetryService, 'loadfeed.agent.v1.Telemetry');

export function createTelemetryClient(
  target: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ChannelOptions = {},
): TelemetryClient {
  return new TelemetryClientCtor(target, credentials, options) as unknown as TelemetryClient;
}
