#!/usr/bin/env node
// The CLI is compiled by `npm run build` (run automatically by `npm ci` through the `prepare` script).
// Checked before anything loads: older Node versions fail on imports with messages that do not name the cause.
// Supported: the LTS lines 22, 24 and 26 (package.json "engines"). Node 20 is past its end of life (2026-04-30) but
// still runs fedcredit, as machines ship it: warned, not refused.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) {
  process.stderr.write(`fedcredit: Node.js ${process.version} is too old\n  fix: install Node.js 22, 24 or 26 (LTS lines)\n`);
  process.exit(2);
}
if (major < 22 || major % 2 === 1) {
  const why = major < 22 ? `reached its end of life on 2026-04-30` : 'is not a long-term-support line';
  process.stderr.write(`fedcredit: warning: Node.js ${process.version} ${why} and is not supported; fedcredit runs on it, but install Node.js 22, 24 or 26 (LTS) for production\n`);
}
const { main } = await import('../dist/src/cli/main.js');

main(process.argv).catch((err) => {
  process.stderr.write(`fedcredit: ${err?.stack ?? err}\n`);
  process.exit(1);
});
