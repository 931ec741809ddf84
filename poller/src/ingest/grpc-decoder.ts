// The one place that reads grpc-js internals: where a server call's message
// decoder stands. grpc-js frames messages (a flag byte and a 4-byte length)
// before anything reaches a handler and keeps that state to itself; its
// public API tells a handler neither that a stream ended inside a message
// (it ends the call as if between messages) nor why it cancelled a call (the
// RESOURCE_EXHAUSTED it sent for a message over grpc.max_receive_message_length
// reaches the handler only as 'cancelled'; server interceptors do not see
// a status the call sends itself). Without this, both would go uncounted.
//
// Read only when a stream ends or is cancelled, never per message.
// test/poller/grpc-decoder.test.ts drives a real grpc-js server with raw
// HTTP/2 frames and fails, naming the grpc-js version, when this no longer
// finds what grpc-js does.
import type { ServerDuplexStream } from '@grpc/grpc-js';

/** How much of a message the decoder holds: `announced` null while still inside the 5-byte prefix. */
export interface PartialMessage {
  /** The length the message's prefix announced; null while the prefix itself is incomplete. */
  readonly announced: number | null;
  /** Bytes of the prefix (announced null) or of the body received so far. */
  readonly received: number;
}

/** grpc-js 1.x's StreamDecoder fields (stream-decoder.ts). */
interface DecoderFields {
  readonly readState?: unknown;
  readonly readSizeRemaining?: unknown;
  readonly readMessageSize?: unknown;
  readonly readMessageRemaining?: unknown;
}

const NO_DATA = 0;
const READING_SIZE = 1;
const PREFIX_BYTES = 5;

/**
 * Where the call's decoder stands: null between messages, the partial
 * message otherwise, undefined when grpc-js does not keep that state where
 * this reads it (a grpc-js change).
 */
export function partialMessage(call: ServerDuplexStream<unknown, unknown>): PartialMessage | null | undefined {
  const d = (call as unknown as { call?: { decoder?: DecoderFields } }).call?.decoder;
  if (!d || typeof d.readState !== 'number' || typeof d.readSizeRemaining !== 'number' || typeof d.readMessageSize !== 'number' || typeof d.readMessageRemaining !== 'number') return undefined;
  if (d.readState === NO_DATA) return null;
  if (d.readState === READING_SIZE) {
    // A prefix complete but still in this state: grpc-js refused the length (over the limit).
    return d.readSizeRemaining === 0 ? { announced: d.readMessageSize, received: 0 } : { announced: null, received: PREFIX_BYTES - d.readSizeRemaining };
  }
  return { announced: d.readMessageSize, received: d.readMessageSize - d.readMessageRemaining };
}
