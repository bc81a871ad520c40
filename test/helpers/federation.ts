/**
 * Test harness: a real federation (coordinator + participant processes on 127.0.0.1) over configs written to a
 * temporary folder, and the real UCI default-credit data from ../shared/datasets.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { CoordinatorClient } from '../../src/client.js';
import { LocalCluster } from '../../src/federation/local-cluster.js';
import type { DatasetSpec } from '../../src/data/schema.js';
import type { JobEvent } from '../../src/wire/messages.js';

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

export interface ParticipantSetup {
  name: string;
  data: DatasetSpec;
  consent?: Record<string, unknown>;
  /** Extra top-level fields, or overrides (to write broken configs). */
  extra?: Record<string, unknown>;
}

export class TestFederation {
  private constructor(
    readonly dir: string,
    readonly cluster: LocalCluster,
  ) {}

  static async start(participants: ParticipantSetup[], opts: { prefix?: string } = {}): Promise<TestFederation> {
    const dir = await mkdtemp(join(tmpdir(), opts.prefix ?? 'fedcredit-test-'));
    const coordinatorConfig = join(dir, 'coordinator.yaml');
    await writeFile(coordinatorConfig, stringify({ listen: '127.0.0.1:0', state_dir: 'coordinator-state', offer_timeout_s: 30 }));
    const entries = await Promise.all(
      participants.map(async (p) => {
        const config = join(dir, `${p.name}.yaml`);
        const body = {
          organisation: p.name,
          coordinator: '127.0.0.1:1',
          data: p.data,
          consent: { job_kinds: ['horizontal'], submitters: ['*'], max_rounds: 1000, allow_plaintext: true, ...p.consent },
          ...p.extra,
        };
        await writeFile(config, stringify(body));
        return { name: p.name, config };
      }),
    );
    const cluster = await LocalCluster.start({ coordinatorConfig, participants: entries, logDir: join(dir, 'logs') });
    return new TestFederation(dir, cluster);
  }

  /** Submit a job, wait for its end, return the last event and all events. */
  async run(job: object, submitter = 'test-bank'): Promise<{ jobId: string; last: JobEvent; events: JobEvent[]; client: CoordinatorClient }> {
    const client = new CoordinatorClient(this.cluster.address);
    const jobId = await client.submitJob(stringify(job), submitter);
    const events: JobEvent[] = [];
    const last = await client.watchJob(jobId, (e) => events.push(e));
    return { jobId, last, events, client };
  }

  /** Stop every process; the folder (configs and logs) is kept when FEDCREDIT_KEEP_TEST_DIRS=1, for debugging. */
  async stop(): Promise<void> {
    await this.cluster.stop();
    if (process.env.FEDCREDIT_KEEP_TEST_DIRS === '1') console.log(`kept ${this.dir}`);
    else await rm(this.dir, { recursive: true, force: true });
  }
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
