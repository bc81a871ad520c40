#!/usr/bin/env node
// The CLI is compiled by `npm run build` (run automatically by `npm ci` through the `prepare` script).
import { main } from '../dist/src/cli/main.js';

main(process.argv).catch((err) => {
  process.stderr.write(`fedcredit: ${err?.stack ?? err}\n`);
  process.exit(1);
});
