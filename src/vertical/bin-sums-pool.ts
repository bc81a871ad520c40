/**
 * Worker threads that share a host's per-bin sums (BinSums) by chunks of rows: worker w computes the chunks c with
 * c ≡ w (mod threads) of each sum, in its own SEAL context (src/vertical/bin-sums-worker.ts), keeps their diagonals if asked, and
 * returns its unmasked part of every sum; the host's thread adds the parts and the mask (VerticalGradient.sumBinSums).
 * The parts never leave the host: only the masked sums go to the guest.
 */
import { Worker } from 'node:worker_threads';
import { ErrorCode, FedcreditError } from '../errors.js';
import type { CkksParams } from '../he/params.js';

/** What a worker is started with: the engine's parameters, the host's bins by group, and its chunks. */
export interface BinSumsWorkerData {
  params: CkksParams;
  groups: { bins: Uint16Array[]; binCounts: number[] }[];
  keep: boolean;
  /** This worker computes the chunks c ≡ worker (mod threads). */
  worker: number;
  threads: number;
}

/** One request: the guest's values (only the worker's chunks filled), the Galois keys when they changed, the rows summed over. */
export interface BinSumsRequest {
  values: Uint8Array[][];
  galoisKeys: Uint8Array | null;
  rows: Uint32Array | null;
}

export type BinSumsReply = { sums: Uint8Array[][] | null } | { error: string };

/**
 * The worker's module: compiled JavaScript next to this file, or, when this file runs as TypeScript source (the
 * tests), the .ts source run by Node's type transform with `.js` imports resolved to `.ts`.
 */
function workerModule(): { url: URL; execArgv?: string[] } {
  if (!import.meta.url.endsWith('.ts')) return { url: new URL('./bin-sums-worker.js', import.meta.url) };
  const resolveTs = 'export async function resolve(s,c,n){try{return await n(s,c)}catch(e){if(/^(\\.|file:)/.test(s)&&s.endsWith(".js"))return n(s.slice(0,-3)+".ts",c);throw e}}';
  const register = `import{register}from"node:module";register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(resolveTs)}`)});`;
  return {
    url: new URL('./bin-sums-worker.ts', import.meta.url),
    execArgv: ['--experimental-transform-types', '--disable-warning=ExperimentalWarning', '--import', `data:text/javascript,${encodeURIComponent(register)}`],
  };
}

const workerFailed = (why: string) =>
  new FedcreditError(
    ErrorCode.JOB_FAILED,
    `a worker thread of this party's histograms failed: ${why}`,
    'each worker holds its own SEAL context and diagonals: free memory on this machine and restart the job',
  );

class BinSumsWorker {
  private readonly worker: Worker;
  private pending?: { resolve: (sums: Uint8Array[][] | null) => void; reject: (err: Error) => void };
  private failure?: Error;
  private sentKeys?: Uint8Array;

  constructor(data: BinSumsWorkerData) {
    const { url, execArgv } = workerModule();
    this.worker = new Worker(url, { workerData: data, ...(execArgv ? { execArgv } : {}) });
    this.worker.on('message', (reply: BinSumsReply) => {
      const pending = this.pending;
      this.pending = undefined;
      if ('error' in reply) pending?.reject(workerFailed(reply.error));
      else pending?.resolve(reply.sums);
    });
    const fail = (err: Error) => {
      this.failure = err;
      this.pending?.reject(err);
      this.pending = undefined;
    };
    this.worker.on('error', (err) => fail(workerFailed(err.message)));
    this.worker.on('exit', (code) => fail(workerFailed(`it exited with code ${code}`)));
  }

  sums(values: Uint8Array[][], galoisKeys: Uint8Array, rows: Uint32Array | undefined): Promise<Uint8Array[][] | null> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new RangeError('a per-bin sums worker got a request before answering the last one'));
    const request: BinSumsRequest = { values, galoisKeys: this.sentKeys === galoisKeys ? null : galoisKeys, rows: rows ?? null };
    this.sentKeys = galoisKeys;
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(request);
    });
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

export class BinSumsPool {
  private readonly workers: BinSumsWorker[];

  constructor(
    params: CkksParams,
    groups: readonly { bins: readonly Uint16Array[]; binCounts: readonly number[] }[],
    keep: boolean,
    readonly threads: number,
  ) {
    const shared = groups.map((g) => ({ bins: [...g.bins], binCounts: [...g.binCounts] }));
    this.workers = Array.from({ length: threads }, (_, w) => {
      return new BinSumsWorker({ params, groups: shared, keep, worker: w, threads });
    });
  }

  /** Each worker's unmasked part of every sum ([value][group]), null for a worker with no chunk of these rows. */
  parts(values: Uint8Array[][], galoisKeys: Uint8Array, rows: Uint32Array | undefined): Promise<(Uint8Array[][] | null)[]> {
    const empty = new Uint8Array(0);
    return Promise.all(
      this.workers.map((worker, w) =>
        worker.sums(
          values.map((chunks) => chunks.map((chunk, c) => (c % this.threads === w ? chunk : empty))),
          galoisKeys,
          rows,
        ),
      ),
    );
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
