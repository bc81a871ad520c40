/**
 * A throwaway federation: configs written to a temporary folder, the coordinator and participants started as
 * real processes on 127.0.0.1 (LocalCluster), jobs submitted and watched over gRPC. The end-to-end tests and the
 * benchmarks run on it. FEDCREDIT_KEEP_TEST_DIRS=1 keeps the folder (configs, logs, ledger) for inspection.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CoordinatorClient } from '../client.js';
import { LocalCluster } from './local-cluster.js';
import type { DatasetSpec } from '../data/schema.js';
import type { JobEvent } from '../wire/messages.js';

export interface ParticipantSetup {
  name: string;
  data: DatasetSpec;
  consent?: Record<string, unknown>;
  /** Extra top-level fields, or overrides (to write broken configs). */
  extra?: Record<string, unknown>;
}

export class EphemeralFederation {
  private constructor(
    readonly dir: string,
    readonly cluster: LocalCluster,
  ) {}

  static async start(
    participants: ParticipantSetup[],
    opts: { prefix?: string; via?: (coordinatorAddress: string) => Promise<string>; env?: Record<string, string> } = {},
  ): Promise<EphemeralFederation> {
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
          consent: { job_kinds: ['horizontal', 'vertical-lr'], submitters: ['*'], max_rounds: 1000, allow_plaintext: true, ...p.consent },
          ...p.extra,
        };
        await writeFile(config, stringify(body));
        return { name: p.name, config };
      }),
    );
    const cluster = await LocalCluster.start({ coordinatorConfig, participants: entries, logDir: join(dir, 'logs'), via: opts.via, env: opts.env });
    return new EphemeralFederation(dir, cluster);
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

