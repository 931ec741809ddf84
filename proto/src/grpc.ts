// The one copy of grpc-js that the generated client and every user of it
// share. grpc-js checks credentials with `instanceof`, so an agent installed
// from npm, where it and this package could each get their own copy, must
// build its credentials and metadata with this copy, not its own.
import * as grpc from '@grpc/grpc-js';

export { grpc };
