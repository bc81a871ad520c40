/** Vertical-job fixtures on the UCI default-credit hetero split (bank = guest with labels, tax-bureau = host). */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Rng } from '../../src/random.js';
import { join } from 'node:path';
import type { EphemeralFederation } from '../../src/federation/ephemeral.js';
import type { CsvDatasetSpec } from '../../src/data/schema.js';
import { loadDataset, type LoadedDataset } from '../../src/data/csv.js';
import { UCI } from './federation.js';

export const UCI_GUEST_FEATURES = Array.from({ length: 13 }, (_, i) => `x${i}`);
export const UCI_HOST_FEATURES = Array.from({ length: 10 }, (_, i) => `x${i}`);

export function uciHeteroSpec(role: 'guest' | 'host'): CsvDatasetSpec {
  const features = role === 'guest' ? UCI_GUEST_FEATURES : UCI_HOST_FEATURES;
  return {
    path: join(UCI, `fate_default_credit_hetero_${role}.csv`),
    delimiter: ',',
    id_column: 'id',
    ...(role === 'guest' ? { label_column: 'y' } : {}),
    features: features.map((name) => ({ name, type: 'number', missing: 'impute' })),
    duplicate_ids: 'reject',
    missing_values: ['', 'NA'],
  };
}

export function verticalJob(overrides: { training?: Record<string, unknown>; encryption?: Record<string, unknown>; hosts?: string[]; alignment?: Record<string, unknown>; guest?: string } = {}) {
  return {
    name: 'uci-hetero-lr',
    kind: 'vertical-lr',
    purpose: 'test: default model on UCI credit card clients, bank and tax bureau',
    guest: overrides.guest ?? 'bank',
    hosts: overrides.hosts ?? ['tax-bureau'],
    alignment: { id_format: 'any', min_intersection: 1000, ...overrides.alignment },
    training: { epochs: 25, batch_size: 4096, learning_rate: 0.05, seed: 7, patience: 5, validation_fraction: 0.1, test_fraction: 0.2, step_timeout_s: 120, grace_period_s: 20, ...overrides.training },
    encryption: { scheme: 'ckks', ...overrides.encryption },
  };
}

/** Where a participant of an EphemeralFederation keeps a job's files (model part, held-out scores). */
export function participantJobDir(federationDir: string, org: string, jobId: string): string {
  return join(federationDir, 'fedcredit-state', org, 'jobs', jobId);
}

/**
 * Start a vertical job, kill `org` (SIGKILL) once its log shows `batches` finished mini-batches of it, restart it
 * at once, and return the job's outcome; `logged` tells whether the node rebuilt the job from its folder.
 */
export async function runKillingMidTraining(fed: EphemeralFederation, org: string, job: object, batches = 9) {
  const logFile = join(fed.dir, 'logs', `${org}.log`);
  const before = readFileSync(logFile, 'utf8').length;
  const running = fed.run(job);
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && (readFileSync(logFile, 'utf8').slice(before).match(/"name":"batch"/g) ?? []).length < batches) await new Promise((r) => setTimeout(r, 100));
  await fed.cluster.kill(org, 'SIGKILL');
  fed.cluster.startParticipant(org);
  const result = await running;
  return { ...result, restored: /vertical job restored from its job folder; rejoining/.test(readFileSync(logFile, 'utf8').slice(before)) };
}

/**
 * A tiny two-party vertical data set for tests of timing and faults: a bank of 3,000 enterprises with a label and
 * one feature, a tax bureau holding 2,500 of them with another. Returns the spec of each party's file.
 */
export function writeTinyVertical(prefix: string, seed: number): { dir: string; bank: CsvDatasetSpec; tax: CsvDatasetSpec } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const rng = new Rng(seed);
  writeFileSync(
    join(dir, 'bank.csv'),
    ['id,y,f1', ...Array.from({ length: 3_000 }, (_, i) => {
      const x = rng.normal();
      return `E${i},${rng.next() < 1 / (1 + Math.exp(-x)) ? 1 : 0},${x.toFixed(3)}`;
    })].join('\n') + '\n',
  );
  writeFileSync(join(dir, 'tax.csv'), ['id,h1', ...Array.from({ length: 2_500 }, (_, i) => `E${(i * 7) % 3_001},${rng.normal().toFixed(3)}`)].join('\n') + '\n');
  const spec = (file: string, label: boolean): CsvDatasetSpec => ({
    path: join(dir, file),
    delimiter: ',',
    id_column: 'id',
    ...(label ? { label_column: 'y' } : {}),
    features: [{ name: label ? 'f1' : 'h1', type: 'number', missing: 'impute' }],
    duplicate_ids: 'reject',
    missing_values: [''],
  });
  return { dir, bank: spec('bank.csv', true), tax: spec('tax.csv', false) };
}

/**
 * The UCI hetero split as an aligned vertical job sees it after its PSI, in one process: both parties' datasets
 * (same ids in the same order, so row r of one is row r of the other) and the first `rows` rows cut into training,
 * validation and test (70 / 15 / 15).
 */
export async function uciAligned(rows: number): Promise<{ guest: LoadedDataset; host: LoadedDataset; alignment: { train: Uint32Array; validation: Uint32Array; test: Uint32Array } }> {
  const [guest, host] = await Promise.all([loadDataset(uciHeteroSpec('guest')), loadDataset(uciHeteroSpec('host'))]);
  const range = (from: number, to: number) => Uint32Array.from({ length: to - from }, (_, i) => from + i);
  const train = Math.round(rows * 0.7);
  const validation = Math.round(rows * 0.15);
  return { guest, host, alignment: { train: range(0, train), validation: range(train, train + validation), test: range(train + validation, rows) } };
}
