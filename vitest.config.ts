import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// A test file that starts processes (coordinator and participants through the federation harness or
// startUciHeteroPair or uciHeteroPairForSuite, the CLI, PostgreSQL, Chromium) says so by importing one of these.
const STARTS_PROCESSES = /\b(TestFederation|EphemeralFederation|LocalCluster|startUciHeteroPair|uciHeteroPairForSuite)\b|helpers\/(cli|postgres|browser)\.js'|'node:child_process'/;

// Process files whose properties hold on a machine twice as busy: no bound on a wall-clock time, and every deadline
// their jobs set (step, round and grace periods) far above what a step takes at twice its time. They run two at a
// time (measured: every file passed with all of them two at a time, in 0.82 of the serial time; data-postgres,
// he-packing, log-format, participant-policy, vertical-calibration-federation, vertical-psi and walkthrough,
// which set no deadline near a step's time, joined on 2026-12-07 after passing at load 10 to 16). Every other
// process file runs alone, so that its deadlines and latency bounds (liveness, step deadlines, stragglers,
// revocation within seconds, rejoining within a number of rounds) meet only this machine's own noise: a new process
// test runs alone until it is listed here. (horizontal-threshold-tn-federation, whose killed participant must rejoin
// within 15 rounds, failed once beside another file: it runs alone.)
const SHARES_THE_CORES = new Set(
  [
    'cli-coordinator-address',
    'cli-identity',
    'coordinator-crash',
    'coordinator-crash-vertical',
    'coordinator-restart',
    'credit-toolkit',
    'data-postgres',
    'demo',
    'demo-gbdt',
    'guest-one-pass',
    'he-packing',
    'horizontal-categories',
    'horizontal-ceremony-rejoin',
    'horizontal-credit',
    'horizontal-federation',
    'horizontal-gmsc',
    'job-access',
    'key-binding',
    'ledger-rollback',
    'log-format',
    'model-report',
    'participant-data-checks',
    'participant-dial-failure',
    'participant-policy',
    'postgres-federation',
    'vertical-binning',
    'vertical-boost-federation',
    'vertical-calibration-federation',
    'vertical-ceremony-rejoin',
    'vertical-federation',
    'vertical-keys-resume',
    'vertical-psi',
    'vertical-scoring',
    'vertical-threshold-federation',
    'vertical-threshold-rejoin',
    'walkthrough',
    'wire-tap',
  ].map((name) => join('test', `${name}.test.ts`)),
);

const testFiles = readdirSync('test', { recursive: true, encoding: 'utf8' })
  .filter((file) => file.endsWith('.test.ts'))
  .map((file) => join('test', file));
const processFiles = testFiles.filter((file) => STARTS_PROCESSES.test(readFileSync(file, 'utf8')));
const unknown = [...SHARES_THE_CORES].filter((file) => !processFiles.includes(file));
if (unknown.length > 0) throw new Error(`vitest.config.ts lists as process files ${unknown.join(', ')}, which start no process (or do not exist)`);

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
  // A worker runs file after file in one module graph instead of importing TensorFlow.js, SEAL, gRPC and the product
  // anew for every file: the in-process group took 162 s and 308 CPU s isolated, 113 s and 214 CPU s not (side by
  // side, quiet machine, 2026-12-07). The files share no state that this breaks: none mocks a module, and the two that
  // set an environment variable restore it or remove it when they end.
  isolate: false,
};

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      // In-process files first, two at a time; then the process files that share the cores, two at a time; then the
      // process files that run alone.
      { test: { ...shared, name: 'in-process', include: ['test/**/*.test.ts'], exclude: processFiles, maxWorkers: 2, sequence: { groupOrder: 0 } } },
      { test: { ...shared, name: 'processes', include: [...SHARES_THE_CORES], maxWorkers: 2, sequence: { groupOrder: 1 } } },
      {
        test: { ...shared, name: 'processes-alone', include: processFiles.filter((file) => !SHARES_THE_CORES.has(file)), fileParallelism: false, sequence: { groupOrder: 2 } },
      },
    ],
  },
});
