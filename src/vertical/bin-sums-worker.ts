/**
 * A worker thread of BinSumsPool: its own CKKS engine and BinSums over the host's bins, answering each request with
 * its unmasked part of every per-bin sum over its chunks (BinSums.chunkSums).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CkksEngine } from '../he/engine.js';
import type { BinSumsReply, BinSumsRequest, BinSumsWorkerData } from './bin-sums-pool.js';
import { BinSums } from './label-sums.js';

const data = workerData as BinSumsWorkerData;
const port = parentPort!;
const engine = await CkksEngine.create(data.params);
const kernel = new BinSums(engine, data.groups, { keep: data.keep });
let galoisKeys: Uint8Array | undefined;

port.on('message', (request: BinSumsRequest) => {
  let reply: BinSumsReply;
  try {
    galoisKeys = request.galoisKeys ?? galoisKeys;
    if (!galoisKeys) throw new Error('no Galois keys were sent');
    const keys = galoisKeys;
    reply = {
      sums: request.nodes.map(({ ids, values, rows, base, repeats }) => (ids.length > 0 ? kernel.chunkSums(ids, { values, rows: rows ?? undefined, base: base ?? undefined, repeats }, keys) : null)),
    };
  } catch (err) {
    reply = { error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply, 'sums' in reply ? reply.sums.flatMap((node) => (node ? node.flat().map((b) => b.buffer as ArrayBuffer) : [])) : []);
});
