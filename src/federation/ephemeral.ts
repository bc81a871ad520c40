/**
 * A throwaway federation: a federation PKI and configs written to a temporary folder, the coordinator and
 * participants started as real processes on 127.0.0.1 with mutual TLS (LocalCluster), jobs submitted and watched
 * over gRPC with a submitter certificate. The end-to-end tests and the benchmarks run on it.
 * FEDCREDIT_KEEP_TEST_DIRS=1 keeps the folder (configs, logs, ledger, PKI) for inspection.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { CoordinatorClient } from '../client.js';
import { LocalCluster } from './local-cluster.js';
import type { DatasetSpec } from '../data/schema.js';
import type { JobEvent } from '../wire/messages.js';
import { issueCertificate } from '../pki/ca.js';
import type { Role } from '../pki/names.js';
import { identityDir, writeFederationPki } from './pki-layout.js';
import { identityFromDir, type Transport } from '../wire/transport.js';

export interface ParticipantSetup {
  name: string;
  data: DatasetSpec;
  consent?: Record<string, unknown>;
  /** Extra top-level fields, or overrides (to write broken configs). */
  extra?: Record<string, unknown>;
}

export interface FederationOptions {
  prefix?: string;
  env?: Record<string, string>;
  /** Plaintext gRPC without certificates: only for tests that say why. */
  insecure?: boolean;
  /** Extra coordinator config fields, or overrides. */
  coordinator?: Record<string, unknown>;
}

export class EphemeralFederation {
  private constructor(
    readonly dir: string,
    readonly cluster: LocalCluster,
    readonly insecure: boolean,
    /** The coordinator's state folder (its state_dir, resolved against the federation's folder). */
    readonly stateDir: string,
    /** The coordinator's ledger folder (its ledger_dir, resolved against the state folder). */
    readonly ledgerDir: string,
  ) {}

  static async start(participants: ParticipantSetup[], opts: FederationOptions = {}): Promise<EphemeralFederation> {
    const dir = await mkdtemp(join(tmpdir(), opts.prefix ?? 'fedcredit-test-'));
    const insecure = opts.insecure ?? false;
    if (!insecure)
      await writeFederationPki(
        dir,
        participants.map((p) => p.name),
      );
    const coordinatorConfig = join(dir, 'coordinator.yaml');
    const coordinator = {
      listen: '127.0.0.1:0',
      state_dir: 'coordinator-state',
      ledger_dir: 'ledger',
      offer_timeout_s: 30,
      ...(insecure ? {} : { tls: { dir: 'pki/issued/coordinator-coordinator', crl: 'pki/crl.pem' } }),
      ...opts.coordinator,
    };
    await writeFile(coordinatorConfig, stringify(coordinator));
    const entries = await Promise.all(
      participants.map(async (p) => {
        const config = join(dir, `${p.name}.yaml`);
        const body = {
          organisation: p.name,
          coordinator: '127.0.0.1:1',
          ...(insecure ? {} : { tls: { dir: `pki/issued/${p.name}-participant` } }),
          data: p.data,
          consent: { job_kinds: ['horizontal', 'vertical-lr'], submitters: ['*'], max_rounds: 1000, allow_plaintext: true, ...p.consent },
          ...p.extra,
        };
        await writeFile(config, stringify(body));
        return { name: p.name, config };
      }),
    );
    const cluster = await LocalCluster.start({ coordinatorConfig, participants: entries, logDir: join(dir, 'logs'), env: opts.env, insecure });
    const stateDir = resolve(dir, String(coordinator.state_dir));
    return new EphemeralFederation(dir, cluster, insecure, stateDir, resolve(stateDir, String(coordinator.ledger_dir)));
  }

  /** How a process with this organisation and role connects: its certificate from the federation's CA. */
  async identity(org: string, role: Role): Promise<Transport> {
    if (this.insecure) return { kind: 'insecure' };
    const out = identityDir(this.dir, org, role);
    if (!existsSync(join(out, 'cert.pem'))) await issueCertificate(join(this.dir, 'pki'), { organisation: org, role, outDir: out });
    return identityFromDir(out);
  }

  /** A submitter's client (by default the test bank's). */
  async client(org = 'test-bank', role: Role = 'submitter'): Promise<CoordinatorClient> {
    return new CoordinatorClient(this.cluster.address, await this.identity(org, role));
  }

  /** Submit a job, wait for its end, return the last event and all events. */
  async run(job: object, submitter = 'test-bank'): Promise<{ jobId: string; last: JobEvent; events: JobEvent[]; client: CoordinatorClient }> {
    const client = await this.client(submitter);
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
