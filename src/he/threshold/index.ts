/**
 * Threshold CKKS on node-seal: no single holder of the secret key. One protocol per file, in the style of Lattigo's
 * multiparty package (create the protocol, allocate a share, generate it, aggregate shares, finish); every share
 * serialises to bytes and back. See docs/threshold-ckks.md.
 */
export { ThresholdContext, type LevelInfo, type CanonicalCiphertext } from './context.js';
export { CommonReferenceString } from './crs.js';
export { CommitThenReveal, shareCommitment } from './commitment.js';
export { SecretKeyShare } from './secret-key.js';
export { PublicKeyGenProtocol, PublicKeyShare } from './ckg.js';
export { GaloisKeyGenProtocol, GaloisKeyShare } from './rtg.js';
export {
  DecryptionParty,
  DecryptionProtocol,
  DecryptionShare,
  DEFAULT_STATISTICAL_SECURITY,
  floodingSigma,
  floodingSlotError,
  freshSumNoiseBits,
  type DecryptionPartyOptions,
  type DecryptionRule,
  type IssuedShareRecord,
} from './decrypt.js';
export { Combiner, ShamirPolynomial, ShamirShare, Thresholdizer, MAX_SHAMIR_POINT } from './thresholdizer.js';
