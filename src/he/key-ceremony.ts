/**
 * The key ceremony: who makes a job's CKKS keys, and what they are. One holder makes every key of a job; the rest
 * of the federation receives public material only, or (horizontal) the secret key sealed to its box key.
 *   - 'lead' (horizontal FedAvg): the job's first participant. Its key pair is sealed to every other participant,
 *     and the coordinator relays it without a secret key. Its public key is SEAL's full serialisation.
 *   - 'arbiter' (vertical: the coordinator for training, the guest for the binning step's label sums): it keeps the
 *     secret key; parties get the public key and the Galois keys for exactly the rotations the vertical gradient
 *     uses (verticalRotationSteps), both in SEAL's seeded form. Parameters that cannot run the vertical pipeline
 *     are refused before any key is made.
 * Every key is serialised with zstd, and every SEAL object made here is deleted before the function returns.
 */
import type { Serializable } from 'node-seal/implementation/serializable.js';
import type { CkksEngine } from './engine.js';
import { verticalRotationSteps, verticalScaleBits } from './packing.js';

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
