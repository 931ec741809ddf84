#!/usr/bin/env -S node --max-semi-space-size=32 --no-allocation-site-pretenuring
// The launcher line is part of the poller: systemd's ExecStart, an npm global
// install and npx all execute this file (the container's ENTRYPOINT passes
// the same options). Both options are about garbage: every agent message and
// every policy cycle leave short-lived objects.
// --max-semi-space-size=32 (MB): a young generation this size collects them
//   in fewer, cheaper scavenges, for up to 64 MB more RSS (two semi-spaces).
// --no-allocation-site-pretenuring: decisions live for one cycle, but V8
//   learns to allocate them straight into the old generation, which then
//   fills with garbage and needs frequent full collections.
// At 5,000 agents the semi-space took the transport alone from 42 % of a
// core to 29 %; adding the second took the whole poller from 74 % to 64 %
// and p99 sample-to-decision latency from 257 ms to 95 (BENCHMARKS.md).
// This file is committed, not built: npm links a workspace's bins at install
// time and skips one whose file does not exist yet, so a build output here
// would leave `npx` with nothing to run after `npm ci`. The packed tarball's
// bundle starts from this file too (scripts/pack.mjs), launcher line included.
import '../build/src/bin/loadfeed-poller.js';
