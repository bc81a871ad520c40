/**
 * Test harness: a real federation (coordinator + participant processes on 127.0.0.1) over configs written to a
 * temporary folder, and the real UCI default-credit data from ../shared/datasets.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HorizontalJobSpec as JobSpec } from '../../src/config/schemas.js';
import { loadDataset } from '../../src/data/csv.js';
import { UCI_HOMO_FEATURES, UCI_HOMO_PARTIES, uciHomoFile, uciHomoSpec } from '../../src/data/public-datasets.js';
import { splitRows } from '../../src/data/split.js';
import { binaryMetrics } from '../../src/metrics.js';
import { modelFromFiles, type ArtifactFiles } from '../../src/model/artifact.js';
import { fitCentral } from '../../src/fl/central.js';
import { loadTf } from '../../src/model/tf.js';
import { readLedger } from '../../src/ledger/read.js';
import type { EphemeralFederation } from '../../src/federation/ephemeral.js';
import { expect } from 'vitest';
export { EphemeralFederation as TestFederation } from '../../src/federation/ephemeral.js';

export const DATASETS = fileURLToPath(new URL('../../../shared/datasets/', import.meta.url));
export const UCI = join(DATASETS, 'uci_default_credit');
export { UCI_HOMO_PARTIES as HOMO_PARTIES, UCI_HOMO_FEATURES as UCI_FEATURES, uciHomoSpec } from '../../src/data/public-datasets.js';

/** The header and the first `rows` rows of a CSV file, written to `out`: a slice for a test whose property does not need the whole file. */
export function csvHead(file: string, rows: number, out: string): string {
  writeFileSync(
    out,
    readFileSync(file, 'utf8')
      .split('\n')
      .slice(0, rows + 1)
      .join('\n') + '\n',
  );
  return out;
}

/**
 * The pooled upper bound and the held-out rows: the job's model and settings fitted centrally on the same training
 * rows the participants use, scored on the UCI homo test file.
 */
export async function pooledUciBaseline(job: object) {
  const { tf } = await loadTf();
  const spec = JobSpec.parse(job);
  const all = UCI_HOMO_FEATURES.map((_, i) => i);
  const splits = await Promise.all(UCI_HOMO_PARTIES.map(async (p) => splitRows(await loadDataset(uciHomoSpec(uciHomoFile(DATASETS, p))), all, spec.training.validation_fraction, spec.training.seed)));
  const test = splitRows(await loadDataset(uciHomoSpec(uciHomoFile(DATASETS, 'test'))), all, 0, 0).train;
  const pooled = binaryMetrics(test.y, fitCentral(tf, spec, UCI_HOMO_FEATURES, { train: splits.map((s) => s.train), validation: splits.map((s) => s.validation) }).score(test.x));
  /** AUC and KS of a downloaded model on the same held-out rows. */
  const scoreModel = async (files: ArtifactFiles) => binaryMetrics(test.y, (await modelFromFiles(tf, files)).score(test.x));
  return { pooled, scoreModel };
}

export function horizontalJob(overrides: { training?: Record<string, unknown>; encryption?: Record<string, unknown>; model?: Record<string, unknown>; participants?: string[] } = {}) {
  return {
    name: 'uci-homo-lr',
    kind: 'horizontal',
    purpose: 'test: default model on UCI credit card clients',
    participants: overrides.participants ?? [...UCI_HOMO_PARTIES],
    model: { type: 'logistic', ...overrides.model },
    training: { rounds: 8, local_epochs: 1, batch_size: 64, learning_rate: 0.05, optimizer: 'sgd', seed: 11, validation_fraction: 0.2, round_timeout_s: 60, ...overrides.training },
    encryption: { scheme: 'ckks', ...overrides.encryption },
  };
}

/** Waits for a watched job to end, closes the client, asserts the job succeeded; the seconds since `started`. */
export async function awaitSucceeded(running: Promise<{ state: string; message: string }>, client: { close(): void }, started: number): Promise<number> {
  const last = await running;
  client.close();
  const seconds = (Date.now() - started) / 1000;
  expect(last.state, last.message).toBe('succeeded');
  return seconds;
}

/**
 * Kills the coordinator (SIGKILL) during a job's key ceremony with `frozenOrg` frozen (SIGSTOP): the ceremony cannot
 * reach its key without it, so the coordinator is killed during the ceremony whatever the load. Waits for `watching`
 * to end and closes its client, asserts the key was not in place, restarts the coordinator and waits for the job to
 * succeed; the seconds since `started`.
 */
export async function killCoordinatorInCeremony(fed: EphemeralFederation, frozenOrg: string, watching: Promise<unknown>, client: { close(): void }, jobId: string, started: number): Promise<number> {
  const frozen = fed.cluster.process(frozenOrg)!;
  expect(frozen.kill('SIGSTOP')).toBe(true);
  try {
    await fed.cluster.kill('coordinator', 'SIGKILL');
  } finally {
    frozen.kill('SIGCONT');
  }
  await watching;
  client.close();
  const killed = readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
  expect(
    killed.map((e) => e.entry.kind),
    'killed before the key was in place',
  ).not.toContain('collective_key_ready');
  await fed.cluster.restartCoordinator();
  const after = await fed.client();
  return awaitSucceeded(
    after.watchJob(jobId, () => undefined),
    after,
    started,
  );
}

/**
 * The key-share commitments a job's ledger entries record before its key ceremony's restart (the abandoned attempt)
 * and from the restart to the collective key (the attempt that made it).
 */
export function ceremonyCommitments(entries: ReturnType<typeof readLedger>['entries']): {
  abandoned: { participant: string; commitment: string }[];
  final: { participant: string; commitment: string }[];
} {
  const kinds = entries.map((e) => e.entry.kind);
  const restartAt = kinds.indexOf('key_ceremony_restarted');
  const commitments = (from: number, to: number) =>
    entries
      .slice(from, to)
      .filter((e) => e.entry.kind === 'key_share_committed')
      .map((e) => e.body as { participant: string; commitment: string });
  return { abandoned: commitments(0, restartAt), final: commitments(restartAt, kinds.indexOf('collective_key_ready')) };
}
