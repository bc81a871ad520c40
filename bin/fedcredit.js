#!/usr/bin/env node
// The CLI is compiled by `npm run build` (run automatically by `npm ci` through the `prepare` script).
// Checked before anything loads: older Node versions fail on imports with messages that do not name the cause.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) {
  process.stderr.write(`fedcredit: Node.js ${process.version} is too old\n  fix: install Node.js 20.12 or newer (20, 22 and 24 LTS are supported)\n`);
  process.exit(2);
}
const { main } = await import('../dist/src/cli/main.js');

main(process.argv).catch((err) => {
  process.stderr.write(`fedcredit: ${err?.stack ?? err}\n`);
  process.exit(1);
});
