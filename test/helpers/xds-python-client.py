# A second, independent xDS client: Python grpcio (gRPC C-core) resolving
# xds:///NAME through the bootstrap file GRPC_XDS_BOOTSTRAP names, calling the
# echo backends (xds-echo.ts) COUNT times; prints the answers per backend as
# one JSON object, then keeps its xDS stream open until stdin closes.
# Usage: python3 xds-python-client.py xds:///web COUNT
import collections
import json
import sys

import grpc

channel = grpc.insecure_channel(sys.argv[1])
who = channel.unary_unary('/loadfeed.test.Echo/Who', request_serializer=lambda b: b, response_deserializer=lambda b: b)
counts = collections.Counter()
for _ in range(int(sys.argv[2])):
    counts[who(b'', timeout=30).decode()] += 1
print(json.dumps(counts), flush=True)
sys.stdin.read()
channel.close()
