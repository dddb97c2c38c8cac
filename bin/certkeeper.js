#!/usr/bin/env node
// The `certkeeper` executable: runs the compiled CLI (build first with `npm run build`).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
});
