#!/usr/bin/env node
// Committed, not built, like the other workspaces' bins (agent/bin/loadfeed-agent.js says why).
import '../build/src/bin/loadfeed-demo.js';
