#!/usr/bin/env node
// The miglab command. The CLI is compiled to dist/ by `make build` (tsc).
import { main } from '../dist/cli.js';

// Everything miglab writes (results, logs, the lab's state) is its owner's only: a guest's
// memory, disk and console can hold secrets.
process.umask(0o077);
process.exitCode = await main(process.argv.slice(2));
