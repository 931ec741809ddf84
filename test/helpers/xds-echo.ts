// Echo backends for xDS tests and benches: real grpc-js servers on loopback
// whose one method answers with the backend's name, so a client can tell
// which endpoint its load balancer picked.
import * as grpc from '@grpc/grpc-js';

export const ECHO_PATH = '/loadfeed.test.Echo/Who';

export interface EchoBackend {
  readonly name: string;
  /** 127.0.0.1:PORT */
  readonly address: string;
  close(): void;
}

export async function startEchoBackend(name: string): Promise<EchoBackend> {
  const server = new grpc.Server();
  server.addService(
    {
      Who: {
        path: ECHO_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (s: string) => Buffer.from(s),
        responseDeserialize: (b: Buffer) => b.toString(),
      },
    },
    { Who: (_call: grpc.ServerUnaryCall<Buffer, string>, callback: grpc.sendUnaryData<string>) => callback(null, name) },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { name, address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}
