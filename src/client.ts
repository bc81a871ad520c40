/**
 * The submitter's client: submit a job, watch its progress, fetch its status and published model. Used by
 * `fedcredit job ...` and by the demo.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve as resolvePath, sep } from 'node:path';
import { ErrorCode, FedcreditError } from './errors.js';
import { coordinatorServiceDefinition, CHANNEL_OPTIONS } from './wire/proto.js';
import { ChunkJoiner } from './wire/framing.js';
import { unpackArtifact, type ArtifactFiles } from './model/artifact.js';
import type { Chunk, JobEvent, JobStatus, SubmitJobResponse } from './wire/messages.js';
import { dialed, type Transport } from './wire/transport.js';

const Client = grpc.makeGenericClientConstructor(coordinatorServiceDefinition(), 'Coordinator');

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;
interface RawClient extends grpc.Client {
  submitJob(req: object, cb: Callback<SubmitJobResponse>): void;
  getJob(req: object, cb: Callback<JobStatus>): void;
  watchJob(req: object): grpc.ClientReadableStream<JobEvent>;
  downloadModel(req: object): grpc.ClientReadableStream<Chunk>;
  readLedger(req: object): grpc.ClientReadableStream<Chunk>;
}

function fromServiceError(err: grpc.ServiceError, address: string): FedcreditError {
  if (err.code === grpc.status.UNAVAILABLE) {
    return new FedcreditError(ErrorCode.UNAVAILABLE, `cannot reach the coordinator at ${address}: ${err.details}`, 'check that `fedcredit coordinator` is running and the address (--coordinator) is right');
  }
  if (err.code === grpc.status.NOT_FOUND) return new FedcreditError(ErrorCode.NOT_FOUND, err.details, 'check the job id (`fedcredit job status`)');
  if (err.code === grpc.status.PERMISSION_DENIED) return new FedcreditError(ErrorCode.PERMISSION_DENIED, err.details, 'use an identity (--identity) whose certificate has the role this needs: `fedcredit pki issue --role submitter` or `--role auditor`');
  // The coordinator's refusal already carries the code, the fields and the fix.
  if (err.code === grpc.status.INVALID_ARGUMENT) return new FedcreditError(ErrorCode.CONFIG_INVALID, err.details.replace(/^FC_CONFIG_INVALID: /, ''));
  return new FedcreditError(ErrorCode.JOB_FAILED, `${grpc.status[err.code]}: ${err.details}`);
}

export class CoordinatorClient {
  private readonly raw: RawClient;

  constructor(
    readonly address: string,
    transport: Transport,
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
        (err, value) => (err ? reject(fromServiceError(err, this.address)) : resolve(value as T)),
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
      call.on('error', (err: grpc.ServiceError) => reject(fromServiceError(err, this.address)));
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
        if (err.code !== grpc.status.CANCELLED) reject(fromServiceError(err, this.address));
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
          if (c.transferId.startsWith('/') || !target.startsWith(resolvePath(outDir) + sep)) throw new FedcreditError(ErrorCode.PROTOCOL, `the coordinator sent a file outside the ledger folder: ${c.transferId}`, 'report this coordinator');
          mkdirSync(dirname(target), { recursive: true });
          writeFileSync(target, whole);
          written.push(c.transferId);
        } catch (err) {
          call.cancel();
          reject(err);
        }
      });
      call.on('error', (err: grpc.ServiceError) => {
        if (err.code !== grpc.status.CANCELLED) reject(fromServiceError(err, this.address));
      });
      call.on('end', () => resolve(written));
    });
  }

  close(): void {
    this.raw.close();
  }
}
