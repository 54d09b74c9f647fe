#!/usr/bin/env node
// The compiled entry lives in dist/ (npm run build); this file only hands over to it.
import { run } from '../dist/src/main.js';

await run();
