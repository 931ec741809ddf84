# syntax=docker/dockerfile:1.7
# loadfeed poller image. Build from the repository root:
#   docker build -f deploy/container/poller.Dockerfile -t loadfeed-poller .
#
#   docker run -d --name loadfeed-poller --read-only --cap-drop ALL \
#     --security-opt no-new-privileges -p 7415:7415 -p 8080:8080 \
#     -v /etc/loadfeed:/etc/loadfeed:ro loadfeed-poller \
#     --policy /etc/loadfeed/policy.yaml --listen 0.0.0.0:7415 --status 0.0.0.0:7416 ...
# Ports: 7415 gRPC from agents, 7416 status (/healthz, /status, /metrics,
# dashboard), plus the fast path's service ports from the policy. It runs as
# uid 1000 and writes only where --record points (mount a volume there).
# Engines that program the kernel (IPVS, nftables) need --network host and
# --cap-add NET_ADMIN; the fast path needs neither.

ARG NODE_IMAGE=node:20-bookworm-slim

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
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --workspace @loadfeed/poller --no-audit --no-fund
COPY --from=build /src/proto/build proto/build
COPY --from=build /src/kernel-bridge/build kernel-bridge/build
COPY --from=build /src/poller/build poller/build
COPY --from=build /src/poller/assets poller/assets
USER 1000:1000
EXPOSE 7415 7416
ENTRYPOINT ["node", "--max-semi-space-size=32", "--no-allocation-site-pretenuring", "/app/poller/build/src/bin/loadfeed-poller.js"]
CMD ["--help"]
