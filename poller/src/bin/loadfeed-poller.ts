#!/usr/bin/env -S node --max-semi-space-size=32
// The launcher line is part of the poller: systemd's ExecStart, an npm global
// install and npx all execute this file (the container's ENTRYPOINT passes
// the same options). --max-semi-space-size=32 (MB): every agent message
// leaves short-lived garbage; a young generation this size collects it in
// fewer, cheaper scavenges (at 5,000 agents: 42 % → 29 % of a core,
// bench:poller-scale), for up to 64 MB more RSS (two semi-spaces).
import { pollerMain } from '../main.js';
import { runBin } from './run-bin.js';

runBin('loadfeed-poller', pollerMain);
