/** Worker thread of the PSI blinding pool (see ecdh.ts): blinds each task's points in place and sends them back. */
import { parentPort } from 'node:worker_threads';
import type { BlindReply, BlindTask } from './ecdh.js';
import { blindInPlace } from './x25519.js';

if (!parentPort) throw new Error('blind-worker runs as a worker thread of the PSI blinding pool');
const port = parentPort;

port.on('message', ({ scalar, backend, points }: BlindTask) => {
  let reply: BlindReply;
  try {
    reply = { points, lowOrderIndex: blindInPlace(scalar, new Uint8Array(points), backend) };
  } catch (err) {
    port.postMessage({ error: err instanceof Error ? err.message : String(err) } satisfies BlindReply);
    return;
  }
  port.postMessage(reply, [points]);
});
