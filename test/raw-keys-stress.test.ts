/**
 * Issue 24: exporting X25519 keys as JWK deadlocked Node 20's crypto after 20,000-40,000 exports, and a deadlock
 * blocks the thread for good, so no deadline inside it fires. These tests run the project's key helper
 * (src/crypto/raw-keys.ts, compiled in dist/) tens of thousands of times in a worker thread watched from the main
 * thread: a worker that stops making progress fails the test quickly instead of timing out the suite.
 */
import { createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { privateKeyFromRaw, publicKeyFromRaw, rawPrivateKey, rawPublicKey } from '../src/crypto/raw-keys.js';
import { exportPrivateKey, generateBoxKeyPair, importPrivateKey, open, rawX25519PublicKey, seal, sharedSecret } from '../src/crypto/sealed-box.js';
import { packageRoot } from '../src/paths.js';

/** Key pairs generated and exported by the stress worker: the hang on Node 20 came within 20,000-40,000. */
const ITERATIONS = 100_000;
/** Progress is reported every PROGRESS_EVERY iterations (tens of milliseconds of work on a busy machine). */
const PROGRESS_EVERY = 1_000;
/** A worker silent this long is hung: 1,000 iterations take well under a second even on a loaded 2-core box. */
const STALL_MS = 20_000;
/** And the whole run must finish within this bound, whatever its progress. */
const TOTAL_MS = 180_000;

/**
 * Generates ITERATIONS X25519 key pairs and exports both keys through the helper; every 97th pair also checks that
 * export → import → export gives the same bytes and that Node's own key agreement agrees on both kinds of key.
 */
const STRESS_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { diffieHellman, generateKeyPairSync } = require('node:crypto');
(async () => {
  const keys = await import(workerData.helper);
  const peer = generateKeyPairSync('x25519');
  const peerRaw = keys.rawPublicKey(peer.publicKey);
  let checked = 0;
  for (let i = 1; i <= workerData.iterations; i++) {
    const { publicKey, privateKey } = generateKeyPairSync('x25519');
    const pub = keys.rawPublicKey(publicKey);
    const priv = keys.rawPrivateKey(privateKey);
    if (pub.length !== 32 || priv.length !== 32) throw new Error('iteration ' + i + ': a raw key is not 32 bytes');
    if (i % 97 === 0) {
      const pubAgain = keys.rawPublicKey(keys.publicKeyFromRaw('x25519', pub));
      const privKey = keys.privateKeyFromRaw('x25519', priv);
      if (!pubAgain.equals(pub) || !keys.rawPrivateKey(privKey).equals(priv) || !keys.rawPublicKey(privKey).equals(pub)) {
        throw new Error('iteration ' + i + ': export -> import -> export changed the bytes');
      }
      const expected = diffieHellman({ privateKey, publicKey: peer.publicKey });
      const viaRaw = diffieHellman({ privateKey: privKey, publicKey: keys.publicKeyFromRaw('x25519', peerRaw) });
      const otherWay = diffieHellman({ privateKey: peer.privateKey, publicKey: keys.publicKeyFromRaw('x25519', pub) });
      if (!viaRaw.equals(expected) || !otherWay.equals(expected)) throw new Error('iteration ' + i + ': key agreement through raw keys differs from Node\\'s');
      checked++;
    }
    if (i % workerData.progressEvery === 0) parentPort.postMessage({ done: i });
  }
  parentPort.postMessage({ finished: workerData.iterations, checked });
})().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }));
`;

/** A worker that blocks its thread for good, as the deadlock did. */
const HANGING_WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.postMessage({ done: 1 });
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
`;

type Outcome = { kind: 'finished'; iterations: number; checked: number; ms: number } | { kind: 'hung'; lastDone: number; ms: number } | { kind: 'failed'; error: string };

/**
 * Runs `code` in a worker and watches it from this thread: `hung` when it reports no progress for `stallMs` or does
 * not finish within `totalMs`. A hung worker is asked to terminate but not waited for (a thread stuck in a native
 * lock may never stop).
 */
function watched(code: string, workerData: object, stallMs: number, totalMs: number): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const worker = new Worker(code, { eval: true, workerData });
    let lastDone = 0;
    let stall: NodeJS.Timeout;
    const settle = (outcome: Outcome) => {
      clearTimeout(stall);
      clearTimeout(total);
      worker.removeAllListeners();
      worker.on('error', () => undefined);
      resolve(outcome);
    };
    const hung = () => {
      worker.unref();
      void worker.terminate().catch(() => undefined);
      settle({ kind: 'hung', lastDone, ms: Date.now() - started });
    };
    const armStall = () => {
      clearTimeout(stall);
      stall = setTimeout(hung, stallMs);
    };
    const total = setTimeout(hung, totalMs);
    armStall();
    worker.on('message', (m: { done?: number; finished?: number; checked?: number; error?: string }) => {
      if (m.error !== undefined) return settle({ kind: 'failed', error: m.error });
      if (m.finished !== undefined) return settle({ kind: 'finished', iterations: m.finished, checked: m.checked!, ms: Date.now() - started });
      lastDone = m.done!;
      armStall();
    });
    worker.on('error', (err) => settle({ kind: 'failed', error: err.stack ?? err.message }));
    worker.on('exit', (code) => settle({ kind: 'failed', error: `the worker exited with code ${code} before finishing` }));
  });
}

describe('raw X25519 keys (issue 24)', () => {
  it(`generates and exports ${ITERATIONS.toLocaleString('en')} key pairs in a watched worker without a hang, and the bytes round-trip`, async () => {
    const helper = join(packageRoot(), 'dist', 'src', 'crypto', 'raw-keys.js');
    expect(existsSync(helper), `${helper} is missing: run npm run build`).toBe(true);
    const outcome = await watched(STRESS_WORKER, { helper: pathToFileURL(helper).href, iterations: ITERATIONS, progressEvery: PROGRESS_EVERY }, STALL_MS, TOTAL_MS);
    if (outcome.kind === 'hung') {
      throw new Error(
        `key generation + export hung on Node ${process.version} after ${outcome.lastDone} iterations (no progress for ${STALL_MS / 1000}s, ${outcome.ms} ms in): a deadlock in the crypto the helper uses`,
      );
    }
    if (outcome.kind === 'failed') throw new Error(outcome.error);
    expect(outcome.iterations).toBe(ITERATIONS);
    expect(outcome.checked).toBe(Math.floor(ITERATIONS / 97));
    console.log(`raw-keys stress: ${ITERATIONS} X25519 key pairs generated and exported in ${outcome.ms} ms on Node ${process.version}`);
  });

  it('the watchdog reports a worker whose thread blocks for good as hung, within its bound', async () => {
    const outcome = await watched(HANGING_WORKER, {}, 1_000, 10_000);
    expect(outcome.kind).toBe('hung');
    expect(outcome.kind === 'hung' && outcome.ms).toBeLessThan(5_000);
  });

  it('raw keys agree with Node on both curves, and malformed lengths are refused', () => {
    const a = generateKeyPairSync('x25519');
    const b = generateKeyPairSync('x25519');
    const aPub = rawPublicKey(a.publicKey);
    expect(rawPublicKey(a.privateKey)).toEqual(aPub);
    expect(createPublicKey(a.privateKey).export({ format: 'der', type: 'spki' }).subarray(12)).toEqual(aPub);
    const aPriv = privateKeyFromRaw('x25519', rawPrivateKey(a.privateKey));
    expect(diffieHellman({ privateKey: aPriv, publicKey: publicKeyFromRaw('x25519', rawPublicKey(b.publicKey)) })).toEqual(diffieHellman({ privateKey: a.privateKey, publicKey: b.publicKey }));

    const ed = generateKeyPairSync('ed25519');
    const edPub = publicKeyFromRaw('ed25519', rawPublicKey(ed.publicKey));
    expect(edPub.asymmetricKeyType).toBe('ed25519');
    expect(edPub.equals(ed.publicKey)).toBe(true);
    expect(privateKeyFromRaw('ed25519', rawPrivateKey(ed.privateKey)).equals(ed.privateKey)).toBe(true);

    expect(() => publicKeyFromRaw('x25519', new Uint8Array(31))).toThrow(/32 bytes, got 31/);
    expect(() => rawPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)).toThrow(/X25519 or Ed25519/);
  });

  it('sealed boxes and pairwise secrets work through the helper, including a key restored from its PEM', () => {
    const recipient = generateBoxKeyPair();
    const restored = importPrivateKey(exportPrivateKey(recipient.privateKey));
    expect(rawX25519PublicKey(restored)).toEqual(recipient.publicKey);
    const box = seal(Buffer.from('ckks secret key'), recipient.publicKey, 'job-1/bank');
    expect(Buffer.from(open(box, { publicKey: rawX25519PublicKey(restored), privateKey: restored }, 'job-1/bank')).toString()).toBe('ckks secret key');
    const other = generateBoxKeyPair();
    expect(sharedSecret(recipient.privateKey, other.publicKey)).toEqual(sharedSecret(other.privateKey, recipient.publicKey));
  });
});
