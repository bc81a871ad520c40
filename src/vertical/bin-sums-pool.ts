/**
 * Worker threads that share a host's per-bin sums (BinSums) by chunks of rows: the chunks of a request's nodes go to
 * the workers in turn, each computes its chunks in its own SEAL context (src/vertical/bin-sums-worker.ts), keeps their diagonals if asked, and
 * returns its unmasked part of every sum; the host's thread adds the parts and the mask (VerticalGradient.sumBinSums).
 * The parts never leave the host: only the masked sums go to the guest.
 */
import { Worker } from 'node:worker_threads';
import { ErrorCode, FedcreditError } from '../errors.js';
import type { CkksParams } from '../he/params.js';

/** What a worker is started with: the engine's parameters, the host's bins by group, and whether it keeps the diagonals of the first rows asked. */
export interface BinSumsWorkerData {
  params: CkksParams;
  groups: { bins: Uint16Array[]; binCounts: number[] }[];
  keep: boolean;
}

/** Rows whose chunks a node's values come in, and which of them are the node's (label-sums.ts: membership, NodeValues). */
export interface BaseRows {
  rows: Uint32Array;
  inside: Uint8Array;
}

/**
 * One request: per node, the chunks this worker sums (`ids`), the guest's values (only those chunks filled), the
 * rows summed over and their base with its membership (NodeValues); the Galois keys when they changed.
 */
export interface BinSumsRequest {
  nodes: { ids: number[]; values: Uint8Array[][]; rows: Uint32Array | null; base: BaseRows | null; repeats: number }[];
  galoisKeys: Uint8Array | null;
}

/** Per node, the worker's unmasked part of every sum ([value][group]), null for a node it has no chunk of. */
export type BinSumsReply = { sums: (Uint8Array[][] | null)[] } | { error: string };

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
  private pending?: { resolve: (sums: (Uint8Array[][] | null)[]) => void; reject: (err: Error) => void };
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

  sums(nodes: BinSumsRequest['nodes'], galoisKeys: Uint8Array): Promise<(Uint8Array[][] | null)[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new RangeError('a per-bin sums worker got a request before answering the last one'));
    const request: BinSumsRequest = { nodes, galoisKeys: this.sentKeys === galoisKeys ? null : galoisKeys };
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
    this.workers = Array.from({ length: threads }, () => new BinSumsWorker({ params, groups: shared, keep }));
  }

  /**
   * Each node's unmasked parts of every sum ([node][part][value][group]) over its chunks `ids[node]`, one part per
   * worker that had a chunk of it. A node's own chunks, in order, go to the workers in turn, continuing from the
   * last node's, so every worker gets its share of a level of one-chunk nodes; a chunk of a node's base goes to
   * worker (chunk mod threads), the worker that got it, and kept its diagonals, when the base was asked as a node
   * (the root: the first node of its request).
   */
  async parts(
    nodes: readonly { values: Uint8Array[][]; rows?: Uint32Array; base?: BaseRows; repeats?: number }[],
    ids: readonly (readonly number[])[],
    galoisKeys: Uint8Array,
  ): Promise<Uint8Array[][][][]> {
    const empty = new Uint8Array(0);
    let next = 0;
    const owners = nodes.map(({ base }, n) => new Map(ids[n]!.map((c) => [c, base ? c % this.threads : next++ % this.threads])));
    const replies = await Promise.all(
      this.workers.map((worker, w) =>
        worker.sums(
          nodes.map(({ values, rows, base, repeats }, n) => {
            const mine = ids[n]!.filter((c) => owners[n]!.get(c) === w);
            return {
              ids: mine,
              values: values.map((chunks) => chunks.map((chunk, c) => (owners[n]!.get(c) === w ? chunk : empty))),
              // A worker with no chunk of this node needs none of its rows.
              rows: mine.length > 0 ? (rows ?? null) : null,
              base: mine.length > 0 ? (base ?? null) : null,
              repeats: repeats ?? 1,
            };
          }),
          galoisKeys,
        ),
      ),
    );
    return nodes.map((_, n) => replies.map((reply) => reply[n]).filter((part): part is Uint8Array[][] => part !== null && part !== undefined));
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
