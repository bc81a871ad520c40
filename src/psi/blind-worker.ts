/** Worker thread of the PSI blinding pool (see ecdh.ts): blinds each task's points in place and sends them back. */
import { parentPort } from 'node:worker_threads';
import { blindInPlace, type BlindReply, type BlindTask } from './ecdh.js';

if (!parentPort) throw new Error('blind-worker runs as a worker thread of the PSI blinding pool');
const port = parentPort;

port.on('message', ({ key, points }: BlindTask) => {
  let reply: BlindReply;
  try {
    reply = { points, lowOrderIndex: blindInPlace(key, new Uint8Array(points)) };
  } catch (err) {
    port.postMessage({ error: err instanceof Error ? err.message : String(err) } satisfies BlindReply);
    return;
  }
  port.postMessage(reply, [points]);
});
