#!/usr/bin/env node
// The miglab command. The CLI is compiled to dist/ by `make build` (tsc).
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv.slice(2));
