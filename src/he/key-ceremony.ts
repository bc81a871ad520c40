/**
 * The key ceremony: who makes a job's CKKS keys, and what they are. One holder makes every key of a job; the rest
 * of the federation receives public material only, or (horizontal) the secret key sealed to its box key.
 *   - 'lead' (horizontal FedAvg): the job's first participant. Its key pair is sealed to every other participant,
 *     and the coordinator relays it without a secret key. Its public key is SEAL's full serialisation.
 *   - 'arbiter' (vertical: the coordinator for training, the guest for the binning step's label sums): it keeps the
 *     secret key; parties get the public key and the Galois keys for exactly the rotations the vertical gradient
 *     uses (verticalRotationSteps), both in SEAL's seeded form. Parameters that cannot run the vertical pipeline
 *     are refused before any key is made.
 *   - 'collective' (horizontal, encryption.scheme ckks-threshold): no holder. Each participant makes a secret share
 *     and a public-key share, commits to the share, reveals it once every party has committed; the shares add up to
 *     the collective public key (src/he/threshold/ckg.ts), whose secret key nobody forms. Decryption is collective
 *     (./threshold-vectors.ts). Every party derives the common reference string from the job (collectiveTranscript).
 * Every key is serialised with zstd, and every SEAL object made here is deleted before the function returns.
 */
import { createHash } from 'node:crypto';
import type { Serializable } from 'node-seal/implementation/serializable.js';
import type { CkksEngine } from './engine.js';
import { verticalRotationSteps, verticalScaleBits } from './packing.js';
import { CommonReferenceString } from './threshold/crs.js';
import { CommitThenReveal, shareCommitment } from './threshold/commitment.js';
import { PublicKeyGenProtocol, PublicKeyShare } from './threshold/ckg.js';
import { SecretKeyShare } from './threshold/secret-key.js';
import type { ThresholdContext } from './threshold/context.js';

export type KeyHolder = 'lead' | 'arbiter';

export interface CkksKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** The arbiter's keys for vertical logistic regression: the public and Galois keys go to every party. */
export interface ArbiterKeys extends CkksKeyPair {
  /** Rotation keys for the steps maskedGradient uses, verticalRotationSteps(): 1, 2, 4, …, 64 (seeded serialisation). */
  galoisKeys: Uint8Array;
}

/** The keys of a job for their holder (see above); the engine runs the job's parameters. */
export function generateKeys(engine: CkksEngine, holder: 'lead'): CkksKeyPair;
export function generateKeys(engine: CkksEngine, holder: 'arbiter'): ArbiterKeys;
export function generateKeys(engine: CkksEngine, holder: KeyHolder): CkksKeyPair | ArbiterKeys {
  if (holder === 'arbiter') verticalScaleBits(engine.params);
  const { seal } = engine;
  const zstd = seal.ComprModeType.zstd;
  const keygen = seal.KeyGenerator(engine.context);
  const secret = keygen.secretKey();
  const pub = holder === 'arbiter' ? keygen.createPublicKeySerializable() : keygen.createPublicKey();
  let galois: Serializable | undefined;
  try {
    if (holder === 'lead') return { publicKey: pub.saveArray(zstd), secretKey: secret.saveArray(zstd) };
    galois = keygen.createGaloisKeysSerializable(Int32Array.from(verticalRotationSteps(engine.slotCount)));
    return { publicKey: pub.saveArray(zstd), secretKey: secret.saveArray(zstd), galoisKeys: galois.saveArray(zstd) };
  } finally {
    galois?.delete();
    pub.delete();
    secret.delete();
    keygen.delete();
  }
}

/**
 * The transcript of a job's collective key: SHA-256 over the job id, its parties in order and the CKKS parameters'
 * fingerprint. It seeds the common reference string and binds every share commitment to this job, so a commitment
 * or share of another job, or of another party, does not verify. Every party, the coordinator and the auditor
 * derive it alike.
 */
export function collectiveTranscript(jobId: string, parties: readonly string[], paramsFingerprint: Uint8Array): Uint8Array {
  const hash = createHash('sha256');
  for (const part of ['fedcredit/threshold-ckks/horizontal/v1', jobId, parties.join('\n')]) hash.update(`${Buffer.byteLength(part)}:${part}`);
  return hash.update(paramsFingerprint).digest();
}

/** A party's part of the collective key: its secret share (kept), its public-key share and the commitment to it. */
export interface CollectiveKeyShare {
  secret: SecretKeyShare;
  share: Uint8Array;
  commitment: Uint8Array;
}

export function collectiveKeyShare(context: ThresholdContext, transcript: Uint8Array, organisation: string): CollectiveKeyShare {
  const ckg = new PublicKeyGenProtocol(context);
  const secret = SecretKeyShare.generate(context);
  const share = ckg.allocateShare();
  ckg.generateShare(secret, new CommonReferenceString(transcript), share);
  const bytes = share.serialize();
  return { secret, share: bytes, commitment: shareCommitment(transcript, organisation, bytes) };
}

/**
 * The collective public key (SEAL PublicKey bytes) from every party's commitment and revealed share: each share
 * must match its sender's commitment (CommitThenReveal throws FC_PROTOCOL naming the party that does not) and parse
 * as a public-key share of the job's parameters.
 */
export function collectivePublicKey(context: ThresholdContext, transcript: Uint8Array, parties: readonly { organisation: string; commitment: Uint8Array; share: Uint8Array }[]): Uint8Array {
  const ceremony = new CommitThenReveal(
    parties.map((p) => p.organisation),
    transcript,
  );
  for (const p of parties) ceremony.commit(p.organisation, p.commitment);
  for (const p of parties) ceremony.reveal(p.organisation, p.share);
  const ckg = new PublicKeyGenProtocol(context);
  const sum = ckg.allocateShare();
  for (const bytes of ceremony.revealed()) ckg.aggregateShares(sum, PublicKeyShare.deserialize(context, bytes), sum);
  return ckg.generatePublicKey(sum, new CommonReferenceString(transcript));
}
