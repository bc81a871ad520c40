/**
 * Pairwise-masked secure sum (the idea of Bonawitz et al.'s secure aggregation, without dropout recovery): each
 * host adds to its fixed-point vector a mask it shares with every other host, with opposite signs on the two
 * sides, so the masks cancel in the sum. The guest learns the sum of the hosts' partial scores and nothing about
 * any one host's share (with a single host the sum is that host's partial score: the guest's model output
 * reveals it anyway).
 *
 * Arithmetic is exact in the integers modulo 2^52, held in float64 (every intermediate stays below 2^53).
 */
import { createCipheriv, hkdfSync } from 'node:crypto';
import { ErrorCode, FedcreditError } from '../errors.js';

const MODULUS = 2 ** 52;
/** Fixed-point scale: 2^-24 (6e-8) resolution, values up to 2^27 in magnitude. */
const FIXED_POINT = 2 ** 24;
const LIMIT = 2 ** 27;

export interface MaskPeer {
  organisation: string;
  /** X25519 shared secret with that peer. */
  secret: Uint8Array;
}

/** n uniform integers in [0, 2^52) from AES-256-CTR keyed by HKDF(secret, context). */
function maskStream(secret: Uint8Array, context: string, n: number): Float64Array {
  const key = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `fedcredit secure sum v1|${context}`, 32));
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const bytes = cipher.update(Buffer.alloc(8 * n));
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const lo = bytes.readUInt32LE(8 * i);
    const hi = bytes.readUInt32LE(8 * i + 4) & 0xfffff;
    out[i] = hi * 2 ** 32 + lo;
  }
  return out;
}

/** This party's masked share of `values`; `context` must name the job, step and purpose (masks are never reused). */
export function maskedShare(values: Float64Array, self: string, peers: readonly MaskPeer[], context: string): Float64Array {
  const share = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v) || Math.abs(v) >= LIMIT) throw new RangeError(`value ${v} at index ${i} cannot enter a secure sum (finite and below 2^27 in magnitude)`);
    const fixed = Math.round(v * FIXED_POINT);
    share[i] = fixed < 0 ? fixed + MODULUS : fixed;
  }
  for (const peer of peers) {
    const mask = maskStream(peer.secret, context, values.length);
    const add = self < peer.organisation;
    for (let i = 0; i < share.length; i++) {
      const s = add ? share[i]! + mask[i]! : share[i]! - mask[i]! + MODULUS;
      share[i] = s >= MODULUS ? s - MODULUS : s;
    }
  }
  return share;
}

/** Sum of every party's share: the masks cancel, leaving the sum of the values. */
export function openShares(shares: readonly Float64Array[]): Float64Array {
  const n = shares[0]?.length ?? 0;
  if (shares.some((s) => s.length !== n)) throw new RangeError('secure-sum shares differ in length');
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let acc = 0;
    for (const s of shares) {
      acc += s[i]!;
      if (acc >= MODULUS) acc -= MODULUS;
    }
    out[i] = (acc >= MODULUS / 2 ? acc - MODULUS : acc) / FIXED_POINT;
  }
  return out;
}

/** A host's share of its partial scores for the guest, masked with every other host of the job. */
export function hostScoreShare(scores: Float64Array, self: string, hosts: readonly string[], secretWith: (host: string) => Uint8Array, context: string): Float64Array {
  const peers = hosts.filter((h) => h !== self).map((h) => ({ organisation: h, secret: secretWith(h) }));
  return maskedShare(scores, self, peers, context);
}

/** The guest's sum of every host's share: the hosts' partial scores of `rows` rows added up, no single one visible. */
export function guestScoreSum(shares: readonly Float64Array[], rows: number): Float64Array {
  const sum = openShares(shares);
  if (sum.length !== rows) throw new FedcreditError(ErrorCode.PROTOCOL, `score shares hold ${sum.length} values for ${rows} rows`, 'restart the job');
  return sum;
}
