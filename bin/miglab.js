#!/usr/bin/env node
// The miglab command. The CLI is compiled to dist/ by `make build` (tsc).
import { dropWritesOnClosedPipe, exitDespiteOpenHandles, main } from '../dist/cli.js';

// Everything miglab writes (results, logs, the lab's state) is its owner's only: a guest's
// memory, disk and console can hold secrets.
process.umask(0o077);
// Progress goes to stderr, results to stdout: a reader that stops early may close either.
dropWritesOnClosedPipe(process.stdout);
dropWritesOnClosedPipe(process.stderr);
process.exitCode = await main(process.argv.slice(2));
// Everything a command starts is stopped and awaited inside main(). A handle still open a second
// after it returned is a leak: named on stderr (the CLI-driven tests fail on that line), then the
// process ends rather than hang a finished command.
exitDespiteOpenHandles(1000);
