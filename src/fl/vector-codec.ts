/**
 * How a vector travels in a secure sum: CKKS ciphertexts (the default) or float64 blocks (plaintext mode, for
 * comparison and debugging only). Both share one layout, slot-full blocks with a SHA-256 per block, so the
 * coordinator's code path is the same and benchmarks compare like with like.
 */
import type { PlaintextMask } from '../he/engine.js';
import type { CiphertextForm, HorizontalVectors } from '../he/horizontal.js';
import { blockCount, collectiveBound, collectiveLevel, TOP_LEVEL_ZSTD, type SumLayout } from '../he/packing.js';
import { sha256 } from '../bytes.js';
import { ErrorCode, FedcreditError } from '../errors.js';
import type { EncryptedVector, VectorScheme } from '../wire/messages.js';

const PLAINTEXT_FINGERPRINT = sha256('plaintext;float64le');
const PLAINTEXT_BLOCK = 4096;

function protocolError(message: string): FedcreditError {
  return new FedcreditError(ErrorCode.CIPHERTEXT_INVALID, message, 'the sending participant is faulty or runs another version; restart it');
}

export interface Keys {
  publicKey: Uint8Array;
  secretKey?: Uint8Array;
  /** The participant's per-job X25519 box key (PKCS#8 PEM): its contributions' pairwise masks are derived from it. */
  boxPrivateKey?: string;
}

export class VectorCodec {
  private constructor(
    readonly scheme: VectorScheme,
    private readonly vectors: HorizontalVectors | undefined,
    /** How contributions are encrypted: 'seeded' symmetric (one key), 'canonical' public-key (a collective key). */
    private readonly contributionForm: CiphertextForm = 'seeded',
  ) {}

  static plaintext(): VectorCodec {
    return new VectorCodec('plaintext', undefined);
  }

  static ckks(vectors: HorizontalVectors): VectorCodec {
    return new VectorCodec('ckks', vectors);
  }

  /** CKKS under a collective (threshold) key: contributions are public-key encryptions; no party can decrypt alone. */
  static ckksCollective(vectors: HorizontalVectors): VectorCodec {
    return new VectorCodec('ckks', vectors, 'canonical');
  }

  get fingerprint(): Uint8Array {
    return this.vectors ? this.vectors.engine.fingerprint : PLAINTEXT_FINGERPRINT;
  }

  /**
   * Where a sum of `purpose` travels: single key, fresh and zstd-compressed; under a collective key, uncompressed
   * at collectiveLevel(purpose).
   */
  private layoutOf(purpose: string | undefined): SumLayout {
    if (this.contributionForm !== 'canonical' || !this.vectors) return TOP_LEVEL_ZSTD;
    if (purpose === undefined) throw new Error('a sum under a collective key needs its purpose (it sets the level)');
    return { level: collectiveLevel(this.vectors.engine.params, purpose), uncompressed: true };
  }

  private get blockValues(): number {
    return this.vectors ? this.vectors.engine.slotCount : PLAINTEXT_BLOCK;
  }

  /**
   * `purpose` (the sum's) is needed under a collective key, where it sets the level (collectiveLevel); `mask`: CKKS
   * only, the pairwise masks of this contribution (src/fl/pairwise-mask.ts).
   */
  encode(values: Float64Array, keys?: Keys, purpose?: string, mask?: PlaintextMask): EncryptedVector {
    let blocks: Uint8Array[];
    if (this.vectors) {
      // Contributions are seeded symmetric encryptions (half the bytes, and checkable at the coordinator), or under a
      // collective key, whose secret no one holds, public-key encryptions.
      if (this.contributionForm === 'canonical') {
        if (!keys) throw new Error('CKKS contributions under a collective key need the collective public key');
        const layout = this.layoutOf(purpose);
        const bound = collectiveBound(this.vectors.engine.params, layout.level);
        const beyond = values.findIndex((v) => !(Math.abs(v) < bound));
        if (beyond >= 0) {
          throw new FedcreditError(
            ErrorCode.CKKS_PARAMS,
            `value ${values[beyond]} at position ${beyond} of this node's ${purpose} contribution is beyond ±${bound.toExponential(2)}, what a sum under the job's collective-key parameters can hold at level ${layout.level}`,
            'lower encryption.scale_bits or add modulus bits (encryption.coeff_modulus_bits), or check the data for extreme values',
          );
        }
        blocks = this.vectors.encryptVector(values, keys.publicKey, undefined, layout, mask);
      } else {
        if (!keys?.secretKey) throw new Error("CKKS contributions are encrypted with the job's secret key");
        blocks = this.vectors.encryptVector(values, keys.publicKey, keys.secretKey, undefined, mask);
      }
    } else {
      blocks = [];
      for (let start = 0; start < Math.max(1, values.length); start += PLAINTEXT_BLOCK) {
        const part = values.slice(start, Math.min(values.length, start + PLAINTEXT_BLOCK));
        blocks.push(new Uint8Array(part.buffer));
      }
    }
    return { scheme: this.scheme, length: values.length, blocks, paramsFingerprint: this.fingerprint, blockSha256: blocks.map(sha256) };
  }

  /**
   * Validate a received vector before anything else touches it: scheme, parameters, shape, per-block digests,
   * and (CKKS) that each block deserialises under the job's parameters in the expected form (`seeded` for a
   * participant's contribution, `canonical` for the coordinator's aggregate); (plaintext) that every value is finite.
   */
  check(vector: EncryptedVector, expectedLength: number, who: string, form: CiphertextForm = this.contributionForm): void {
    this.checkShape(vector, expectedLength, who);
    vector.blocks.forEach((block, i) => {
      if (this.vectors) this.vectors.checkCiphertext(block, form);
      else this.checkPlaintextBlock(block, i, expectedLength, who);
    });
  }

  /**
   * A participant's side of an aggregate: `check` it as `canonical` and decrypt it, deserialising each ciphertext
   * once for both.
   */
  open(vector: EncryptedVector, expectedLength: number, who: string, keys?: Keys): Float64Array {
    this.checkShape(vector, expectedLength, who);
    if (this.vectors) {
      if (!keys?.secretKey) throw new Error('CKKS decryption needs the secret key');
      return this.vectors.decryptVector(vector.blocks, vector.length, keys.secretKey, 'canonical');
    }
    vector.blocks.forEach((block, i) => this.checkPlaintextBlock(block, i, expectedLength, who));
    return this.decode(vector);
  }

  /** Scheme, parameters, length, block count and per-block digests. */
  private checkShape(vector: EncryptedVector, expectedLength: number, who: string): void {
    if (vector.scheme !== this.scheme) throw protocolError(`${who} sent a ${vector.scheme || 'unnamed'} vector to a ${this.scheme} job`);
    if (!Buffer.from(vector.paramsFingerprint).equals(Buffer.from(this.fingerprint))) {
      throw new FedcreditError(
        ErrorCode.CKKS_PARAMS,
        `${who} encrypted under CKKS parameters that differ from the job's`,
        "every participant must use the job's `encryption` section; restart that participant with the same fedcredit version",
      );
    }
    if (vector.length !== expectedLength) throw protocolError(`${who} sent a vector of ${vector.length} values, the job expects ${expectedLength}`);
    const blocks = blockCount(expectedLength, this.blockValues);
    if (vector.blocks.length !== blocks || vector.blockSha256.length !== blocks) throw protocolError(`${who} sent ${vector.blocks.length} blocks, the job expects ${blocks}`);
    vector.blocks.forEach((block, i) => {
      if (!Buffer.from(sha256(block)).equals(Buffer.from(vector.blockSha256[i]!))) throw protocolError(`block ${i} from ${who} does not match its SHA-256`);
    });
  }

  private checkPlaintextBlock(block: Uint8Array, i: number, expectedLength: number, who: string): void {
    const expectedBytes = 8 * Math.min(this.blockValues, expectedLength - i * this.blockValues);
    if (block.length !== expectedBytes) throw protocolError(`plaintext block ${i} from ${who} has ${block.length} bytes, expected ${expectedBytes}`);
    const values = toFloat64(block);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw protocolError(`plaintext block ${i} from ${who} holds a non-finite value (${values[bad]}) at position ${bad}`);
  }

  /**
   * The coordinator's intake of one secure sum: `add` checks a contribution as `check` does and takes it into the
   * sum (CKKS: each ciphertext is deserialised once, for both, and added at once); `remove` takes one back out;
   * `result` is what `sum` returns for the vectors taken, added in the given order (the contributors, each once:
   * float64 sums depend on the order, CKKS sums do not). dispose() frees the running CKKS sum.
   */
  startSum(expectedLength: number, purpose?: string): SumIntake {
    const taken = new Map<string, EncryptedVector>();
    const running = this.vectors?.runningSum(blockCount(expectedLength, this.blockValues), this.contributionForm, this.layoutOf(purpose));
    return {
      add: (vector, who) => {
        this.checkShape(vector, expectedLength, who);
        if (running) running.add(vector.blocks);
        else vector.blocks.forEach((block, i) => this.checkPlaintextBlock(block, i, expectedLength, who));
        taken.set(who, vector);
      },
      remove: (who) => {
        const vector = taken.get(who);
        if (!vector) return;
        taken.delete(who);
        running?.subtract(vector.blocks);
      },
      result: (order) => {
        if (!running)
          return this.sum(
            order.map((who) => taken.get(who)!),
            purpose,
          );
        const blocks = running.result();
        return { scheme: this.scheme, length: expectedLength, blocks, paramsFingerprint: this.fingerprint, blockSha256: blocks.map(sha256) };
      },
      dispose: () => running?.dispose(),
    };
  }

  /**
   * Sum vectors already checked with `check`, of a sum of `purpose` (needed under a collective key). The coordinator
   * runs this, and the auditor's replay; for CKKS it needs no key.
   */
  sum(vectors: EncryptedVector[], purpose?: string): EncryptedVector {
    const length = vectors[0]!.length;
    let blocks: Uint8Array[];
    if (this.vectors) {
      blocks = this.vectors.sumVectors(
        vectors.map((v) => v.blocks),
        this.layoutOf(purpose),
      );
    } else {
      blocks = vectors[0]!.blocks.map((_, b) => {
        const acc = new Float64Array(toFloat64(vectors[0]!.blocks[b]!));
        for (const v of vectors.slice(1)) {
          const next = toFloat64(v.blocks[b]!);
          for (let i = 0; i < acc.length; i++) acc[i]! += next[i]!;
        }
        return new Uint8Array(acc.buffer);
      });
    }
    return { scheme: this.scheme, length, blocks, paramsFingerprint: this.fingerprint, blockSha256: blocks.map(sha256) };
  }

  decode(vector: EncryptedVector, keys?: Keys): Float64Array {
    if (this.vectors) {
      if (!keys?.secretKey) throw new Error('CKKS decryption needs the secret key');
      return this.vectors.decryptVector(vector.blocks, vector.length, keys.secretKey);
    }
    const out = new Float64Array(vector.length);
    let offset = 0;
    for (const block of vector.blocks) {
      const values = toFloat64(block);
      out.set(values.subarray(0, Math.min(values.length, vector.length - offset)), offset);
      offset += values.length;
    }
    return out;
  }
}

/** See VectorCodec.startSum. */
export interface SumIntake {
  add(vector: EncryptedVector, who: string): void;
  remove(who: string): void;
  result(order: string[]): EncryptedVector;
  dispose(): void;
}

/** View (copying when unaligned) bytes as float64 little-endian values. */
export function toFloat64(bytes: Uint8Array): Float64Array {
  if (bytes.byteOffset % 8 === 0 && bytes.length % 8 === 0) return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
  const copy = new Uint8Array(bytes.length - (bytes.length % 8));
  copy.set(bytes.subarray(0, copy.length));
  return new Float64Array(copy.buffer);
}

export function toFloat32(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes.length - (bytes.length % 4));
  copy.set(bytes.subarray(0, copy.length));
  return new Float32Array(copy.buffer);
}

export function float32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

export function float64Bytes(values: Float64Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
