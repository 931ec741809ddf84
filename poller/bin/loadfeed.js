#!/usr/bin/env node
// This file is committed, not built: npm links a workspace's bins at install
// time and skips one whose file does not exist yet, so a build output here
// would leave `npx` with nothing to run after `npm ci`. The packed tarball's
// bundle starts from this file too (scripts/pack.mjs), launcher line included.
import '../build/src/bin/loadfeed.js';
