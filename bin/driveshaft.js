#!/usr/bin/env node
// The compiled entry lives in dist/ (npm run build); this file only hands over to it.
import { startIdleMemoryRelease } from '../dist/src/idle-memory.js';
import { run } from '../dist/src/main.js';

// The master's heap grows while it parses its configs and starts its pools, then it mostly waits: give
// that memory back once it is quiet (src/idle-memory.ts). The timer is unref'd: `--check`, `--help` and
// `replay` exit as before.
startIdleMemoryRelease();
await run();
