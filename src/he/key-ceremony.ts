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
import { legacyClassSumRotationSteps, verticalCollectiveRotationSteps, verticalRotationSteps, verticalScaleBits } from './packing.js';
import { CommonReferenceString } from './threshold/crs.js';
import { CommitThenReveal, shareCommitment } from './threshold/commitment.js';
import { PublicKeyGenProtocol, PublicKeyShare } from './threshold/ckg.js';
import { GaloisKeyGenProtocol, GaloisKeyShare } from './threshold/rtg.js';
import { SecretKeyShare } from './threshold/secret-key.js';
import type { ThresholdContext } from './threshold/context.js';
import { ErrorCode, FedcreditError } from '../errors.js';
import { sha256, sha256Concat } from '../bytes.js';

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
 * fingerprint (and the kind of job, so a vertical and a horizontal ceremony never share one). It seeds the common reference string and binds every share commitment to this job, so a commitment
 * or share of another job, or of another party, does not verify. Every party, the coordinator and the auditor
 * derive it alike. A ceremony restarted after a party was lost (`attempt` 1, 2, …; docs/threshold-ckks.md, "A party
 * lost during the key ceremony") has a transcript of its own, so no commitment or share of an abandoned attempt
 * verifies in the next; attempt 0 is the transcript of a ceremony that was never restarted.
 */
export function collectiveTranscript(jobId: string, parties: readonly string[], paramsFingerprint: Uint8Array, kind: 'horizontal' | 'vertical' = 'horizontal', attempt = 0): Uint8Array {
  const hash = createHash('sha256');
  const parts = [`fedcredit/threshold-ckks/${kind}/v1`, jobId, parties.join('\n'), ...(attempt > 0 ? [`attempt ${attempt}`] : [])];
  for (const part of parts) hash.update(`${Buffer.byteLength(part)}:${part}`);
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
  const ckg = new PublicKeyGenProtocol(context);
  const sum = ckg.allocateShare();
  for (const bytes of revealedShares(transcript, parties)) ckg.aggregateShares(sum, PublicKeyShare.deserialize(context, bytes), sum);
  return ckg.generatePublicKey(sum, new CommonReferenceString(transcript));
}

/**
 * A vertical party's part of the collective gradient key (encryption.scheme ckks-threshold in a vertical-lr job):
 * its secret share (kept), one bundle of its public-key share and its Galois-key shares for `steps` (the rotations
 * maskedGradient uses), and the commitment to the bundle. One commitment covers every share, so no Galois share
 * either can be chosen after seeing the others' (the rogue-key attack works on Galois keys as on the public key).
 */
export function verticalCollectiveKeyShare(context: ThresholdContext, transcript: Uint8Array, organisation: string, steps: readonly number[]): CollectiveKeyShare {
  const { secret, share: publicShare } = collectiveKeyShare(context, transcript, organisation);
  const galois = new GaloisKeyGenProtocol(context).generateShares(secret, steps, new CommonReferenceString(transcript));
  const share = bundle([publicShare, ...galois.map((g) => g.serialize())]);
  return { secret, share, commitment: shareCommitment(transcript, organisation, share) };
}

/**
 * The collective public key and Galois keys (SEAL bytes, uncompressed) of a vertical job from every party's
 * commitment and revealed bundle (verticalCollectiveKeyShare): each bundle must match its sender's commitment and
 * hold a public-key share and one Galois-key share for each of `steps`, in order. `sums` is what rebuilds them
 * (verticalKeysFromSums): the bundles added up, a bundle of the same form, half the keys' size (their other half is
 * the common reference string, derived from the transcript).
 */
export function verticalCollectiveKeys(
  context: ThresholdContext,
  transcript: Uint8Array,
  steps: readonly number[],
  parties: readonly { organisation: string; commitment: Uint8Array; share: Uint8Array }[],
): { publicKey: Uint8Array; galoisKeys: Uint8Array; sums: Uint8Array } {
  const ckg = new PublicKeyGenProtocol(context);
  const rtg = new GaloisKeyGenProtocol(context);
  const publicSum = ckg.allocateShare();
  const galoisSums = steps.map((step) => rtg.allocateShare(rtg.galoisElement(step)));
  revealedShares(transcript, parties).forEach((bytes, i) => {
    const { publicShare, galoisShares } = verticalKeyShareParts(context, steps, parties[i]!.organisation, bytes);
    ckg.aggregateShares(publicSum, publicShare, publicSum);
    galoisSums.forEach((sum, j) => rtg.aggregateShares(sum, galoisShares[j]!, sum));
  });
  return { ...verticalKeysOf(context, transcript, publicSum, galoisSums), sums: bundle([publicSum.serialize(), ...galoisSums.map((g) => g.serialize())]) };
}

/**
 * The collective keys again from their `sums` (verticalCollectiveKeys), e.g. after a restart; FC_PROTOCOL naming
 * `source` if they are not the sums of this job's keys.
 */
export function verticalKeysFromSums(context: ThresholdContext, transcript: Uint8Array, steps: readonly number[], sums: Uint8Array, source: string): { publicKey: Uint8Array; galoisKeys: Uint8Array } {
  const { publicShare, galoisShares } = verticalKeyShareParts(context, steps, source, sums);
  return verticalKeysOf(context, transcript, publicShare, galoisShares);
}

function verticalKeysOf(context: ThresholdContext, transcript: Uint8Array, publicSum: PublicKeyShare, galoisSums: readonly GaloisKeyShare[]): { publicKey: Uint8Array; galoisKeys: Uint8Array } {
  const crs = new CommonReferenceString(transcript);
  return { publicKey: new PublicKeyGenProtocol(context).generatePublicKey(publicSum, crs), galoisKeys: new GaloisKeyGenProtocol(context).generateGaloisKeys(galoisSums, crs) };
}

/** Every party's revealed share, in the parties' order, each checked against the commitment it made first. */
function revealedShares(transcript: Uint8Array, parties: readonly { organisation: string; commitment: Uint8Array; share: Uint8Array }[]): Uint8Array[] {
  const ceremony = new CommitThenReveal(
    parties.map((p) => p.organisation),
    transcript,
  );
  for (const p of parties) ceremony.commit(p.organisation, p.commitment);
  for (const p of parties) ceremony.reveal(p.organisation, p.share);
  return ceremony.revealed();
}

/** A vertical party's revealed bundle (verticalCollectiveKeyShare) parsed: FC_PROTOCOL naming `sender` if it is not one. */
export function verticalKeyShareParts(context: ThresholdContext, steps: readonly number[], sender: string, bytes: Uint8Array): { publicShare: PublicKeyShare; galoisShares: GaloisKeyShare[] } {
  const parts = unbundle(bytes, sender);
  if (parts.length !== steps.length + 1)
    throw new FedcreditError(
      ErrorCode.PROTOCOL,
      `${sender}'s key shares hold ${parts.length - 1} Galois-key shares, the job's rotations need ${steps.length}`,
      `${sender} runs another fedcredit version or deviates from the key ceremony`,
    );
  return { publicShare: PublicKeyShare.deserialize(context, parts[0]!), galoisShares: parts.slice(1).map((p) => GaloisKeyShare.deserialize(context, p)) };
}

/**
 * The rotation steps a revealed vertical bundle holds Galois-key shares for: the current ones, or those of a key made
 * when the class sums were key-switched rotations (legacyClassSumRotationSteps); undefined for any other count.
 */
export function bundleRotationSteps(slotCount: number, sender: string, bytes: Uint8Array): number[] | undefined {
  const galoisShares = unbundle(bytes, sender).length - 1;
  return [verticalCollectiveRotationSteps(slotCount), legacyClassSumRotationSteps(slotCount)].find((steps) => steps.length === galoisShares);
}

/** What every party of a vertical ceremony reports and the ledger records: SHA-256 over both collective keys' digests. */
export function verticalKeyDigest(keys: { publicKey: Uint8Array; galoisKeys: Uint8Array }): Uint8Array {
  return sha256Concat([sha256(keys.publicKey), sha256(keys.galoisKeys)]);
}

/** Byte strings, each prefixed by its length (u32 LE). */
function bundle(parts: readonly Uint8Array[]): Uint8Array {
  const out = Buffer.alloc(parts.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.writeUInt32LE(p.length, at);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

function unbundle(bytes: Uint8Array, sender: string): Uint8Array[] {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts: Uint8Array[] = [];
  for (let at = 0; at < view.length; ) {
    const length = at + 4 <= view.length ? view.readUInt32LE(at) : -1;
    if (length < 0 || at + 4 + length > view.length)
      throw new FedcreditError(ErrorCode.PROTOCOL, `${sender}'s key shares are truncated`, `${sender} sent damaged bytes or deviates from the key ceremony`);
    parts.push(view.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return parts;
}
