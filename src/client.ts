/**
 * The submitter's client: submit a job, watch its progress, fetch its status and published model. Used by
 * `fedcredit job ...` and by the demo.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve as resolvePath, sep } from 'node:path';
import { z } from 'zod';
import { ErrorCode, FedcreditError } from './errors.js';
import { loadYamlConfig } from './config/load.js';
import { coordinatorServiceDefinition, CHANNEL_OPTIONS } from './wire/proto.js';
import { ChunkJoiner } from './wire/framing.js';
import { unpackArtifact, type ArtifactFiles } from './model/artifact.js';
import type { Chunk, JobEvent, JobStatus, SubmitJobResponse } from './wire/messages.js';
import { dialed, dialFailure, type Transport } from './wire/transport.js';

const Client = grpc.makeGenericClientConstructor(coordinatorServiceDefinition(), 'Coordinator');

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;
interface RawClient extends grpc.Client {
  submitJob(req: object, cb: Callback<SubmitJobResponse>): void;
  getJob(req: object, cb: Callback<JobStatus>): void;
  watchJob(req: object): grpc.ClientReadableStream<JobEvent>;
  downloadModel(req: object): grpc.ClientReadableStream<Chunk>;
  readLedger(req: object): grpc.ClientReadableStream<Chunk>;
}

/** The address the client commands use when nothing names one. */
export const DEFAULT_COORDINATOR = '127.0.0.1:7700';
/** The environment variable that names the coordinator for the client commands. */
export const COORDINATOR_ENV = 'FEDCREDIT_COORDINATOR';

/** Where a client command's coordinator address came from, for the error that says it cannot be reached. */
export interface CoordinatorAddress {
  address: string;
  source: string;
}

/**
 * The coordinator a client command talks to: --coordinator, else the `coordinator` field of the --config file (a
 * participant's or a client's config), else $FEDCREDIT_COORDINATOR, else 127.0.0.1:7700.
 */
export function coordinatorAddress(opts: { coordinator?: string; config?: string }, env: NodeJS.ProcessEnv = process.env): CoordinatorAddress {
  if (opts.coordinator) return { address: opts.coordinator, source: '--coordinator' };
  if (opts.config) {
    const { coordinator } = loadYamlConfig(opts.config, z.object({ coordinator: z.string().min(1) }).passthrough(), 'client');
    return { address: coordinator, source: `the \`coordinator\` field of ${opts.config}` };
  }
  const fromEnv = env[COORDINATOR_ENV];
  if (fromEnv) return { address: fromEnv, source: `$${COORDINATOR_ENV}` };
  return { address: DEFAULT_COORDINATOR, source: 'the default (no --coordinator, --config or $FEDCREDIT_COORDINATOR was given)' };
}

function fromServiceError(err: grpc.ServiceError, address: string, source?: string): FedcreditError {
  if (err.code === grpc.status.UNAVAILABLE) {
    const known = dialFailure(err.details);
    return new FedcreditError(
      ErrorCode.UNAVAILABLE,
      `cannot reach the coordinator at ${address}${source ? ` (from ${source})` : ''}: ${known ? `${known.cause} (${err.details})` : err.details}`,
      known?.fix ??
        `check that \`fedcredit coordinator\` is running there; name another address with --coordinator <host:port>, with --config <a participant or client config with a \`coordinator\` field>, or in $${COORDINATOR_ENV}`,
    );
  }
  if (err.code === grpc.status.NOT_FOUND) return new FedcreditError(ErrorCode.NOT_FOUND, err.details, 'check the job id (`fedcredit job status`)');
  if (err.code === grpc.status.PERMISSION_DENIED)
    return new FedcreditError(
      ErrorCode.PERMISSION_DENIED,
      err.details,
      'use an identity (--identity) whose certificate has the role this needs: `fedcredit pki issue --role submitter` or `--role auditor`',
    );
  // A call cut when the revocation list reloaded (or one from a certificate no longer valid), or one whose certificate
  // the coordinator never accepted.
  if (err.code === grpc.status.UNAUTHENTICATED)
    return new FedcreditError(
      ErrorCode.PERMISSION_DENIED,
      err.details,
      /no longer valid/.test(err.details)
        ? "the coordinator no longer accepts this identity's certificate (revoked or expired): ask the federation CA for a new one (`fedcredit pki request`, then `fedcredit pki sign` at the CA)"
        : "use an identity (--identity) whose certificate this federation's CA signed (`fedcredit pki request`, then `fedcredit pki sign` at the CA)",
    );
  // The coordinator's refusal already carries the code, the fields and the fix.
  if (err.code === grpc.status.INVALID_ARGUMENT) return new FedcreditError(ErrorCode.CONFIG_INVALID, err.details.replace(/^FC_CONFIG_INVALID: /, ''));
  return new FedcreditError(ErrorCode.JOB_FAILED, `${grpc.status[err.code]}: ${err.details}`);
}

export class CoordinatorClient {
  private readonly raw: RawClient;

  constructor(
    readonly address: string,
    transport: Transport,
    /** Where the address came from (--coordinator, a config, the environment), named when it cannot be reached. */
    readonly addressSource?: string,
  ) {
    this.raw = dialed(Client, address, transport, { ...CHANNEL_OPTIONS }) as unknown as RawClient;
  }

  private unary<T>(method: 'submitJob' | 'getJob', request: object, timeoutMs = 30_000): Promise<T> {
    return new Promise((resolve, reject) => {
      (this.raw[method] as unknown as (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<T>) => void).call(
        this.raw,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, value) => (err ? reject(fromServiceError(err, this.address, this.addressSource)) : resolve(value as T)),
      );
    });
  }

  async submitJob(specYaml: string, submitter: string): Promise<string> {
    return (await this.unary<SubmitJobResponse>('submitJob', { specYaml, submitter })).jobId;
  }

  getJob(jobId: string): Promise<JobStatus> {
    return this.unary<JobStatus>('getJob', { jobId });
  }

  /** Stream a job's events to `onEvent`; resolves with the last event when the job ends. */
  watchJob(jobId: string, onEvent: (e: JobEvent) => void): Promise<JobEvent> {
    return new Promise((resolve, reject) => {
      let last: JobEvent | undefined;
      const call = this.raw.watchJob({ jobId });
      call.on('data', (e: JobEvent) => {
        last = e;
        onEvent(e);
      });
      call.on('error', (err: grpc.ServiceError) => reject(fromServiceError(err, this.address, this.addressSource)));
      call.on('end', () => (last ? resolve(last) : reject(new FedcreditError(ErrorCode.UNAVAILABLE, `the coordinator closed the watch of ${jobId} without events`))));
    });
  }

  downloadModel(jobId: string): Promise<ArtifactFiles> {
    return new Promise((resolve, reject) => {
      const joiner = new ChunkJoiner();
      let whole: Uint8Array | undefined;
      const call = this.raw.downloadModel({ jobId });
      call.on('data', (c: Chunk) => {
        try {
          whole = joiner.accept(c) ?? whole;
        } catch (err) {
          call.cancel();
          reject(err);
        }
      });
      call.on('error', (err: grpc.ServiceError) => {
        if (err.code !== grpc.status.CANCELLED) reject(fromServiceError(err, this.address, this.addressSource));
      });
      call.on('end', () => {
        if (!whole) return reject(new FedcreditError(ErrorCode.PROTOCOL, `the model of ${jobId} arrived incomplete`, 'download it again'));
        resolve(unpackArtifact(whole));
      });
    });
  }

  /** An auditor's copy of the coordinator's ledger folder, written to `outDir`; resolves with the files written. */
  readLedger(outDir: string): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const joiner = new ChunkJoiner();
      const written: string[] = [];
      const call = this.raw.readLedger({});
      call.on('data', (c: Chunk) => {
        try {
          const whole = joiner.accept(c);
          if (!whole) return;
          const target = resolvePath(outDir, c.transferId);
          if (c.transferId.startsWith('/') || !target.startsWith(resolvePath(outDir) + sep))
            throw new FedcreditError(ErrorCode.PROTOCOL, `the coordinator sent a file outside the ledger folder: ${c.transferId}`, 'report this coordinator');
          mkdirSync(dirname(target), { recursive: true });
          writeFileSync(target, whole);
          written.push(c.transferId);
        } catch (err) {
          call.cancel();
          reject(err);
        }
      });
      call.on('error', (err: grpc.ServiceError) => {
        if (err.code !== grpc.status.CANCELLED) reject(fromServiceError(err, this.address, this.addressSource));
      });
      call.on('end', () => resolve(written));
    });
  }

  close(): void {
    this.raw.close();
  }
}
