/**
 * The ledger's Merkle tree is RFC 6962's, so a regulator's own CT-style tooling agrees with it: the published
 * test vectors hold, the fast CompactTree always equals the slow reference, and every inclusion and consistency
 * proof verifies while a proof with any part wrong does not.
 */
import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { CompactTree, MerkleLevels, consistencyProof, inclusionProof, leafHash, nodeHash, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../src/ledger/merkle.js';

const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const flipped = (b: Uint8Array, at = 0) => {
  const c = new Uint8Array(b);
  c[at]! ^= 0x08;
  return c;
};

// RFC 6962 vectors as published by transparency-dev/merkle (testonly/constants.go, proof/verify_test.go).
const INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(unhex);
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const INCLUSION = [
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];
const CONSISTENCY = [
  {
    m: 1,
    n: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    m: 6,
    n: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { m: 2, n: 5, proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'] },
  {
    m: 6,
    n: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

describe('RFC 6962 hashing and the published vectors', () => {
  const leaves = INPUTS.map(leafHash);

  it('hashes leaves with 0x00, nodes with 0x01, and the empty tree as SHA-256("")', () => {
    expect(hex(rootFromLeafHashes([]))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(new CompactTree().root())).toBe(ROOTS[0]);
    const data = randomBytes(20);
    expect(hex(leafHash(data))).toBe(
      createHash('sha256')
        .update(Buffer.concat([Buffer.from([0]), data]))
        .digest('hex'),
    );
    const [a, b] = [randomBytes(32), randomBytes(32)];
    expect(hex(nodeHash(a, b))).toBe(
      createHash('sha256')
        .update(Buffer.concat([Buffer.from([1]), a, b]))
        .digest('hex'),
    );
  });

  it('gives the published root for every size 0..8, by the reference and by CompactTree', () => {
    const tree = new CompactTree();
    for (let n = 0; n <= 8; n++) {
      expect(hex(rootFromLeafHashes(leaves.slice(0, n))), `reference, size ${n}`).toBe(ROOTS[n]);
      expect(hex(tree.root()), `compact, size ${n}`).toBe(ROOTS[n]);
      if (n < 8) tree.append(leaves[n]!);
    }
  });

  it('builds exactly the published inclusion and consistency proofs, and they verify', () => {
    for (const v of INCLUSION) {
      expect(inclusionProof(leaves, v.index, v.size).map(hex)).toEqual(v.proof);
      expect(verifyInclusion(leaves[v.index]!, v.index, v.size, v.proof.map(unhex), unhex(ROOTS[v.size]!))).toBe(true);
    }
    for (const v of CONSISTENCY) {
      expect(consistencyProof(leaves, v.m, v.n).map(hex)).toEqual(v.proof);
      expect(verifyConsistency(v.m, v.n, unhex(ROOTS[v.m]!), unhex(ROOTS[v.n]!), v.proof.map(unhex))).toBe(true);
    }
  });
});

describe('CompactTree against the reference', () => {
  it('has the reference root at every size 0..70 (random leaves)', () => {
    const leaves = Array.from({ length: 70 }, () => leafHash(randomBytes(1 + Math.floor(Math.random() * 40))));
    const tree = new CompactTree();
    for (let n = 0; n <= 70; n++) {
      expect(tree.size).toBe(n);
      expect(hex(tree.root()), `size ${n}`).toBe(hex(rootFromLeafHashes(leaves.slice(0, n))));
      if (n < 70) tree.append(leaves[n]!);
    }
  });

  it('clone() is independent of the original', () => {
    const tree = new CompactTree();
    for (let i = 0; i < 5; i++) tree.append(leafHash(Uint8Array.of(i)));
    const copy = tree.clone();
    copy.append(leafHash(Uint8Array.of(9)));
    expect(tree.size).toBe(5);
    expect(hex(tree.root())).toBe(hex(rootFromLeafHashes([0, 1, 2, 3, 4].map((i) => leafHash(Uint8Array.of(i))))));
  });
});

describe('MerkleLevels against the reference', () => {
  it('has the reference root at every size, and the reference consistency proof for every pair of sizes up to 70', () => {
    const leaves = Array.from({ length: 70 }, () => leafHash(randomBytes(1 + Math.floor(Math.random() * 40))));
    const levels = new MerkleLevels();
    for (const l of leaves) levels.append(l);
    expect(levels.size).toBe(70);
    for (let n = 0; n <= 70; n++) {
      expect(hex(levels.root(n)), `size ${n}`).toBe(hex(rootFromLeafHashes(leaves.slice(0, n))));
      for (let m = 0; m <= n; m++) expect(levels.consistencyProof(m, n).map(hex), `${m} -> ${n}`).toEqual(consistencyProof(leaves, m, n).map(hex));
    }
  });

  it('proves consistency across 100,000 entries from the stored subtrees (roots checked with CompactTree)', () => {
    const levels = new MerkleLevels();
    const tree = new CompactTree();
    let oldRoot: Uint8Array = new Uint8Array();
    for (let i = 0; i < 100_000; i++) {
      const l = leafHash(Buffer.from(String(i)));
      levels.append(l);
      tree.append(l);
      if (tree.size === 50_001) oldRoot = tree.root();
    }
    expect(hex(levels.root())).toBe(hex(tree.root()));
    const proof = levels.consistencyProof(50_001, 100_000);
    expect(verifyConsistency(50_001, 100_000, oldRoot, tree.root(), proof)).toBe(true);
    expect(verifyConsistency(50_001, 100_000, flipped(oldRoot), tree.root(), proof)).toBe(false);
  });
});

describe('proofs for every shape of tree up to 40 leaves', () => {
  const N = 40;
  const leaves = Array.from({ length: N }, (_, i) => leafHash(Uint8Array.of(i, i * 7, 3)));
  const roots = Array.from({ length: N + 1 }, (_, n) => rootFromLeafHashes(leaves.slice(0, n)));

  it('every inclusion proof verifies; a wrong index, size, leaf, root or proof does not', () => {
    for (let size = 1; size <= N; size++) {
      for (let index = 0; index < size; index++) {
        const proof = inclusionProof(leaves, index, size);
        const [leaf, root] = [leaves[index]!, roots[size]!];
        const ok = (l: Uint8Array, i: number, s: number, p: Uint8Array[], r: Uint8Array) => verifyInclusion(l, i, s, p, r);
        expect(ok(leaf, index, size, proof, root), `${index}/${size}`).toBe(true);
        // The probes of transparency-dev/merkle's verify_test.go: wrong index, wrong tree height, wrong leaf or root.
        // (size ± 1 is not among them: sizes are bound to a root by the signed tree head, not by the path.)
        for (const [what, i, s] of [
          ['index-1', index - 1, size],
          ['index+1', index + 1, size],
          ['index^2', index ^ 2, size],
          ['size*2', index, size * 2],
          ['size/2', index, Math.floor(size / 2)],
        ] as const) {
          expect(ok(leaf, i, s, proof, root), `${what} ${index}/${size}`).toBe(false);
        }
        if (size > 1) expect(ok(leaves[(index + 1) % size]!, index, size, proof, root), `other leaf ${index}/${size}`).toBe(false);
        expect(ok(leaf, index, size, proof, flipped(root, 31))).toBe(false);
        expect(ok(leaf, index, size, [...proof, root], root)).toBe(false);
        if (proof.length > 0) expect(ok(leaf, index, size, proof.slice(0, -1), root), `truncated ${index}/${size}`).toBe(false);
        proof.forEach((_, k) => {
          const bad = proof.map((p, j) => (j === k ? flipped(p) : p));
          expect(ok(leaf, index, size, bad, root), `flipped proof[${k}] ${index}/${size}`).toBe(false);
        });
      }
    }
  });

  it('every consistency proof verifies; a wrong size, root or proof does not', () => {
    for (let n = 0; n <= N; n++) {
      for (let m = 0; m <= n; m++) {
        const proof = consistencyProof(leaves, m, n);
        const [oldRoot, newRoot] = [roots[m]!, roots[n]!];
        expect(verifyConsistency(m, n, oldRoot, newRoot, proof), `${m}->${n}`).toBe(true);
        if (m === 0) continue;
        expect(verifyConsistency(m, n, flipped(oldRoot, 5), newRoot, proof), `old root ${m}->${n}`).toBe(false);
        if (m === n) continue;
        expect(verifyConsistency(m, n, oldRoot, flipped(newRoot, 5), proof), `new root ${m}->${n}`).toBe(false);
        for (const [what, a, b] of [
          ['m-1', m - 1, n],
          ['m+1', m + 1, n],
          ['m^2', m ^ 2, n],
          ['n*2', m, n * 2],
          ['n/2', m, Math.floor(n / 2)],
        ] as const) {
          expect(verifyConsistency(a, b, oldRoot, newRoot, proof), `${what} ${m}->${n}`).toBe(false);
        }
        expect(verifyConsistency(m, n, oldRoot, newRoot, proof.slice(0, -1)), `truncated ${m}->${n}`).toBe(false);
        expect(verifyConsistency(m, n, oldRoot, newRoot, [...proof, newRoot]), `extended ${m}->${n}`).toBe(false);
        proof.forEach((_, k) => {
          const bad = proof.map((p, j) => (j === k ? flipped(p) : p));
          expect(verifyConsistency(m, n, oldRoot, newRoot, bad), `flipped proof[${k}] ${m}->${n}`).toBe(false);
        });
      }
    }
  });

  it('a tree whose prefix was rewritten has no consistency proof from the old head', () => {
    const rewritten = [...leaves];
    rewritten[3] = leafHash(Uint8Array.of(99));
    for (const [m, n] of [
      [5, 10],
      [4, 40],
      [8, 9],
    ] as const) {
      expect(verifyConsistency(m, n, roots[m]!, rootFromLeafHashes(rewritten.slice(0, n)), consistencyProof(rewritten, m, n))).toBe(false);
    }
  });
});
