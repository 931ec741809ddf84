// A bare ADS client for protocol tests and the xDS bench: it sends
// DiscoveryRequests as written and hands back each DiscoveryResponse decoded,
// its resources unpacked, so a test controls every ACK, NACK and nonce.
import * as grpc from '@grpc/grpc-js';
import { ADS_STREAM_PATH, xdsTypes } from '@loadfeed/kernel-bridge';

export interface AdsRequest {
  readonly typeUrl: string;
  readonly resourceNames?: readonly string[];
  readonly versionInfo?: string;
  readonly responseNonce?: string;
  readonly errorDetail?: { readonly code: number; readonly message: string };
  readonly node?: { readonly id: string };
}

export interface AdsResponse {
  readonly versionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
  /** Each resource decoded to a plain object (protobufjs camelCase, enums as names). */
  readonly resources: Record<string, unknown>[];
}

export interface AdsStream {
  send(request: AdsRequest): void;
  /** The next response not yet taken, waiting up to `timeoutMs` for it. */
  next(timeoutMs?: number): Promise<AdsResponse>;
  /** Responses received and not yet taken. */
  readonly queued: number;
  /** ACK a response: its version and nonce, the same names. */
  ack(response: AdsResponse, resourceNames?: readonly string[]): void;
  close(): void;
}

export function decodeResponse(bytes: Buffer): AdsResponse {
  const types = xdsTypes();
  const message = types.discoveryResponse.toObject(types.discoveryResponse.decode(bytes)) as {
    versionInfo?: string;
    typeUrl?: string;
    nonce?: string;
    resources?: { type_url: string; value: Uint8Array }[];
  };
  return {
    versionInfo: message.versionInfo ?? '',
    typeUrl: message.typeUrl ?? '',
    nonce: message.nonce ?? '',
    resources: (message.resources ?? []).map((any) => {
      const type = types.root.lookupType(any.type_url.replace(/^type\.googleapis\.com\//, ''));
      return type.toObject(type.decode(any.value), { enums: String }) as Record<string, unknown>;
    }),
  };
}

export function openAdsStream(target: string, credentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}): AdsStream {
  const types = xdsTypes();
  const client = new grpc.Client(target, credentials, options);
  const call = client.makeBidiStreamRequest(
    ADS_STREAM_PATH,
    (r: AdsRequest) => Buffer.from(types.discoveryRequest.encode(types.discoveryRequest.fromObject(r)).finish()),
    decodeResponse,
  );
  const queue: AdsResponse[] = [];
  interface Waiter {
    resolve(r: AdsResponse): void;
    reject(err: Error): void;
  }
  const waiters: Waiter[] = [];
  let failure: Error | null = null;
  call.on('data', (r: AdsResponse) => {
    const waiter = waiters.shift();
    if (waiter === undefined) queue.push(r);
    else waiter.resolve(r);
  });
  call.on('error', (err: Error) => {
    failure = err;
    for (const w of waiters.splice(0)) w.reject(err);
  });
  const stream: AdsStream = {
    send: (r) => call.write(r),
    next: (timeoutMs = 10_000) => {
      const queued = queue.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      if (failure !== null) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        const waiter: Waiter = {
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no ADS response within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    get queued() {
      return queue.length;
    },
    ack: (response, resourceNames) =>
      call.write({
        typeUrl: response.typeUrl,
        versionInfo: response.versionInfo,
        responseNonce: response.nonce,
        ...(resourceNames === undefined ? {} : { resourceNames }),
      }),
    close: () => {
      call.cancel();
      client.close();
    },
  };
  return stream;
}
