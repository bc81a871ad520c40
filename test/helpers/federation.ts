/**
 * Test harness: a real federation (coordinator + participant processes on 127.0.0.1) over configs written to a
 * temporary folder, and the real UCI default-credit data from ../shared/datasets.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DatasetSpec } from '../../src/data/schema.js';
export { EphemeralFederation as TestFederation } from '../../src/federation/ephemeral.js';

export const DATASETS = fileURLToPath(new URL('../../../shared/datasets/', import.meta.url));
export const UCI = join(DATASETS, 'uci_default_credit');
export const HOMO_PARTIES = ['guest', 'host_1', 'host_2'] as const;
export const UCI_FEATURES = Array.from({ length: 23 }, (_, i) => `x${i}`);

export function uciHomoSpec(file: string): DatasetSpec {
  return {
    path: file,
    delimiter: ',',
    id_column: 'id',
    label_column: 'y',
    features: UCI_FEATURES.map((name) => ({ name, type: 'number', missing: 'impute' })),
    duplicate_ids: 'reject',
    missing_values: ['', 'NA'],
  };
}

export function horizontalJob(overrides: { training?: Record<string, unknown>; encryption?: Record<string, unknown>; model?: Record<string, unknown>; participants?: string[] } = {}) {
  return {
    name: 'uci-homo-lr',
    kind: 'horizontal',
    purpose: 'test: default model on UCI credit card clients',
    participants: overrides.participants ?? [...HOMO_PARTIES],
    model: { type: 'logistic', ...overrides.model },
    training: { rounds: 8, local_epochs: 1, batch_size: 64, learning_rate: 0.05, optimizer: 'sgd', seed: 11, validation_fraction: 0.2, round_timeout_s: 60, ...overrides.training },
    encryption: { scheme: 'ckks', ...overrides.encryption },
  };
}
