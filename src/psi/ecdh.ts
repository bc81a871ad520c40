/**
 * Building blocks of ECDH private set intersection (Meadows / Huberman-Franklin-Hogg): each party hashes its ids
 * to points and blinds them with a secret scalar; the other party blinds them again; ids held by both end up as
 * equal doubly-blinded values, and nothing else can be compared.
 *
 * The group operation is X25519 (RFC 7748), from libsodium or OpenSSL (x25519.ts). A SHA-256 hash with the top bit
 * cleared is used directly as a u-coordinate: about half of all u are points of Curve25519, the others are points of
 * its quadratic twist. X25519 is a Montgomery ladder on u alone, so for every u, X25519(a, X25519(b, u)) equals
 * X25519(b, X25519(a, u)) (multiplication by clamped scalars commutes on the u-line), and because Curve25519 is
 * twist-secure, discrete logarithms are as hard on the twist as on the curve: blinding a twist point leaks nothing
 * about the scalar. Clamped scalars are multiples of the cofactor 8, so u-coordinates that differ by a low-order
 * component blind to the same value; finding two ids whose hashes do that is as hard as breaking SHA-256.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { rawPrivateKey } from '../crypto/raw-keys.js';
import { packageRoot } from '../paths.js';
import { idDigest } from '../data/id-buckets.js';
import { asBuffer, sha256 } from '../bytes.js';
import { blindInPlace, POINT_BYTES, pointCount, SCALAR_BYTES, x25519Backend, type X25519Backend } from './x25519.js';

export { POINT_BYTES };

/** Below this many points blinding runs on the calling thread; above it, on the worker pool. */
const WORKER_MIN_POINTS = 2048;
/** Points per message to a worker (2 MiB): large enough to amortise messaging, small enough to balance load. */
const MAX_CHUNK_POINTS = 65_536;

/**
 * The curve points of ids given by their 32-byte digests (idDigest), one per `stride`-byte record of `records`:
 * packed n x 32 bytes of SHA-256(salt || 0x00 || digest), each with the top bit of byte 31 cleared.
 */
export function pointsOfDigests(salt: Uint8Array, records: Uint8Array, stride = POINT_BYTES): Buffer {
  if (records.length % stride !== 0) throw new RangeError(`records of ${stride} bytes expected, got a length of ${records.length} bytes`);
  const n = records.length / stride;
  // salt || 0 || digest in one reused buffer, hashed one-shot: no hash object per id for the collector to free.
  const input = Buffer.alloc(salt.length + 1 + POINT_BYTES);
  input.set(salt);
  const source = asBuffer(records);
  const out = Buffer.allocUnsafe(n * POINT_BYTES);
  for (let i = 0; i < n; i++) {
    const offset = i * POINT_BYTES;
    source.copy(input, salt.length + 1, i * stride, i * stride + POINT_BYTES);
    sha256(input).copy(out, offset);
    out[offset + POINT_BYTES - 1]! &= 0x7f;
  }
  return out;
}

/** The points of normalised ids (pointsOfDigests of their digests): what tests and tools check the wire against. */
export function hashIds(salt: Uint8Array, ids: readonly string[]): Buffer {
  return pointsOfDigests(salt, Buffer.concat(ids.map(idDigest)));
}

function lowOrderPointError(index: number): Error {
  return new Error(`point ${index} is a low-order point (X25519 with it gives the all-zero value): the peer sent a low-order point`);
}

/** A message to blind-worker; `points` is transferred, blinded in place and transferred back. */
export interface BlindTask {
  scalar: Uint8Array;
  backend: X25519Backend;
  points: ArrayBuffer;
}

export type BlindReply = { points: ArrayBuffer; lowOrderIndex: number } | { error: string };

// ---------------------------------------------------------------------------------------------------------------
// Worker pool
// ---------------------------------------------------------------------------------------------------------------

interface QueuedTask {
  task: BlindTask;
  resolve: (reply: { points: ArrayBuffer; lowOrderIndex: number }) => void;
  reject: (err: Error) => void;
}

/**
 * Threads running blind-worker, one task each at a time. An idle worker is unref()ed, so the pool never keeps the
 * process alive; a busy one is ref()ed, so that a process awaiting a blinding does not exit under it.
 */
class BlindPool {
  private readonly workers = new Map<Worker, QueuedTask | null>();
  private readonly queue: QueuedTask[] = [];
  private size = 0;

  constructor(private readonly script: string) {}

  /** Makes sure the pool has at least `size` workers from now on. */
  grow(size: number): void {
    this.size = Math.max(this.size, size);
  }

  run(task: BlindTask): Promise<{ points: ArrayBuffer; lowOrderIndex: number }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    const closed = new Error('the PSI worker pool was closed');
    for (const queued of this.queue.splice(0)) queued.reject(closed);
    for (const current of this.workers.values()) current?.reject(closed);
    const workers = [...this.workers.keys()];
    this.workers.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private dispatch(): void {
    while (this.workers.size < this.size && this.queue.length > 0) this.spawn();
    for (const [worker, current] of this.workers) {
      if (this.queue.length === 0) return;
      if (current) continue;
      const next = this.queue.shift()!;
      this.workers.set(worker, next);
      worker.ref();
      worker.postMessage(next.task, [next.task.points]);
    }
  }

  private spawn(): void {
    const worker = new Worker(this.script);
    worker.unref();
    this.workers.set(worker, null);
    worker.on('message', (reply: BlindReply) => {
      const current = this.finish(worker);
      if ('error' in reply) current?.reject(new Error(`PSI blind worker: ${reply.error}`));
      else current?.resolve(reply);
      this.dispatch();
    });
    worker.on('error', (err) => this.finish(worker)?.reject(new Error(`PSI blind worker failed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (!this.workers.has(worker)) return; // closed
      this.finish(worker)?.reject(new Error(`PSI blind worker exited with code ${code}`));
      this.workers.delete(worker);
      this.dispatch();
    });
  }

  private finish(worker: Worker): QueuedTask | null {
    const current = this.workers.get(worker) ?? null;
    if (this.workers.has(worker)) this.workers.set(worker, null);
    worker.unref();
    return current;
  }
}

let sharedPool: BlindPool | undefined;

function blindPool(threads: number): BlindPool {
  if (!sharedPool) {
    // Workers run compiled JavaScript even when the caller runs TypeScript sources (vitest).
    const script = join(packageRoot(), 'dist', 'src', 'psi', 'blind-worker.js');
    if (!existsSync(script)) throw new Error(`the PSI worker script ${script} is missing: run npm run build`);
    sharedPool = new BlindPool(script);
  }
  sharedPool.grow(threads);
  return sharedPool;
}

/** Terminates the shared blinding workers (the next blinding on workers starts new ones). */
export async function closePsiWorkers(): Promise<void> {
  const pool = sharedPool;
  sharedPool = undefined;
  await pool?.close();
}

function copyToArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

/** Splits the points into equal chunks, a multiple of `threads` of them, and keeps `threads` chunks in flight. */
async function blindOnWorkers(scalar: Uint8Array, backend: X25519Backend, points: Buffer, threads: number): Promise<Buffer> {
  const pool = blindPool(threads);
  const n = points.length / POINT_BYTES;
  const chunks = Math.ceil(Math.ceil(n / MAX_CHUNK_POINTS) / threads) * threads;
  const chunkPoints = Math.ceil(n / chunks);
  const out = Buffer.allocUnsafe(points.length);
  let nextChunk = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && nextChunk * chunkPoints < n) {
      const first = nextChunk++ * chunkPoints;
      const start = first * POINT_BYTES;
      const end = Math.min(n, first + chunkPoints) * POINT_BYTES;
      try {
        const reply = await pool.run({ scalar, backend, points: copyToArrayBuffer(points.subarray(start, end)) });
        if (reply.lowOrderIndex >= 0) throw lowOrderPointError(first + reply.lowOrderIndex);
        out.set(new Uint8Array(reply.points), start);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(threads, chunks) }, lane));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------------------------

export interface PsiKeyOptions {
  /** Worker threads for large blindings; default `Math.max(1, os.availableParallelism())`. */
  threads?: number;
}

function threadCount(opts: PsiKeyOptions): number {
  const threads = opts.threads ?? Math.max(1, availableParallelism());
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  return threads;
}

/**
 * The scalar in a buffer of its own: small decoded buffers share Node's pool, and posting a view to a worker would
 * copy the whole pool with it.
 */
function ownScalar(bytes: Buffer): Buffer {
  const scalar = Buffer.alloc(SCALAR_BYTES);
  bytes.copy(scalar);
  return scalar;
}

/** A party's secret blinding scalar for one PSI job. */
export class PsiKey {
  private constructor(
    private readonly scalar: Buffer,
    private readonly threads: number,
  ) {}

  static generate(opts: PsiKeyOptions = {}): PsiKey {
    return new PsiKey(ownScalar(rawPrivateKey(generateKeyPairSync('x25519').privateKey)), threadCount(opts));
  }

  /** The key whose `exportSecret()` gave `secret`: a participant persists it to resume a job after a crash. */
  static fromSecret(secret: string, opts: PsiKeyOptions = {}): PsiKey {
    const scalar = Buffer.from(secret, 'base64url');
    if (scalar.length !== SCALAR_BYTES || scalar.toString('base64url') !== secret) {
      throw new RangeError('a PSI secret is 32 bytes in unpadded base64url (43 characters)');
    }
    return new PsiKey(ownScalar(scalar), threadCount(opts));
  }

  /** The scalar in unpadded base64url (as the `d` of a JWK would hold it). Secret: store it like a private key. */
  exportSecret(): string {
    return this.scalar.toString('base64url');
  }

  /**
   * X25519(secret, point) for each packed 32-byte point, in order; the input is not modified. `backend` defaults to
   * the process's (x25519Backend()).
   */
  async blind(points: Uint8Array, backend: X25519Backend = x25519Backend()): Promise<Buffer> {
    const input = asBuffer(points);
    const n = pointCount(input, 'blind() input');
    if (n >= WORKER_MIN_POINTS) return blindOnWorkers(this.scalar, backend, input, this.threads);
    const out = Buffer.from(input);
    const lowOrderIndex = blindInPlace(this.scalar, out, backend);
    if (lowOrderIndex >= 0) throw lowOrderPointError(lowOrderIndex);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------------------------------

function sameValue(a: Buffer, aOffset: number, b: Buffer, bOffset: number): boolean {
  return a.readUInt32LE(aOffset) === b.readUInt32LE(bOffset) && a.compare(b, bOffset, bOffset + POINT_BYTES, aOffset, aOffset + POINT_BYTES) === 0;
}

/**
 * An open-addressing (linear probing) table of the records of `values` (`stride` bytes each, starting with a 32-byte
 * blinded value), keyed by each value's first 4 bytes: 4 bytes per slot at load <= 1/2.
 */
export class BlindedIndex {
  private readonly slots: Int32Array; // record index + 1; 0 = empty
  private readonly mask: number;

  constructor(
    private readonly values: Buffer,
    private readonly stride = POINT_BYTES,
  ) {
    const n = values.length / stride;
    this.mask = 2 ** Math.max(1, Math.ceil(Math.log2(2 * n))) - 1;
    this.slots = new Int32Array(this.mask + 1);
    for (let i = 0; i < n; i++) {
      const slot = this.slotOf(values, i * stride);
      if (this.slots[slot] === 0) this.slots[slot] = i + 1;
    }
  }

  /** The index of the first record whose value equals the 32 bytes at `offset` in `buf`, or -1. */
  find(buf: Buffer, offset: number): number {
    return this.slots[this.slotOf(buf, offset)]! - 1;
  }

  /** The slot holding a value equal to the 32 bytes at `offset` in `buf`, or the empty slot where it would go. */
  private slotOf(buf: Buffer, offset: number): number {
    for (let slot = buf.readUInt32LE(offset) & this.mask; ; slot = (slot + 1) & this.mask) {
      const entry = this.slots[slot]!;
      if (entry === 0 || sameValue(buf, offset, this.values, (entry - 1) * this.stride)) return slot;
    }
  }
}
