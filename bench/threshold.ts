/**
 * `npm run bench -- --only threshold`: the threshold CKKS core (src/he/threshold) side by side with single-key SEAL.
 *
 * Key ceremony for 3, 10 and 100 participants, on the horizontal parameters (collective public key) and on the
 * vertical ones (public key and the Galois keys for the rotations the vertical gradient uses, 1, 2, …, 64): every
 * participant's shares are really generated, serialised and parsed, then added and turned into SEAL keys. The
 * participants run in parallel in a job, so the ceremony's wall time is one participant's share plus the
 * aggregation; the serial total (all shares on one core) is reported too.
 *
 * The horizontal secure sum's cryptography, single key against collective key, for LR and an MLP of ~100k
 * parameters (horizontalRound).
 *
 * Decryption: one ciphertext (a sum at scale 2^80, horizontal parameters) decrypted by SEAL with a single secret key
 * against the threshold path: each party's flooded share, the combiner's aggregation of n shares, the decoding.
 */
import { randomBytes } from 'node:crypto';
import { CkksEngine } from '../src/he/engine.js';
import { generateKeys } from '../src/he/key-ceremony.js';
import { residueClassSums, VERTICAL_MASK, verticalRotationSteps } from '../src/he/packing.js';
import { DEFAULT_CKKS_PARAMS, THRESHOLD_CKKS_PARAMS, VERTICAL_CKKS_PARAMS, VERTICAL_THRESHOLD_CKKS_PARAMS, type CkksParams } from '../src/he/params.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { collectiveKeyShare, collectivePublicKey, collectiveTranscript } from '../src/he/key-ceremony.js';
import { ThresholdVectors } from '../src/he/threshold-vectors.js';
import { VectorCodec, type Keys } from '../src/fl/vector-codec.js';
import type { EncryptedVector } from '../src/wire/messages.js';
import { VerticalGradient } from '../src/he/vertical-gradient.js';
import { inProcessCollectiveKeys, thresholdOpener, type GradientShareholder } from '../src/vertical/lr/threshold-opener.js';
import { ckksOpener } from '../src/vertical/lr/opener.js';
import { gradientLabel, verticalOpenedSlotError } from '../src/he/vertical-threshold.js';
import {
  CommonReferenceString,
  DecryptionParty,
  DecryptionProtocol,
  DecryptionShare,
  GaloisKeyGenProtocol,
  GaloisKeyShare,
  PublicKeyGenProtocol,
  PublicKeyShare,
  floodingSigma,
  floodingSlotError,
  SecretKeyShare,
  ShamirShare,
  Combiner,
  Thresholdizer,
  ThresholdContext,
  type DecryptionRule,
} from '../src/he/threshold/index.js';
import { addPoly, centredCrt, intt, mulPoly, prefixPoly, subPoly, zeroPoly } from '../src/he/threshold/ring.js';
import { readCiphertext, readPlaintext } from '../src/he/seal-format.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;
const time = <T>(run: () => T): [T, number] => {
  const t = performance.now();
  const value = run();
  return [value, performance.now() - t];
};

interface CeremonyFigures {
  shareMs: number;
  shareBytes: number;
  aggregateMs: number;
  finishMs: number;
}

/** One ceremony of n parties: the median party's share time, the aggregation of all n, the SEAL key's construction. */
function ceremony(context: ThresholdContext, n: number, steps: number[]): CeremonyFigures & { publicKey: Uint8Array; secrets: SecretKeyShare[] } {
  const crs = new CommonReferenceString(randomBytes(32));
  const ckg = new PublicKeyGenProtocol(context);
  const rtg = new GaloisKeyGenProtocol(context);
  const secrets: SecretKeyShare[] = [];
  const shareTimes: number[] = [];
  let shareBytes = 0;
  // Each party's shares are added as they arrive (as a combiner would), so 100 parties' 5.5 MiB are never held at once.
  const aggregates = { pk: ckg.allocateShare(), galois: steps.map((s) => rtg.allocateShare(rtg.galoisElement(s))) };
  let aggregateMs = 0;
  for (let i = 0; i < n; i++) {
    const [bytes, elapsed] = time(() => {
      const secret = SecretKeyShare.generate(context);
      secrets.push(secret);
      const share = ckg.allocateShare();
      ckg.generateShare(secret, crs, share);
      const out = [share.serialize()];
      if (steps.length > 0) for (const g of rtg.generateShares(secret, steps, crs)) out.push(g.serialize());
      return out;
    });
    shareTimes.push(elapsed);
    shareBytes = bytes.reduce((a, b) => a + b.length, 0);
    const [, added] = time(() => {
      ckg.aggregateShares(aggregates.pk, PublicKeyShare.deserialize(context, bytes[0]!), aggregates.pk);
      aggregates.galois.forEach((g, j) => rtg.aggregateShares(g, GaloisKeyShare.deserialize(context, bytes[j + 1]!), g));
    });
    aggregateMs += added;
  }
  const [publicKey, finishMs] = time(() => {
    const key = ckg.generatePublicKey(aggregates.pk, crs);
    if (steps.length > 0) rtg.generateGaloisKeys(aggregates.galois, crs);
    return key;
  });
  return { shareMs: median(shareTimes), shareBytes, aggregateMs, finishMs, publicKey, secrets };
}

/** The values every benchmark ciphertext holds. */
const plaintextValues = (context: ThresholdContext) => Float64Array.from({ length: context.degree / 2 }, (_, i) => Math.sin(i));

const maxError = (a: Float64Array, b: Float64Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

/** SEAL's own decryption with one secret key of a ciphertext under that key: median time and its error. */
function singleKeyDecryption(context: ThresholdContext, scale: number, reps: number): [number, number] {
  const { seal } = context;
  const keygen = seal.KeyGenerator(context.context);
  const secret = keygen.secretKey();
  const pk = keygen.createPublicKey();
  const decryptor = seal.Decryptor(context.context, secret);
  const encoder = seal.CKKSEncoder(context.context);
  const cipher = seal.CipherText();
  const times: number[] = [];
  let error = 0;
  try {
    const ciphertext = encrypt(context, pk.saveArray(seal.ComprModeType.none), scale);
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      // As HorizontalVectors.decryptVector does: load the bytes, decrypt, decode.
      cipher.loadArray(context.context, ciphertext);
      const plain = decryptor.decrypt(cipher)!;
      const decoded = encoder.decode(plain) as Float64Array;
      plain.delete();
      times.push(performance.now() - t);
      error = Math.max(error, maxError(decoded, plaintextValues(context)));
    }
    return [median(times), error];
  } finally {
    cipher.delete();
    encoder.delete();
    decryptor.delete();
    pk.delete();
    secret.delete();
    keygen.delete();
  }
}

function encrypt(context: ThresholdContext, publicKey: Uint8Array, scale: number): Uint8Array {
  const { seal } = context;
  const pk = seal.PublicKey();
  pk.loadArray(context.context, publicKey);
  const encryptor = seal.Encryptor(context.context, pk);
  const encoder = seal.CKKSEncoder(context.context);
  const plain = encoder.encode(plaintextValues(context), scale)!;
  const cipher = encryptor.encrypt(plain)!;
  try {
    return cipher.saveArray(seal.ComprModeType.none);
  } finally {
    cipher.delete();
    plain.delete();
    encoder.delete();
    encryptor.delete();
    pk.delete();
  }
}

/**
 * The noise of a vertical masked gradient (what the arbiter decrypts), measured as SEAL makes it with one key: the
 * same gradient (same batch, weights, mask) from two independent encryptions of the host's partial scores. The
 * plaintexts are identical, so the difference of the two decryptions, taken as integer polynomials, is e1 − e2:
 * rms(e) ≈ rms(e1 − e2)/√2. Returns the rms and the largest coefficient of e1 − e2, in bits.
 */
async function verticalGradientNoise(): Promise<{ rmsBits: number; maxBits: number; scale: number; level: number }> {
  const engine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  const context = await ThresholdContext.create(VERTICAL_CKKS_PARAMS);
  try {
    const keys = generateKeys(engine, 'arbiter');
    const gradient = VerticalGradient.of(engine);
    const { seal } = context;
    const secret = seal.SecretKey();
    secret.loadArray(context.context, keys.secretKey);
    const s = readPlaintext(secret.saveArray(seal.ComprModeType.none)).coefficients;
    secret.delete();
    const rows = engine.slotCount;
    const random = (scale: number) => Float64Array.from({ length: rows }, () => (Math.random() * 2 - 1) * scale);
    // A batch of 4,096 records, 14 features clipped at 5, weights summing to 1, the protocol's masks.
    const partial = random(0.5);
    const weights = new Float64Array(rows).fill(1 / rows);
    const offset = Float64Array.from(weights, (w, i) => w * (0.25 * partial[i]! + 0.5 - (i % 7 === 0 ? 1 : 0)));
    const columns = Array.from({ length: 14 }, () => random(5));
    const mask = random(VERTICAL_MASK);
    const decrypted = [0, 1].map(() => {
      const fore = gradient.foreGradient([gradient.encryptSlots(partial, keys.publicKey)], weights, offset);
      // maskedGradient saves its result uncompressed: SEAL's layout, read directly.
      const masked = readCiphertext(gradient.maskedGradient(fore, columns, mask, keys.galoisKeys), 'a masked gradient');
      const info = context.levelOf(masked.parmsId)!;
      const ring = info.ring;
      const m = mulPoly(ring, masked.polys[1]!, prefixPoly(context.keyRing, s, ring.primes.length), zeroPoly(ring));
      addPoly(ring, m, masked.polys[0]!);
      return { ring, poly: intt(ring, m), scale: masked.scale, level: info.level };
    });
    const { ring, scale, level } = decrypted[0]!;
    const difference = centredCrt(ring, subPoly(ring, decrypted[0]!.poly, decrypted[1]!.poly, zeroPoly(ring))).map(Number);
    const rms = Math.sqrt(difference.reduce((a, d) => a + d * d, 0) / difference.length) / Math.SQRT2;
    const max = Math.max(...difference.map(Math.abs));
    return { rmsBits: Math.log2(rms), maxBits: Math.log2(max), scale, level };
  } finally {
    context.dispose();
    engine.dispose();
  }
}

/**
 * The cryptography of one horizontal secure sum with 3 participants, through the code a job runs (VectorCodec, the
 * coordinator's running sum, the participants' opening), single key against the collective key: each participant
 * encrypts its vector (in parallel: the median party), the coordinator checks and adds the three, and each
 * participant opens the aggregate (single key: decrypts; collective: its decryption shares, then the combination of
 * all three). Local training, the same in both, is not included.
 */
async function horizontalRound(length: number, reps: number): Promise<{ single: RoundFigures; threshold: RoundFigures }> {
  const parties = 3;
  const inputs = Array.from({ length: parties }, () => Float64Array.from({ length }, () => (Math.random() * 2 - 1) * 100));
  const expected = inputs.reduce((acc, v) => acc.map((x, i) => x + v[i]!), new Float64Array(length));
  /** `open` returns the opened values and, when the parties work in parallel, the wall time of the opening. */
  const measure = (codec: VectorCodec, keys: Keys, open: (sum: EncryptedVector) => { values: Float64Array; wallMs?: number }): RoundFigures => {
    const encrypt: number[] = [];
    const add: number[] = [];
    const opening: number[] = [];
    let error = 0;
    let bytes = 0;
    for (let r = 0; r < reps; r++) {
      const vectors = inputs.map((v) => {
        const [vector, elapsed] = time(() => codec.encode(v, keys, 'update'));
        encrypt.push(elapsed);
        return vector;
      });
      bytes = vectors[0]!.blocks.reduce((n, b) => n + b.length, 0);
      const [sum, summed] = time(() => {
        const intake = codec.startSum(length, 'update');
        try {
          vectors.forEach((v, i) => intake.add(v, `party-${i}`));
          return intake.result(vectors.map((_, i) => `party-${i}`));
        } finally {
          intake.dispose();
        }
      });
      add.push(summed);
      const [opened, elapsed] = time(() => open(sum));
      opening.push(opened.wallMs ?? elapsed);
      error = Math.max(error, maxError(opened.values, expected));
    }
    return { encryptMs: median(encrypt), sumMs: median(add), openMs: median(opening), bytes, error };
  };

  const engine = await CkksEngine.create(DEFAULT_CKKS_PARAMS);
  const tEngine = await CkksEngine.create(THRESHOLD_CKKS_PARAMS);
  const context = await ThresholdContext.create(THRESHOLD_CKKS_PARAMS);
  try {
    const pair = generateKeys(engine, 'lead');
    const singleCodec = VectorCodec.ckks(new HorizontalVectors(engine));
    const single = measure(singleCodec, pair, (sum) => ({ values: singleCodec.open(sum, length, 'the coordinator', pair) }));

    const transcript = collectiveTranscript('bench', ['a', 'b', 'c'], tEngine.fingerprint);
    const shares = ['a', 'b', 'c'].map((org) => ({ org, ...collectiveKeyShare(context, transcript, org) }));
    const publicKey = collectivePublicKey(
      context,
      transcript,
      shares.map((s) => ({ organisation: s.org, commitment: s.commitment, share: s.share })),
    );
    const vectors = new ThresholdVectors(context, parties);
    const thresholdCodec = VectorCodec.ckksCollective(new HorizontalVectors(tEngine));
    let round = 0;
    // Each party's shares are made in parallel in a job: the median party's time (with its check of the aggregate)
    // plus one party's combination of all three.
    const threshold = measure(thresholdCodec, { publicKey }, (sum) => {
      const label = `bench/round ${++round}`;
      const times: number[] = [];
      const given = shares.map((s) => {
        const party = vectors.party(s.secret);
        const [own, elapsed] = time(() => {
          thresholdCodec.check(sum, length, 'the coordinator', 'canonical');
          return vectors.shares(party, sum.blocks, label, 'update');
        });
        party.dispose();
        times.push(elapsed);
        return { organisation: s.org, shares: own };
      });
      const [values, combineMs] = time(() => vectors.combine(sum.blocks, length, label, given));
      return { values, wallMs: median(times) + combineMs };
    });
    return { single, threshold };
  } finally {
    context.dispose();
    tEngine.dispose();
    engine.dispose();
  }
}

interface RoundFigures {
  encryptMs: number;
  sumMs: number;
  /** Single key: a party's check and decryption; collective: a party's shares (timed apart) plus the combination. */
  openMs: number;
  bytes: number;
  error: number;
}

export async function thresholdBench(sizes: number[], results: Record<string, number>, table: string[][]): Promise<void> {
  for (const [model, length] of [
    ['LR (UCI, 23 features)', 23 + 1 + 2],
    ['MLP 256-256-128 (mlp_100k, 104,961 parameters)', 23 * 256 + 256 + 256 * 256 + 256 + 256 * 128 + 128 + 128 + 1 + 2],
  ] as const) {
    const { single, threshold } = await horizontalRound(length, 3);
    const wall = (f: RoundFigures) => f.encryptMs + f.sumMs + f.openMs;
    const key = `threshold.horizontal_round.${model.startsWith('LR') ? 'lr' : 'mlp100k'}`;
    for (const [name, f] of [
      ['single_key', single],
      ['threshold', threshold],
    ] as const) {
      results[`${key}.${name}.encrypt_ms`] = +f.encryptMs.toFixed(1);
      results[`${key}.${name}.sum_ms`] = +f.sumMs.toFixed(1);
      results[`${key}.${name}.open_ms`] = +f.openMs.toFixed(1);
      results[`${key}.${name}.wall_ms`] = +wall(f).toFixed(1);
      results[`${key}.${name}.contribution_bytes`] = f.bytes;
      results[`${key}.${name}.max_error`] = +f.error.toExponential(2);
    }
    results[`${key}.ratio`] = +(wall(threshold) / wall(single)).toFixed(2);
    table.push([
      `horizontal secure sum, ${model}, ${length} values, 3 parties (crypto only)`,
      `single key: encrypt ${ms(single.encryptMs)}, sum ${ms(single.sumMs)}, open ${ms(single.openMs)} = ${ms(wall(single))}; ${(single.bytes / 1024).toFixed(0)} KiB per contribution`,
      `threshold: encrypt ${ms(threshold.encryptMs)}, sum ${ms(threshold.sumMs)}, shares + combine ${ms(threshold.openMs)} = ${ms(wall(threshold))}; ${(threshold.bytes / 1024).toFixed(0)} KiB per contribution`,
      `${(wall(threshold) / wall(single)).toFixed(2)}x single key (target 1.25x)`,
      `max error ${threshold.error.toExponential(1)} (single key ${single.error.toExponential(1)})`,
    ]);
  }
  const setups: [string, CkksParams, number[]][] = [
    ['horizontal', DEFAULT_CKKS_PARAMS, []],
    ['vertical', VERTICAL_CKKS_PARAMS, verticalRotationSteps(VERTICAL_CKKS_PARAMS.polyModulusDegree / 2)],
  ];
  const noise = await verticalGradientNoise();
  // b: the largest coefficient of e1 − e2 (about 4.5 rms of e·√2) bounds ‖e‖_∞ with a margin.
  const b = Math.ceil(noise.maxBits);
  const verticalError = floodingSlotError(VERTICAL_CKKS_PARAMS.polyModulusDegree, floodingSigma(VERTICAL_CKKS_PARAMS.polyModulusDegree, b), 3, noise.scale);
  results['threshold.vertical_masked_gradient.noise_rms_bits'] = +noise.rmsBits.toFixed(2);
  results['threshold.vertical_masked_gradient.noise_max_bits'] = +noise.maxBits.toFixed(2);
  results['threshold.vertical_masked_gradient.flooded_slot_error_3_parties'] = +verticalError.toExponential(2);
  table.push([
    `vertical masked gradient (level ${noise.level}, scale 2^${Math.log2(noise.scale).toFixed(2)}): noise`,
    `rms 2^${noise.rmsBits.toFixed(1)}, e1 − e2 up to 2^${noise.maxBits.toFixed(1)}`,
    `flooding for 2^-40 against 2^${b}: σ_f = 2^${Math.log2(floodingSigma(VERTICAL_CKKS_PARAMS.polyModulusDegree, b)).toFixed(1)}`,
    `slot error with 3 parties ${verticalError.toExponential(1)} (values up to 2^32; the gradient itself ~1e-2)`,
  ]);
  for (const [name, params, steps] of setups) {
    const context = await ThresholdContext.create(params);
    try {
      for (const n of sizes) {
        const f = ceremony(context, n, steps);
        const key = `threshold.ceremony.${name}.n${n}`;
        results[`${key}.party_share_ms`] = +f.shareMs.toFixed(1);
        results[`${key}.party_share_bytes`] = f.shareBytes;
        results[`${key}.aggregate_ms`] = +f.aggregateMs.toFixed(1);
        results[`${key}.finish_ms`] = +f.finishMs.toFixed(1);
        results[`${key}.wall_s`] = +((f.shareMs + f.aggregateMs + f.finishMs) / 1000).toFixed(2);
        results[`${key}.serial_s`] = +((n * f.shareMs + f.aggregateMs + f.finishMs) / 1000).toFixed(2);
        table.push([
          `threshold key ceremony, ${name} (${steps.length ? `pk + ${steps.length} Galois keys` : 'pk'}), ${n} parties`,
          `party share ${ms(f.shareMs)} (${(f.shareBytes / 2 ** 20).toFixed(2)} MiB)`,
          `aggregate ${n} ${ms(f.aggregateMs)}, finish ${ms(f.finishMs)}`,
          `wall (parties in parallel) ${((f.shareMs + f.aggregateMs + f.finishMs) / 1000).toFixed(2)} s, serial ${((n * f.shareMs + f.aggregateMs + f.finishMs) / 1000).toFixed(2)} s`,
        ]);
        if (name !== 'horizontal') continue;
        // Decryption of a fresh ciphertext at 2^80 (noise below 2^11): threshold against one SEAL key.
        const scale = 2 ** 80;
        const rule: DecryptionRule = { name: 'aggregate', level: 0, scale, noiseBits: 11 };
        const parties = f.secrets.map((s) => new DecryptionParty(context, s, { rules: [rule] }));
        const protocol = new DecryptionProtocol(context);
        const reps = 3;
        const shareTimes: number[] = [];
        const combineTimes: number[] = [];
        let thresholdError = 0;
        for (let r = 0; r < reps; r++) {
          const ciphertext = encrypt(context, f.publicKey, scale);
          const shares: Uint8Array[] = [];
          parties.forEach((p, i) => {
            const [bytes, elapsed] = time(() => p.generateShare(ciphertext, `bench ${r}`, 'aggregate').serialize());
            shares.push(bytes);
            if (i < 5) shareTimes.push(elapsed);
          });
          const [decoded, elapsed] = time(() => {
            const first = DecryptionShare.deserialize(context, shares[0]!);
            const aggregate = protocol.allocateShare(first.ciphertextDigest, first.purpose, first.level);
            for (const bytes of shares) protocol.aggregateShares(aggregate, DecryptionShare.deserialize(context, bytes), aggregate);
            return protocol.finalize(ciphertext, first.purpose, new Map([['the combiner', aggregate]]));
          });
          combineTimes.push(elapsed);
          thresholdError = Math.max(thresholdError, maxError(decoded, plaintextValues(context)));
        }
        for (const p of parties) p.dispose();
        const [single, singleError] = singleKeyDecryption(context, scale, 9);
        const share = median(shareTimes);
        const combine = median(combineTimes);
        const dkey = `threshold.decrypt.n${n}`;
        results[`${dkey}.single_key_ms`] = +single.toFixed(2);
        results[`${dkey}.party_share_ms`] = +share.toFixed(1);
        results[`${dkey}.combine_ms`] = +combine.toFixed(1);
        results[`${dkey}.wall_ms`] = +(share + combine).toFixed(1);
        results[`${dkey}.single_key_max_error`] = +singleError.toExponential(2);
        results[`${dkey}.threshold_max_error`] = +thresholdError.toExponential(2);
        table.push([
          `threshold decryption, ${n} parties (N=${params.polyModulusDegree}, level 0, one ciphertext)`,
          `single-key SEAL ${ms(single)}`,
          `party share ${ms(share)}, combine ${n} shares ${ms(combine)}`,
          `wall (parties in parallel) ${ms(share + combine)} = ${((share + combine) / single).toFixed(0)}x single key`,
          `max error ${thresholdError.toExponential(1)} (single key ${singleError.toExponential(1)}) at scale 2^80, flooding 2^-40`,
        ]);
      }
    } finally {
      context.dispose();
    }
  }
}

interface VerticalBatchFigures {
  encryptMs: number;
  foreMs: number;
  guestGradientMs: number;
  hostGradientMs: number;
  /** Both gradients opened: single key, the arbiter's decryptions; collective key, one shareholder's two shares (they run in parallel) and the arbiter's two combinations. */
  openMs: number;
  /** The batch's critical path: encrypt, fore-gradient, the slower of the two gradients, the openings. */
  batchMs: number;
  /** Collective key: the median of the batch's decryption shares (one shareholder's share of one masked gradient). */
  shareMs: number;
  gradientBytes: number;
}

/**
 * `npm run bench -- --only vertical-threshold`: the cryptography of one vertical mini-batch (the guest's 14 columns,
 * one host's 10, as on the UCI hetero split) through the code a job runs (VerticalGradient, the Opener), single key
 * (VERTICAL_CKKS_PARAMS, the arbiter's key, 4,096 records) against the collective key of the arbiter, the guest and
 * the host (VERTICAL_THRESHOLD_CKKS_PARAMS) with 4,096 records and with 8,192 (its slot count), alternated, medians
 * of `reps`. The epoch figure counts UCI's 21,000 training rows in batches of that size: the cryptography of an
 * epoch, not the whole job's epoch (no gRPC, no validation step).
 */
export async function verticalThresholdBench(reps: number, results: Record<string, number>, table: string[][]): Promise<void> {
  const trainingRows = 21_000;
  const columnNames = (n: number) => Array.from({ length: n }, (_, i) => `x${i}`);
  const random = (n: number, scale: number) => Float64Array.from({ length: n }, () => (Math.random() * 2 - 1) * scale);
  const batchOf = (rows: number) => {
    const partial = random(rows, 0.5);
    const weights = new Float64Array(rows).fill(1 / rows);
    const offset = Float64Array.from(weights, (w, i) => w * (0.25 * partial[i]! + 0.5 - (i % 5 === 0 ? 1 : 0)));
    return { rows, partial, weights, offset, guestColumns: Array.from({ length: 14 }, () => random(rows, 5)), hostColumns: Array.from({ length: 10 }, () => random(rows, 5)) };
  };
  const single = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  const collective = await CkksEngine.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
  const context = await ThresholdContext.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
  let shareholders: GradientShareholder[] = [];
  try {
    const arbiterKeys = generateKeys(single, 'arbiter');
    const [made, ceremonyMs] = time(() => inProcessCollectiveKeys(context, 'bench', { guest: 'bank', hosts: ['tax-bureau'], features: { bank: columnNames(13), 'tax-bureau': columnNames(10) } }));
    shareholders = [...made.shareholders.values()];
    // The shareholders make their shares in parallel in a job: the opening waits for the slowest, not for all three.
    let serialShareMs = 0;
    let parallelShareMs = 0;
    let batchShareMs: number[] = [];
    const timedOpener = thresholdOpener(context, [...made.shareholders.keys()], made.periods, (request) => {
      const shares = new Map<string, Uint8Array>();
      let slowest = 0;
      for (const [org, holder] of made.shareholders) {
        const [share, elapsed] = time(() => holder.share(request));
        shares.set(org, share);
        serialShareMs += elapsed;
        batchShareMs.push(elapsed);
        slowest = Math.max(slowest, elapsed);
      }
      parallelShareMs += slowest;
      return shares;
    });
    const collectiveKeys = { engine: collective, publicKey: made.publicKey, galoisKeys: made.galoisKeys, opener: timedOpener };
    const variants = {
      single: {
        label: 'single key (N=8192), 4,096 records',
        engine: single,
        publicKey: arbiterKeys.publicKey,
        galoisKeys: arbiterKeys.galoisKeys,
        opener: ckksOpener(single, arbiterKeys.secretKey),
        batch: batchOf(4096),
      },
      threshold: { label: 'collective key of 3 (N=16384), 4,096 records', ...collectiveKeys, batch: batchOf(4096) },
      threshold_8192: { label: 'collective key of 3, 8,192 records', ...collectiveKeys, batch: batchOf(8192) },
    };
    type Name = keyof typeof variants;
    const names = Object.keys(variants) as Name[];
    const figures = Object.fromEntries(names.map((n) => [n, [] as VerticalBatchFigures[]])) as Record<Name, VerticalBatchFigures[]>;
    let step = 0;
    for (let r = 0; r < reps; r++) {
      for (const name of names) {
        const v = variants[name];
        const { partial, weights, offset, guestColumns, hostColumns } = v.batch;
        const gradient = VerticalGradient.of(v.engine);
        const [encrypted, encryptMs] = time(() => gradient.encryptSlots(partial, v.publicKey));
        const [fore, foreMs] = time(() => gradient.foreGradient([encrypted], weights, offset));
        const mask = () => random(v.engine.slotCount, VERTICAL_MASK);
        const [guestMasked, guestGradientMs] = time(() => gradient.maskedGradient(fore, guestColumns, mask(), v.galoisKeys));
        const [hostMasked, hostGradientMs] = time(() => gradient.maskedGradient(fore, hostColumns, mask(), v.galoisKeys));
        step++;
        serialShareMs = 0;
        parallelShareMs = 0;
        batchShareMs = [];
        const requests = [
          { party: 'bank', masked: guestMasked, count: 14 },
          { party: 'tax-bureau', masked: hostMasked, count: 10 },
        ].map((q) => ({ ...q, purpose: gradientLabel('bench', step, 0, q.party) }));
        // Each party remembers what it sends (its own time, not the arbiter's).
        if (v.engine === collective) for (const q of requests) made.sentGradient(q.party, q.purpose, q.masked);
        const [, openTotalMs] = time(() => {
          for (const q of requests) v.opener.openGradient(q.masked, q.count, { party: q.party, purpose: q.purpose });
        });
        const openMs = openTotalMs - serialShareMs + parallelShareMs;
        figures[name].push({
          encryptMs,
          foreMs,
          guestGradientMs,
          hostGradientMs,
          openMs,
          batchMs: encryptMs + foreMs + Math.max(guestGradientMs, hostGradientMs) + openMs,
          shareMs: batchShareMs.length > 0 ? median(batchShareMs) : 0,
          gradientBytes: guestMasked.length,
        });
      }
    }
    const med = (name: Name, key: keyof VerticalBatchFigures) => median(figures[name].map((f) => f[key]));
    const epochS = (name: Name) => (Math.ceil(trainingRows / variants[name].batch.rows) * med(name, 'batchMs')) / 1000;
    for (const name of names) {
      for (const key of ['encryptMs', 'foreMs', 'guestGradientMs', 'hostGradientMs', 'openMs', 'batchMs'] as const)
        results[
          `vertical_threshold.${name}.${key
            .replace(/Ms$/, '_ms')
            .replace(/([a-z])([A-Z])/g, '$1_$2')
            .toLowerCase()}`
        ] = +med(name, key).toFixed(1);
      results[`vertical_threshold.${name}.gradient_bytes`] = figures[name][0]!.gradientBytes;
      results[`vertical_threshold.${name}.epoch_crypto_s`] = +epochS(name).toFixed(2);
      if (name !== 'single') {
        results[`vertical_threshold.${name}.epoch_ratio`] = +(epochS(name) / epochS('single')).toFixed(2);
        results[`vertical_threshold.${name}.share_ms`] = +med(name, 'shareMs').toFixed(1);
      }
    }
    results['vertical_threshold.ceremony_in_process_ms'] = +ceremonyMs.toFixed(0);
    results['vertical_threshold.flooded_slot_error'] = +verticalOpenedSlotError(context, 3).toExponential(2);
    table.push([
      'vertical batch (guest 14 + host 10 columns; crypto only)',
      ...names.map(
        (name) =>
          `${variants[name].label}: encrypt ${ms(med(name, 'encryptMs'))}, fore ${ms(med(name, 'foreMs'))}, gradients ${ms(med(name, 'guestGradientMs'))} / ${ms(med(name, 'hostGradientMs'))}, open both ${ms(med(name, 'openMs'))}${name === 'single' ? '' : ` (one share ${ms(med(name, 'shareMs'))})`} = ${ms(med(name, 'batchMs'))}; ${(figures[name][0]!.gradientBytes / 1024).toFixed(0)} KiB per gradient; epoch ${epochS(name).toFixed(2)} s${name === 'single' ? '' : ` (${(epochS(name) / epochS('single')).toFixed(2)}x, target 1.25x)`}`,
      ),
      `ceremony (3 parties, one process) ${(ceremonyMs / 1000).toFixed(1)} s; flooding error per slot ${verticalOpenedSlotError(context, 3).toExponential(1)}`,
    ]);
  } finally {
    for (const holder of shareholders) holder.forget();
    context.dispose();
    collective.dispose();
    single.dispose();
  }
}

/**
 * `npm run bench -- --only threshold-tn`: what t-of-n adds to the collective key, cryptography alone (horizontal
 * parameters). Re-sharing, once per job and party: its Shamir polynomial of degree t − 1 evaluated at the n points
 * and serialised (the points it sends), then the n − 1 points it receives parsed and added into σ_i (sealing not
 * included: one AES-GCM box per point). Per decryption and quorum member: λ_i·σ_i for the quorum (the Combiner), and
 * its flooded share of one ciphertext, against the N-of-N share with s_i.
 */
export async function thresholdTnBench(configs: [number, number][], results: Record<string, number>, table: string[][]): Promise<void> {
  const context = await ThresholdContext.create(THRESHOLD_CKKS_PARAMS);
  try {
    const rule = { name: 'sum', level: 1, scale: 2 ** THRESHOLD_CKKS_PARAMS.scaleBits, noiseBits: 10 } satisfies DecryptionRule;
    for (const [n, t] of configs) {
      const secrets = Array.from({ length: n }, () => SecretKeyShare.generate(context));
      const thresholdizer = new Thresholdizer(context, t);
      const reshare: number[] = [];
      const points: Uint8Array[][] = [];
      for (const secret of secrets) {
        const [out, elapsed] = time(() => {
          const polynomial = thresholdizer.generateShamirPolynomial(secret);
          return Array.from({ length: n }, (_, j) => {
            const share = thresholdizer.allocateShare(j + 1);
            thresholdizer.generateShare(polynomial, share);
            return share.serialize();
          });
        });
        reshare.push(elapsed);
        points.push(out);
      }
      const assemble: number[] = [];
      const sigmas = Array.from({ length: n }, (_, j) => {
        const [sigma, elapsed] = time(() => {
          const sum = thresholdizer.allocateShare(j + 1);
          for (let i = 0; i < n; i++) thresholdizer.aggregateShares(sum, ShamirShare.deserialize(context, points[i]![j]!), sum);
          return sum;
        });
        assemble.push(elapsed);
        return sigma;
      });
      const quorum = Array.from({ length: t }, (_, i) => i + 1);
      const combiner = new Combiner(context, t);
      const lagrange: number[] = [];
      const additive = quorum.map((point) => {
        const [secret, elapsed] = time(() => combiner.generateAdditiveShare(sigmas[point - 1]!, quorum));
        lagrange.push(elapsed);
        return secret;
      });
      // One ciphertext at level 1 (an update sum's level) under the collective key.
      const ckg = new PublicKeyGenProtocol(context);
      const crs = new CommonReferenceString(randomBytes(32));
      const sum = ckg.allocateShare();
      for (const secret of secrets) {
        const share = ckg.allocateShare();
        ckg.generateShare(secret, crs, share);
        ckg.aggregateShares(sum, share, sum);
      }
      const engine = await CkksEngine.create(THRESHOLD_CKKS_PARAMS);
      let ciphertexts: Uint8Array[];
      try {
        const codec = VectorCodec.ckksCollective(new HorizontalVectors(engine));
        const keys: Keys = { publicKey: ckg.generatePublicKey(sum, crs) };
        ciphertexts = Array.from({ length: 2 * t + 2 }, () => codec.encode(new Float64Array([1, 2, 3]), keys, 'update').blocks[0]!);
      } finally {
        engine.dispose();
      }
      const shareTimes = (parties: DecryptionParty[], offset: number) =>
        parties.map((p, i) => {
          const elapsed = time(() => p.generateShare(ciphertexts[offset + i]!, `bench ${offset + i}`, 'sum'))[1];
          p.dispose();
          return elapsed;
        });
      const nOfN = median(
        shareTimes(
          secrets.slice(0, t).map((s) => new DecryptionParty(context, s, { rules: [rule] })),
          0,
        ),
      );
      const tOfN = median(
        shareTimes(
          additive.map((s) => new DecryptionParty(context, s, { rules: [rule] })),
          t,
        ),
      );
      const key = `threshold.tn.n${n}_t${t}`;
      results[`${key}.reshare_ms`] = +median(reshare).toFixed(1);
      results[`${key}.assemble_ms`] = +median(assemble).toFixed(1);
      results[`${key}.lagrange_ms`] = +median(lagrange).toFixed(1);
      results[`${key}.share_ms_t_of_n`] = +tOfN.toFixed(1);
      results[`${key}.share_ms_n_of_n`] = +nOfN.toFixed(1);
      results[`${key}.point_bytes`] = points[0]![0]!.length;
      table.push([
        `t-of-n re-sharing, ${t} of ${n} (N=${THRESHOLD_CKKS_PARAMS.polyModulusDegree}, key level)`,
        `per party: ${ms(median(reshare))} to deal ${n} points of ${(points[0]![0]!.length / 1024).toFixed(0)} KiB, ${ms(median(assemble))} to add ${n}`,
        `per decryption: λ·σ ${ms(median(lagrange))}, share ${ms(tOfN)} vs N-of-N share ${ms(nOfN)}`,
      ]);
    }
  } finally {
    context.dispose();
  }
}

/**
 * `npm run bench -- --only arbiter-open`: what the arbiter's class sums cost (decryptGradient: one decryption, the
 * class-sum transform on the decrypted polynomial's NTT slots, one decoding) against a raw decryption whose slots
 * are summed in the clear (what let a coalition of the arbiter and a party read every z_i), for the guest's 14 and a
 * host's 10 columns of a 4,096-record batch (single key, VERTICAL_CKKS_PARAMS), alternated, medians of `reps`;
 * beside them the party's own maskedGradient for the same columns, for scale.
 */
export async function arbiterOpenBench(reps: number, results: Record<string, number>, table: string[][]): Promise<void> {
  const engine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  try {
    const rows = engine.slotCount;
    const random = (n: number, scale: number) => Float64Array.from({ length: n }, () => (Math.random() * 2 - 1) * scale);
    const keys = generateKeys(engine, 'arbiter');
    const gradient = VerticalGradient.of(engine);
    const partial = random(rows, 0.5);
    const weights = new Float64Array(rows).fill(1 / rows);
    const offset = Float64Array.from(weights, (w, i) => w * (0.25 * partial[i]! + 0.5 - (i % 5 === 0 ? 1 : 0)));
    const fore = gradient.foreGradient([gradient.encryptSlots(partial, keys.publicKey)], weights, offset);
    const [, firstMs] = time(() => gradient.decryptGradient(gradient.maskedGradient(fore, [random(rows, 5)], random(rows, VERTICAL_MASK), keys.galoisKeys), 1, keys.secretKey));
    for (const p of [14, 10]) {
      const columns = Array.from({ length: p }, () => random(rows, 5));
      const timings = { masked: [] as number[], inside: [] as number[], clear: [] as number[] };
      for (let r = 0; r < reps; r++) {
        const [masked, maskedMs] = time(() => gradient.maskedGradient(fore, columns, random(rows, VERTICAL_MASK), keys.galoisKeys));
        timings.masked.push(maskedMs);
        const [, insideMs] = time(() => gradient.decryptGradient(masked, p, keys.secretKey));
        const [, clearMs] = time(() => residueClassSums(gradient.decryptGradientSlots(masked, rows, keys.secretKey), p));
        timings.inside.push(insideMs);
        timings.clear.push(clearMs);
      }
      const [m, e, c] = [median(timings.masked), median(timings.inside), median(timings.clear)];
      results[`arbiter_open.p${p}.class_sums_in_decryption_ms`] = +e.toFixed(1);
      results[`arbiter_open.p${p}.class_sums_clear_ms`] = +c.toFixed(1);
      results[`arbiter_open.p${p}.party_masked_gradient_ms`] = +m.toFixed(1);
      results[`arbiter_open.p${p}.in_decryption_over_clear`] = +(e / c).toFixed(2);
      table.push([
        `arbiter opens p = ${p} (4,096 records)`,
        `class sums inside the decryption ${e.toFixed(1)} ms`,
        `in the clear ${c.toFixed(1)} ms (${(e / c).toFixed(2)}×)`,
        `party's maskedGradient ${m.toFixed(1)} ms (medians of ${reps})`,
      ]);
    }
    results['arbiter_open.first_call_ms'] = +firstMs.toFixed(1);
    table.push(['arbiter opens: first call (a maskedGradient, then the decryptor made)', `${firstMs.toFixed(1)} ms`, '', '']);
  } finally {
    engine.dispose();
  }
}
