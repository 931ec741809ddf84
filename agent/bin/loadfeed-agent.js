#!/usr/bin/env -S node --lite-mode --no-expose-wasm --max-semi-space-size=1
// The launcher line is part of the agent: systemd's ExecStart, an npm global
// install and npx all execute this file, so these V8 options apply wherever
// it is installed (the container's ENTRYPOINT executes it the same way).
// --lite-mode: V8's memory-for-speed trade (on Node 20 it implies --jitless:
//   the interpreter only, feedback allocated lazily). The agent runs little
//   JavaScript per sample; not touching the compilers' code and not keeping
//   optimised code saves about 6 MB of RSS (bench:agent-cost, BENCHMARKS.md).
// --no-expose-wasm: jitless has no WebAssembly (the agent uses none); saying
//   so keeps V8 from printing a warning at every start.
// --max-semi-space-size=1 (MB): a small young generation, so the garbage of a
//   large SOCK_DIAG dump or a burst of samples does not grow the heap for good.
// This file is committed, not built: npm links a workspace's bins at install
// time and skips one whose file does not exist yet, so a build output here
// would leave `npx` with nothing to run after `npm ci`. The packed tarball's
// bundle starts from this file too (scripts/pack.mjs), launcher line included.
import '../build/src/bin/loadfeed-agent.js';
