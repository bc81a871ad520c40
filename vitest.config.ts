import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// A test file that starts processes (coordinator and participants through the federation harness or
// startUciHeteroPair, the CLI,
// PostgreSQL, Chromium) says so by importing one of these; those files run one at a time so that their processes do
// not compete for the 2 cores and miss their deadlines. Every other file runs in-process and shares the cores with
// one other such file.
const STARTS_PROCESSES = /\b(TestFederation|EphemeralFederation|LocalCluster|startUciHeteroPair)\b|helpers\/(cli|postgres|browser)\.js'|'node:child_process'/;

const testFiles = readdirSync('test', { recursive: true, encoding: 'utf8' })
  .filter((file) => file.endsWith('.test.ts'))
  .map((file) => join('test', file));
const processFiles = testFiles.filter((file) => STARTS_PROCESSES.test(readFileSync(file, 'utf8')));

const shared = {
  testTimeout: 240_000,
  // Several files run a whole federated job in beforeAll (horizontal-threshold, horizontal-credit, horizontal-gmsc,
  // coordinator-crash-vertical, audit-horizontal): their hooks took up to 25 s on a loaded machine (measured), so a
  // CI machine twice as slow needs the tests' own budget, not 60 s.
  hookTimeout: 240_000,
  // Every Node process of the suite (the workers, and the coordinators, participants and CLI runs the tests start,
  // which inherit this) keeps V8's compiled code of the modules it loads here, so each of the hundreds of process
  // starts skips compiling them again: a sixth less CPU on tests that mostly start processes.
  env: { NODE_COMPILE_CACHE: resolve('node_modules/.cache/node-compile-cache') },
};

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      // In-process files first, two at a time; then the files that start processes, alone.
      { test: { ...shared, name: 'in-process', include: ['test/**/*.test.ts'], exclude: processFiles, maxWorkers: 2, sequence: { groupOrder: 0 } } },
      { test: { ...shared, name: 'processes', include: processFiles, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
