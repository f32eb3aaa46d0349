#!/usr/bin/env node
// The miglab command. The CLI is compiled to dist/ by `make build` (tsc).
import { main } from '../dist/cli.js';

// Everything miglab writes (results, logs, the lab's state) is its owner's only: a guest's
// memory, disk and console can hold secrets.
process.umask(0o077);
// A reader that stops early (`miglab plot DIR | head`) closes stdout: the rest of the output is
// dropped, and the command still ends as it would (its cleanup included), without a stack trace.
process.stdout.on('error', (err) => {
  if (err.code !== 'EPIPE') throw err;
});
process.exitCode = await main(process.argv.slice(2));
