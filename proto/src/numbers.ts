// protobufjs 8 decodes 64-bit fields as `Long` objects whenever the `long`
// package is installed (it is, as its own dependency). The contract promises
// plain numbers, so switch Long off before the generated code is evaluated:
// its prototype defaults are computed at load time. Values stay exact up to
// 2^53, far above any sequence number or millisecond timestamp we carry.
import protobuf from 'protobufjs/minimal.js';

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();
