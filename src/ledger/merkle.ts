/**
 * Merkle tree hashing, proofs and proof verification of RFC 6962 §2.1 (restated with verification algorithms in
 * RFC 9162 §2.1), the hashing of Certificate Transparency and of transparency-dev/merkle:
 *
 *   leaf hash  = SHA-256(0x00 || data)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256("")
 *   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n]))  with k the largest power of two smaller than n
 *
 * Three separate parts, as in transparency-dev/merkle: the hasher (leafHash, nodeHash), proof building over the
 * list of leaf hashes (inclusionProof, consistencyProof, and the slow recursive reference rootFromLeafHashes), and
 * pure verifiers (verifyInclusion, verifyConsistency) that need nothing but their arguments. CompactTree is the fast
 * O(log n) root the ledger keeps while appending; tests check it against the reference.
 */
import { equalBytes, sha256Concat } from '../bytes.js';

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** SHA-256 of the empty string: the root of the empty tree. */
export const EMPTY_ROOT: Uint8Array = sha256Concat([]);

export function leafHash(data: Uint8Array): Uint8Array {
  return sha256Concat([LEAF_PREFIX, data]);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256Concat([NODE_PREFIX, left, right]);
}

/** The largest power of two strictly smaller than n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH over leaves[lo, hi), recursively, straight from the definition. */
function mth(leaves: Uint8Array[], lo: number, hi: number): Uint8Array {
  const n = hi - lo;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leaves[lo]!;
  const k = split(n);
  return nodeHash(mth(leaves, lo, lo + k), mth(leaves, lo + k, hi));
}

/** Reference implementation: the Merkle tree hash of a list of leaf hashes, by the recursive definition. */
export function rootFromLeafHashes(leaves: Uint8Array[]): Uint8Array {
  return mth(leaves, 0, leaves.length);
}

/**
 * The fast tree: a stack of the roots of the perfect subtrees that make up the tree so far (one per set bit of
 * the size, largest first). Appending merges equal-sized subtrees like a binary counter carries, O(log n); the
 * root folds the stack from the right, which is exactly MTH because MTH splits at the largest power of two.
 */
export class CompactTree {
  private readonly stack: Uint8Array[] = [];
  private n = 0;

  append(leafHash: Uint8Array): void {
    let h = leafHash;
    for (let s = this.n; s % 2 === 1; s = Math.floor(s / 2)) h = nodeHash(this.stack.pop()!, h);
    this.stack.push(h);
    this.n += 1;
  }

  get size(): number {
    return this.n;
  }

  root(): Uint8Array {
    if (this.stack.length === 0) return EMPTY_ROOT;
    return this.stack.reduceRight((acc, node) => nodeHash(node, acc));
  }

  clone(): CompactTree {
    const copy = new CompactTree();
    copy.stack.push(...this.stack);
    copy.n = this.n;
    return copy;
  }
}

function checkRange(what: string, ok: boolean): void {
  if (!ok) throw new RangeError(what);
}

/** RFC 6962 PATH(m, D[lo:hi]): the audit path of leaf m, innermost sibling first. */
function path(leaves: Uint8Array[], m: number, lo: number, hi: number, out: Uint8Array[]): void {
  const n = hi - lo;
  if (n <= 1) return;
  const k = split(n);
  if (m < k) {
    path(leaves, m, lo, lo + k, out);
    out.push(mth(leaves, lo + k, hi));
  } else {
    path(leaves, m - k, lo + k, hi, out);
    out.push(mth(leaves, lo, lo + k));
  }
}

/** The inclusion proof (audit path) of leaf `index` in the tree of the first `size` leaves. */
export function inclusionProof(leaves: Uint8Array[], index: number, size: number): Uint8Array[] {
  checkRange(
    `inclusion proof: need 0 <= index < size <= ${leaves.length}, got index ${index}, size ${size}`,
    Number.isSafeInteger(index) && Number.isSafeInteger(size) && 0 <= index && index < size && size <= leaves.length,
  );
  const out: Uint8Array[] = [];
  path(leaves, index, 0, size, out);
  return out;
}

/** RFC 6962 SUBPROOF(m, D[lo:hi], b), with MTH(D[lo:hi]) given by `hashOf(lo, hi)`. */
function subproof(hashOf: (lo: number, hi: number) => Uint8Array, m: number, lo: number, hi: number, b: boolean, out: Uint8Array[]): void {
  const n = hi - lo;
  if (m === n) {
    if (!b) out.push(hashOf(lo, hi));
    return;
  }
  const k = split(n);
  if (m <= k) {
    subproof(hashOf, m, lo, lo + k, b, out);
    out.push(hashOf(lo + k, hi));
  } else {
    subproof(hashOf, m - k, lo + k, hi, false, out);
    out.push(hashOf(lo, lo + k));
  }
}

function proveConsistency(hashOf: (lo: number, hi: number) => Uint8Array, size: number, oldSize: number, newSize: number): Uint8Array[] {
  checkRange(
    `consistency proof: need 0 <= oldSize <= newSize <= ${size}, got ${oldSize}, ${newSize}`,
    Number.isSafeInteger(oldSize) && Number.isSafeInteger(newSize) && 0 <= oldSize && oldSize <= newSize && newSize <= size,
  );
  if (oldSize === 0 || oldSize === newSize) return [];
  const out: Uint8Array[] = [];
  subproof(hashOf, oldSize, 0, newSize, true, out);
  return out;
}

/** The consistency proof that the tree of the first `oldSize` leaves is a prefix of the tree of the first `newSize`. */
export function consistencyProof(leaves: Uint8Array[], oldSize: number, newSize: number): Uint8Array[] {
  return proveConsistency((lo, hi) => mth(leaves, lo, hi), leaves.length, oldSize, newSize);
}

/**
 * The hash of every perfect subtree, level by level, packed 32 bytes each (2n hashes for n leaves). MTH of the
 * ranges RFC 6962 splits a tree into is then O(log n) lookups, so a consistency proof over a ledger of a million
 * entries costs microseconds where the recursive definition hashes every leaf again (seconds).
 */
export class MerkleLevels {
  private readonly levels: Buffer[] = [];
  private readonly counts: number[] = [];

  get size(): number {
    return this.counts[0] ?? 0;
  }

  append(leafHash: Uint8Array): void {
    let h = leafHash;
    for (let level = 0; ; level++) {
      const n = this.put(level, h);
      if (n % 2 === 1) return;
      h = nodeHash(this.at(level, n - 2), this.at(level, n - 1));
    }
  }

  /** MTH(D[lo:hi]) for the ranges of the RFC 6962 recursion from 0 (their perfect parts are aligned). */
  rangeHash(lo: number, hi: number): Uint8Array {
    const n = hi - lo;
    if (n === 0) return EMPTY_ROOT;
    if ((n & (n - 1)) === 0 && lo % n === 0) return this.at(Math.log2(n), lo / n);
    const k = split(n);
    return nodeHash(this.rangeHash(lo, lo + k), this.rangeHash(lo + k, hi));
  }

  root(size = this.size): Uint8Array {
    return this.rangeHash(0, size);
  }

  consistencyProof(oldSize: number, newSize: number): Uint8Array[] {
    return proveConsistency((lo, hi) => this.rangeHash(lo, hi), this.size, oldSize, newSize);
  }

  private put(level: number, hash: Uint8Array): number {
    if (level === this.levels.length) {
      this.levels.push(Buffer.alloc(32 * 64));
      this.counts.push(0);
    }
    const n = this.counts[level]!;
    if ((n + 1) * 32 > this.levels[level]!.length) {
      const grown = Buffer.alloc(this.levels[level]!.length * 2);
      this.levels[level]!.copy(grown);
      this.levels[level] = grown;
    }
    this.levels[level]!.set(hash, n * 32);
    this.counts[level] = n + 1;
    return n + 1;
  }

  private at(level: number, index: number): Uint8Array {
    return this.levels[level]!.subarray(index * 32, index * 32 + 32);
  }
}

const isOdd = (x: number) => x % 2 === 1;
const half = (x: number) => Math.floor(x / 2);

/** RFC 9162 §2.1.3.2: does `proof` show that `leafHash` is leaf `index` of the tree of `size` leaves with `root`? */
export function verifyInclusion(leafHash: Uint8Array, index: number, size: number, proof: Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalBytes(r, root);
}

/** RFC 9162 §2.1.4.2: does `proof` show that the tree (oldSize, oldRoot) is a prefix of the tree (newSize, newRoot)? */
export function verifyConsistency(oldSize: number, newSize: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: Uint8Array[]): boolean {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || oldSize > newSize) return false;
  if (oldSize === newSize) return proof.length === 0 && equalBytes(oldRoot, newRoot);
  if (oldSize === 0) return proof.length === 0; // the empty tree is a prefix of every tree
  if (proof.length === 0) return false;
  // When oldSize is a power of two, the old root is itself a node of the new tree and the proof omits it.
  const nodes = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  const [first, ...rest] = nodes;
  if (first === undefined) return false;
  let fr = first;
  let sr = first;
  for (const c of rest) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalBytes(fr, oldRoot) && equalBytes(sr, newRoot);
}

function isPowerOfTwo(x: number): boolean {
  while (x > 1 && x % 2 === 0) x /= 2;
  return x === 1;
}
