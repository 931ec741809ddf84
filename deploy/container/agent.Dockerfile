# syntax=docker/dockerfile:1.7
# loadfeed agent image. Build from the repository root:
#   docker build -f deploy/container/agent.Dockerfile -t loadfeed-agent .
#
# The agent measures the host, not the container: run it in the host's network
# namespace (SOCK_DIAG and /proc/net then see the host's sockets) with the
# host's /proc and /sys mounted read-only and named by --proc-root/--sys-root:
#   docker run -d --name loadfeed-agent --network host --read-only \
#     --cap-drop ALL --security-opt no-new-privileges --tmpfs /run/loadfeed:uid=1000 \
#     -v /proc:/host/proc:ro -v /sys:/host/sys:ro \
#     loadfeed-agent --proc-root /host/proc --sys-root /host/sys \
#       --poller director1:7415 --poller director2:7415 --node-id "$(hostname)" ...
# It runs as uid 1000 and writes only its status socket (/run/loadfeed, a
# tmpfs above): a read-only root file system is fine.

ARG NODE_IMAGE=node:20-bookworm-slim

# Build: the whole workspace, with dev dependencies (TypeScript, protobufjs-cli).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY proto/package.json proto/
COPY kernel-bridge/package.json kernel-bridge/
COPY agent/package.json agent/
COPY poller/package.json poller/
COPY test/package.json test/
# --ignore-scripts: the root's prepare script builds, and the sources come next.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build

# Runtime: production dependencies of the agent only, from the same lockfile.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY proto/package.json proto/
COPY kernel-bridge/package.json kernel-bridge/
COPY agent/package.json agent/
COPY poller/package.json poller/
COPY test/package.json test/
# --ignore-scripts: no build here (the root's prepare script); the build stage's output is copied.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --workspace @loadfeed/agent --no-audit --no-fund
COPY --from=build /src/proto/build proto/build
COPY --from=build /src/agent/build agent/build
USER 1000:1000
# The Node options of the bin's launcher line (#!/usr/bin/env -S node ...),
# which an exec-form "node FILE" does not read: keep the two the same.
ENTRYPOINT ["node", "--lite-mode", "--no-expose-wasm", "--max-semi-space-size=1", "/app/agent/build/src/bin/loadfeed-agent.js"]
CMD ["--help"]
