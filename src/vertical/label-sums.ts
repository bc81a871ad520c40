/**
 * Per-bin sums of a per-row value the guest holds (its labels; in boosting, each row's gradient and hessian) over a
 * host's bins, without the values or the bins leaving their owners (docs/protocol-vertical.md, "Binning, WOE and
 * IV"; docs/protocol-boost.md). The guest encrypts its training labels under its own CKKS key,
 * 4,096 records per ciphertext in the shared row order. For each chunk the host turns [[y]] into the form the
 * vertical gradient takes ([[y]] · 1, rescaled to ≈ 2^50) and multiplies it with the one-hot columns of its bins, with
 * the same generalized-diagonal product as the gradient: the slots of residue class j (mod P) then sum to
 * Σ_r y_r·[bin(r) = j], the number of defaults in bin j. The chunks are added, a mask whose class sums are zero
 * hides every single slot, and the guest decrypts and sums the classes: it learns the count of defaults per bin,
 * never which record lies in which bin.
 */
import { randomFillSync } from 'node:crypto';
import type { CkksEngine } from '../he/engine.js';
import { nextPowerOfTwo, residueClassSums, sharedBabySteps } from '../he/packing.js';
import { VerticalGradient, type BatchColumns, type BinSumMask } from '../he/vertical-gradient.js';
import { sha256Hex } from '../bytes.js';
import { ErrorCode, FedcreditError } from '../errors.js';
import { BinSumsPool, type BaseRows } from './bin-sums-pool.js';

/** At most this many bin columns share one ciphertext (the diagonal product costs about one multiplication per column). */
export const BIN_COLUMNS_PER_CIPHERTEXT = 128;

/**
 * A per-row value of the guest (its 0/1 labels, a gradient) in the shared row order, public-key encrypted in chunks
 * of slotCount records. With `imaginary` (a second value per row, the hessian beside the gradient), each slot holds
 * values[r] + i·imaginary[r] (VerticalGradient.encryptComplexSlots): the host's products and rotations then serve
 * both values at the cost of one, and the guest opens each part (openBinSums).
 */
export function encryptRowValues(engine: CkksEngine, values: ArrayLike<number>, publicKey: Uint8Array, imaginary?: ArrayLike<number>): Uint8Array[] {
  if (imaginary && imaginary.length !== values.length) throw new RangeError(`${values.length} real and ${imaginary.length} imaginary values`);
  const gradient = VerticalGradient.of(engine);
  const slice = (from: ArrayLike<number>, start: number, end: number) => Float64Array.from({ length: end - start }, (_, i) => from[start + i]!);
  const chunks: Uint8Array[] = [];
  for (let start = 0; start < values.length; start += engine.slotCount) {
    const end = Math.min(values.length, start + engine.slotCount);
    const real = slice(values, start, end);
    chunks.push(imaginary ? gradient.encryptComplexSlots(real, slice(imaginary, start, end), publicKey) : gradient.encryptSlots(real, publicKey));
  }
  return chunks;
}

/** Features (by index) packed into ciphertexts of at most `budget` bin columns each, in order. */
export function columnGroups(binsPerFeature: readonly number[], budget = BIN_COLUMNS_PER_CIPHERTEXT): number[][] {
  const groups: number[][] = [];
  let current: number[] = [];
  let used = 0;
  binsPerFeature.forEach((bins, f) => {
    if (bins > budget) throw new RangeError(`feature ${f} has ${bins} bins; at most ${budget} fit in one ciphertext`);
    if (used + bins > budget && current.length > 0) {
      groups.push(current);
      current = [];
      used = 0;
    }
    current.push(f);
    used += bins;
  });
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Half-width of a label-sum mask before centring: a slot's value (a count of at most 128 · chunks) is hidden up
 * to a statistical distance of about count / 2^28 (2^-11 for 4,096 chunks, i.e. 16M training rows). */
export const LABEL_SUM_MASK = 2 ** 28;

/**
 * A mask of one value per slot, uniform in ±LABEL_SUM_MASK before centring (within ±2^29 after it), whose sum
 * over every residue class modulo nextPowerOfTwo(count) is zero (up to rounding): it hides each slot and vanishes
 * from the class sums. maskedGradient takes masks up to 2^30; the rounding it adds stays far below a count's ½.
 */
export function zeroClassSumMask(slots: number, count: number): Float64Array {
  const P = nextPowerOfTwo(count);
  const random = new Uint32Array(slots);
  randomFillSync(random);
  const mask = Float64Array.from(random, (r) => (r / 2 ** 32 - 0.5) * 2 * LABEL_SUM_MASK);
  for (let j = 0; j < P; j++) {
    let sum = 0;
    for (let i = j; i < slots; i += P) sum += mask[i]!;
    const mean = sum / (slots / P);
    for (let i = j; i < slots; i += P) mask[i]! -= mean;
  }
  return mask;
}

/** Bytes of encoded diagonals a boosting host keeps for its whole training (beyond it, it encodes them per product). */
export const KEPT_DIAGONAL_BUDGET_BYTES = 512 * 2 ** 20;

/**
 * The guest's keys a host computes per-bin sums with: its rotation keys, and its public key, with which the host
 * re-randomises every sum it returns (a fresh encryption of zero; VerticalGradient.sumBinSums).
 */
export interface GuestKeys {
  galoisKeys: Uint8Array;
  publicKey: Uint8Array;
}

/**
 * The guest's values over one set of rows (a node): per value, its chunks in the order of `rows` (every row without
 * them). With `base` (nodeFromBase: ascending rows that hold every row of `rows`, in boosting the tree's root, and
 * which of them are `rows`), the chunks are the base's, in its order, and the rows of the base outside `rows` are
 * weighted 0: the sums are over `rows` all the same, from chunks sent once, with the base's diagonals (kept for the
 * whole training when the base is the kept rows).
 */
export interface NodeValues {
  values: Uint8Array[][];
  rows?: Uint32Array;
  base?: BaseRows;
  /** R > 1 (rowRepeats): the rows of the node's last chunk, at most slotCount / R of them, each in R consecutive slots. */
  repeats?: number;
}

/**
 * How many consecutive slots each row of the last chunk of a node of `rows` rows takes (R, a power of two) so that
 * the chunk fills its ciphertext as far as it can, for column groups of `periods` (R stays below the largest): 1 when
 * the last chunk holds more than half a ciphertext. The guest, the host and BinSums' check all take R from here. A group of P columns then has P/R nonzero
 * generalized diagonals in that chunk instead of P: a node of 500 rows costs 16 products and encodings per group,
 * not 128, and no baby-step rotation (BinSums, with baby steps that are multiples of R).
 */
export function rowRepeats(rows: number, periods: readonly number[], slotCount: number): number {
  const last = rows - (Math.ceil(rows / slotCount) - 1) * slotCount;
  const period = Math.max(...periods);
  let R = 1;
  while (R < period && last * R * 2 <= slotCount) R *= 2;
  return R;
}

/** A node's values as the guest encrypts them (rowRepeats): the full chunks' values as they are, the last chunk's each R times in a row. */
export function repeatRows(values: ArrayLike<number>, repeats: number, slotCount: number): Float64Array {
  const full = (Math.ceil(values.length / slotCount) - 1) * slotCount;
  const out = new Float64Array(full + (values.length - full) * repeats);
  for (let i = 0; i < full; i++) out[i] = values[i]!;
  for (let i = full; i < values.length; i++) out.fill(values[i]!, full + (i - full) * repeats, full + (i - full + 1) * repeats);
  return out;
}

/** For each row of `base` (ascending), whether it is one of `rows` (ascending); a row of `rows` outside `base` is an error. */
export function membership(base: Uint32Array, rows: Uint32Array): Uint8Array {
  const inside = new Uint8Array(base.length);
  let at = 0;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    while (at < base.length && base[at]! < row) at++;
    if (at === base.length || base[at] !== row) throw new RangeError(`row ${row} is not one of the base rows`);
    inside[at++] = 1;
  }
  return inside;
}

/**
 * A node's values from the chunks of `base` (NodeValues.base), its rows' membership of the base worked out once, for
 * the kernel and every worker thread; a row of `rows` outside `base` is an error.
 */
export function nodeFromBase(values: Uint8Array[][], rows: Uint32Array, base: Uint32Array): NodeValues {
  return { values, rows, base: { rows: base, inside: membership(base, rows) } };
}

/** The chunks of `slotCount` base rows that hold at least one row marked in `inside` (membership). */
export function touchedChunks(inside: Uint8Array, slotCount: number): number[] {
  const ids: number[] = [];
  for (let start = 0; start < inside.length; start += slotCount) if (inside.subarray(start, start + slotCount).includes(1)) ids.push(start / slotCount);
  return ids;
}

/**
 * Whether a node's per-bin sums cost less from the base's chunks, whose diagonals are kept (`touched` of them hold
 * rows of the node), than from the node's own `nodeChunks`, whose diagonals must be encoded: per (chunk, group) the
 * kept path does P products, the other P/R encodings and P/R products (R: rowRepeats); per chunk both weight it
 * and rotate it for the baby steps. Costs in plaintext products, from the micro-benchmark of "Vertical gradient
 * boosting, the histogram kernel" (BENCHMARKS.md): a product 0.7 ms, an encoding 1.6 ms, weighting a chunk
 * 10.6 ms, a rotation 8 ms. Only the speed depends on it: either path gives the same sums.
 */
export function cheaperFromKeptBase(touched: number, nodeChunks: number, periods: readonly number[], babySteps: number, repeats: number): boolean {
  const product = 0.7;
  const perChunk = (10.6 + (babySteps - 1) * 8) / product;
  const columns = periods.reduce((s, P) => s + P, 0);
  const nodeColumns = periods.reduce((s, P) => s + Math.max(1, P / repeats), 0);
  return touched * (perChunk + columns) < nodeChunks * (perChunk + nodeColumns * (1 + 1.6 / product));
}

/** One group of features (columnGroups): each feature's bin of every row, and its number of bins. */
export interface BinGroup {
  bins: readonly Uint16Array[];
  binCounts: readonly number[];
}

/**
 * The host's side: the encrypted, masked per-bin sums of the guest's per-row values (default counts for labels, g
 * and h in boosting), one ciphertext per value and group of features, one class per bin column of the group
 * (features in order, bins in order). `bins[f][r]` is the bin of row r for feature f of a group; `binCounts[f]` the
 * number of bins of that feature. Every slot of the products is a sum of at most 128 values of magnitude ≤ 1 per
 * chunk, which LABEL_SUM_MASK is sized for.
 *
 * One pass (VerticalGradient.maskedBinSums) serves every value and every group: each chunk of 4,096 rows is
 * weighted and rotated for its baby steps once, each encoded diagonal multiplies every value, and each group's
 * giant-step rotations run once on the sum of the chunks. Sums over a subset of the rows (a tree node) take the
 * guest's values of those rows only, packed 4,096 to a ciphertext in row order, so a node costs in proportion to its
 * rows; the columns' diagonals then depend on the rows: with `keep`, those of the first set of rows asked (all rows,
 * or in boosting the root's, the same for every tree) are encoded once and kept until dispose(). A node may instead
 * take the values of a set of rows that holds it (NodeValues.base: the root), weighted by its rows, and so the kept
 * diagonals; and the rows of its last chunk, when they fill at most half of it, may come repeated (NodeValues.repeats,
 * rowRepeats), so fewer diagonals are nonzero.
 */
export class BinSums {
  private readonly kept = new Map<number, BatchColumns>();
  /**
   * The rows whose diagonals are kept (by digest; 'all' for every row) and the chunks of them kept: those of the first
   * sum asked, never more (a worker asked for other chunks of the same rows later keeps no more of them, so no order
   * of asks can grow the kept diagonals past what the first one fixed).
   */
  private keptRows?: { digest: string; chunks: ReadonlySet<number> };
  private readonly rows: number;
  private readonly keep: boolean;
  private readonly pool?: BinSumsPool;
  /** Bin columns of each group. */
  readonly counts: number[];
  /** Each group's period: the next power of two ≥ its bin columns. */
  readonly periods: number[];
  /** Baby steps shared by every group for the kept rows (sharedBabySteps over all the chunks); other rows get their own. */
  readonly baby: number;

  /**
   * `keep`: keep every chunk's encoded diagonals until dispose() (BinSums.keepable says whether they fit);
   * `threads`: worker threads that share the chunks (BinSumsPool), each with its own SEAL context; 1 (the default)
   * computes on this thread.
   */
  constructor(
    private readonly engine: CkksEngine,
    private readonly groups: readonly BinGroup[],
    options: { keep?: boolean; threads?: number } = {},
  ) {
    if (groups.length === 0) throw new RangeError('per-bin sums need at least one group of features');
    this.rows = groups[0]!.bins[0]?.length ?? 0;
    this.keep = options.keep ?? false;
    this.counts = groups.map((g) => g.binCounts.reduce((a, b) => a + b, 0));
    const S = engine.slotCount;
    const chunks = Math.ceil(this.rows / S);
    this.periods = this.counts.map(nextPowerOfTwo);
    this.baby = sharedBabySteps(chunks, this.periods, S);
    const threads = Math.min(options.threads ?? 1, chunks);
    if (threads > 1) this.pool = new BinSumsPool(engine.params, groups, this.keep, threads);
  }

  /** Whether keeping every chunk's diagonals for `groups` groups of `rows` rows fits KEPT_DIAGONAL_BUDGET_BYTES. */
  static keepable(engine: CkksEngine, rows: number, groups: number): boolean {
    const plainBytes = 2 * engine.slotCount * engine.chain[1]!.primes.length * 8;
    return Math.ceil(rows / engine.slotCount) * groups * BIN_COLUMNS_PER_CIPHERTEXT * plainBytes <= KEPT_DIAGONAL_BUDGET_BYTES;
  }

  /**
   * Chunk c's columns of group G over `rows` (every row without them), kept when they are the kept rows. With rows
   * repeated R times (rowRepeats), slot i·R + s of row i holds only the columns j ≡ s (mod R): each (row, column)
   * meets the row's value once, in the class j, and only the diagonals k ≡ 0 (mod R) are nonzero.
   */
  private columns(c: number, G: number, rows: Uint32Array | undefined, keep: boolean, repeats: number, baby: number): BatchColumns {
    const key = c * this.groups.length + G;
    const held = keep ? this.kept.get(key) : undefined;
    if (held) return held;
    const S = this.engine.slotCount;
    const start = c * S;
    const B = Math.min(rows?.length ?? this.rows, start + S) - start;
    if (B * repeats > S) throw new RangeError(`${B} rows repeated ${repeats} times do not fit one ciphertext`);
    const { bins, binCounts } = this.groups[G]!;
    const columns: Float64Array[] = [];
    bins.forEach((assigned, f) => {
      for (let b = 0; b < binCounts[f]!; b++) {
        const column = new Float64Array(B * repeats);
        const slot = columns.length % repeats;
        for (let i = 0; i < B; i++) if (assigned[rows ? rows[start + i]! : start + i] === b) column[i * repeats + slot] = 1;
        columns.push(column);
      }
    });
    const batch = VerticalGradient.of(this.engine).batchColumns(columns, baby);
    if (keep) {
      batch.keep();
      this.kept.set(key, batch);
    }
    return batch;
  }

  /**
   * The masked sums of each value over `rows` (ascending row indices; every row without them): [value][group]. Each
   * value comes as the guest's chunks of those rows' values, 4,096 to a ciphertext in the order of `rows`.
   */
  async sums(values: Uint8Array[][], keys: GuestKeys, rows?: Uint32Array): Promise<Uint8Array[][]> {
    return (await this.nodeSums([{ values, rows }], keys))[0]!;
  }

  /**
   * sums() for several sets of rows at once (the nodes of a tree level): [node][value][group]. With worker threads,
   * the chunks of all the nodes are shared among them, so a level of small nodes (a chunk each) keeps every core busy.
   */
  async nodeSums(nodes: readonly NodeValues[], keys: GuestKeys): Promise<Uint8Array[][][]> {
    const S = this.engine.slotCount;
    const ids = nodes.map(({ values, rows, base, repeats = 1 }) => {
      const packed = base?.rows ?? rows;
      const count = packed?.length ?? this.rows;
      if (repeats > 1 && (base || !rows || rowRepeats(rows.length, this.periods, S) < repeats)) throw new RangeError(`a node of ${rows?.length} rows cannot take its rows repeated ${repeats} times`);
      if ((rows?.length ?? this.rows) === 0) throw new RangeError('per-bin sums over no rows');
      if (base && (!rows || base.inside.length !== base.rows.length)) throw new RangeError('per-bin sums from base rows need the rows summed (nodeFromBase)');
      for (const chunks of values) {
        if (chunks.length !== Math.ceil(count / S)) {
          throw new FedcreditError(ErrorCode.PROTOCOL, `the guest sent ${chunks.length} per-row ciphertexts for ${count} rows`, 'restart the job: the parties disagree on the rows');
        }
      }
      // From the base, only the chunks that hold rows of the node: the others would add products by zero weights.
      return base ? touchedChunks(base.inside, S) : Array.from({ length: Math.ceil(count / S) }, (_, c) => c);
    });
    // One mask per node, value and group, added once to the sum of the chunks: the sum is what the guest sees. Both
    // parts are masked whatever the values are meant to be: the host cannot see whether the guest's [[y]] is real,
    // and a guest that hid a probe in the imaginary part of its labels would otherwise read it back slot by slot.
    const masks = nodes.map(({ values }) => values.map(() => this.counts.map((count): BinSumMask => ({ real: zeroClassSumMask(S, count), imaginary: zeroClassSumMask(S, count) }))));
    if (!this.pool) return nodes.map((node, n) => this.chunkSums(ids[n]!, node, keys.galoisKeys, { masks: masks[n]!, publicKey: keys.publicKey }));
    const parts = await this.pool.parts(nodes, ids, keys.galoisKeys);
    const gradient = VerticalGradient.of(this.engine);
    return masks.map((perValue, n) =>
      perValue.map((row, v) =>
        row.map((mask, G) =>
          gradient.sumBinSums(
            parts[n]!.map((p) => p[v]![G]!),
            mask,
            keys.publicKey,
          ),
        ),
      ),
    );
  }

  /**
   * The sums over the chunks `ids` of a node's values only (a worker's share; see sums), masked with `masked.masks`
   * and re-randomised under `masked.publicKey` or, without them, not (parts for VerticalGradient.sumBinSums).
   */
  chunkSums(ids: readonly number[], node: NodeValues, galoisKeys: Uint8Array, masked?: { masks: BinSumMask[][]; publicKey: Uint8Array }): Uint8Array[][] {
    const S = this.engine.slotCount;
    const { values, rows, base, repeats = 1 } = node;
    const packed = base?.rows ?? rows;
    const count = packed?.length ?? this.rows;
    const last = Math.ceil(count / S) - 1;
    const which = packed ? sha256Hex(new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength)) : 'all';
    if (this.keep && this.keptRows === undefined && repeats === 1) this.keptRows = { digest: which, chunks: new Set(ids) };
    const kept = this.keptRows?.digest === which ? this.keptRows.chunks : undefined;
    const self = this;
    // A last chunk of repeated rows has a plan of its own (sharedBabySteps with its R), so it makes a pass of its own.
    const passes = [ids.filter((c) => repeats === 1 || c !== last), ids.filter((c) => repeats > 1 && c === last)].filter((pass) => pass.length > 0);
    const sums = passes.map((pass) => {
      const R = repeats > 1 && pass[0] === last ? repeats : 1;
      // The kept diagonals' baby steps for the kept rows; otherwise the fewest rotations for these chunks (one or
      // two per worker for most nodes: more baby steps and fewer giant ones than for the whole job's chunks).
      const baby = R === 1 && kept ? this.baby : sharedBabySteps(pass.length, this.periods, S, R);
      function* inputs() {
        for (const c of pass) {
          const B = Math.min(count, (c + 1) * S) - c * S;
          const keep = R === 1 && (kept?.has(c) ?? false);
          const weights = base ? Float64Array.from(base.inside.subarray(c * S, c * S + B)) : new Float64Array(B * R).fill(1);
          yield { values: values.map((v) => v[c]!), weights, columns: (G: number) => self.columns(c, G, packed, keep, R, baby) };
        }
      }
      const one = passes.length === 1;
      return VerticalGradient.of(this.engine).maskedBinSums(
        inputs(),
        (one ? masked?.masks : undefined) ?? values.map(() => this.counts.map(() => null)),
        galoisKeys,
        one ? masked?.publicKey : undefined,
      );
    });
    if (sums.length === 1) return sums[0]!;
    const gradient = VerticalGradient.of(this.engine);
    return values.map((_, v) =>
      this.counts.map((_, G) =>
        gradient.sumBinSums(
          sums.map((parts) => parts[v]![G]!),
          masked ? masked.masks[v]![G]! : null,
          masked?.publicKey,
        ),
      ),
    );
  }

  async dispose(): Promise<void> {
    for (const batch of this.kept.values()) batch.dispose();
    this.kept.clear();
    await this.pool?.terminate();
  }
}

/** The host's per-bin sums over all rows for each group of features (BinSums, nothing kept): one ciphertext per group. */
export async function hostBinSums(engine: CkksEngine, valueChunks: Uint8Array[], keys: GuestKeys, groups: readonly BinGroup[]): Promise<Uint8Array[]> {
  const sums = new BinSums(engine, groups);
  try {
    return (await sums.sums([valueChunks], keys))[0]!;
  } finally {
    await sums.dispose();
  }
}

/**
 * The guest's side: the sum of each of the `count` bin columns (decrypted, classes summed in the clear), of the
 * values' real part or, for complex values (encryptRowValues with an imaginary part), of their imaginary part.
 * Unlike the arbiter's gradient, nothing is gained by summing inside the decryption first: the guest's own values are
 * what the slots hide, and the host's mask, whose class sums are zero, hides every slot from the guest.
 */
export function openBinSums(engine: CkksEngine, ciphertext: Uint8Array, count: number, secretKey: Uint8Array, part: 'real' | 'imaginary' = 'real'): Float64Array {
  if (!Number.isInteger(count) || count < 1 || count > engine.slotCount) throw new RangeError(`count must be an integer from 1 to ${engine.slotCount}, got ${count}`);
  return residueClassSums(VerticalGradient.of(engine).decryptGradientSlots(ciphertext, engine.slotCount, secretKey, part), count);
}

/** The guest's side for labels: the default count of each of the `count` bin columns (decrypted, classes summed, rounded). */
export function openLabelSums(engine: CkksEngine, ciphertext: Uint8Array, count: number, secretKey: Uint8Array): number[] {
  const sums = openBinSums(engine, ciphertext, count, secretKey);
  return Array.from(sums, (v) => {
    const n = Math.round(v);
    // Each class sum is an integer count; an error near one half means the CKKS noise or the mask was not as designed.
    if (Math.abs(v - n) > 0.25 || n < 0)
      throw new FedcreditError(ErrorCode.PROTOCOL, `a per-bin label sum decrypted to ${v}, not a count`, "restart the job; if it recurs, report it with both parties' logs");
    return n;
  });
}
