/**
 * ECDH PSI over sets of any size (docs/protocol-vertical.md §2), in memory that does not grow with them: ids stay
 * in files on each party's disk, travel in chunks of about a megabyte with a window of acknowledgements, and the
 * guest matches the doubly-blinded values one bucket at a time.
 *
 * Guest (key a) and host (key b), for each host:
 *   1. each party blinds its own ids: the guest keeps H(g)^a in its prepared order; the host sorts H(h)^b, so its
 *      list's order is that of the blinded values and says nothing about its file;
 *   2. at once: the guest streams H(g)^a to the host, which returns H(g)^ab in the same order; the host streams its
 *      sorted H(h)^b to the guest, which blinds it to H(h)^ab. The guest spills both to buckets by first byte;
 *   3. the guest joins each bucket's pair of lists: for every guest id, the host's position of the same enterprise;
 *   4. the guest streams to the host, per part of the job, the positions of the shared enterprises in the shared
 *      order; the host maps them to its rows.
 */
import { closeSync, mkdirSync, openSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, FedcreditError } from '../errors.js';
import { FileAppender, readRecordPieces } from '../data/row-store.js';
import { RecordSpill, sortedOrder, SPILL_BUCKETS } from '../data/spill.js';
import { BlindedIndex, POINT_BYTES, pointsOfDigests, type PsiKey } from './ecdh.js';
import { DIGEST_BYTES, ID_RECORD_BYTES, type PreparedIdSet } from './ids.js';
import { ackKind, chunkKind, PSI_MESSAGES, type PsiMessage, type PsiMessageOf, type PsiStream, type PsiWireKind } from './kinds.js';

/** How one party's side of a PSI reaches the other's: payloads by kind (src/psi/kinds.ts), in order of nothing but their kind. */
export interface PsiLink {
  send(kind: PsiWireKind, bytes: Uint8Array): Promise<void>;
  receive(kind: PsiWireKind): Promise<Uint8Array>;
  /** Throws when this side's work should stop (a newer attempt of the step, the job ended); called between pieces of work. */
  checkpoint(): void;
}

/** The most a chunk may carry: what readRecordPieces gives (a megabyte), or one blinding of it. */
const MAX_CHUNK_BYTES = 1 << 20;
/** Chunks a sender may have unacknowledged: enough to keep both ends busy, few enough to bound the receiver's inbox. */
const WINDOW = 4;
/** Blindings in flight on one stream: one on the workers while the next is prepared. */
export const BLINDING_DEPTH = 2;
/** A blinded value and a uint32 (an index or a row). */
export const VALUE_RECORD_BYTES = POINT_BYTES + 4;
/** The host's blinded ids in sorted order, and the row of each (uint32). */
export const HOST_BLINDED_FILE = 'host-blinded.bin';
const ORDER_FILE = 'order.u32';
/** Position meaning "this host does not hold the enterprise" in an alignment sent to a host. */
export const NOT_HELD = 0xffffffff;

const protocolError = (what: string) => new FedcreditError(ErrorCode.PROTOCOL, what, 'restart the job; if it recurs, upgrade all parties to the same version');

/** One of the scoring PSI's messages, by its codec. */
export function sendMessage<K extends PsiMessage>(link: PsiLink, kind: K, value: Parameters<(typeof PSI_MESSAGES)[K]['encode']>[0]): Promise<void> {
  return link.send(kind, (PSI_MESSAGES[kind].encode as (v: typeof value) => Uint8Array)(value));
}

export async function receiveMessage<K extends PsiMessage>(link: PsiLink, kind: K): Promise<PsiMessageOf<K>> {
  return PSI_MESSAGES[kind].decode(await link.receive(kind)) as PsiMessageOf<K>;
}

/**
 * Send `chunks` as `kind#0`, `kind#1`, … (each framed with a 1 = data byte) and an end marker (a lone 0), waiting
 * for the receiver's `kind.ack#k` whenever WINDOW chunks are unacknowledged, and for all of them at the end.
 */
export async function sendStream(link: PsiLink, kind: PsiStream, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
  let k = 0;
  const acked = (i: number) => link.receive(ackKind(kind, i));
  for await (const chunk of chunks) {
    if (k >= WINDOW) await acked(k - WINDOW);
    const framed = new Uint8Array(chunk.length + 1);
    framed[0] = 1;
    framed.set(chunk, 1);
    await link.send(chunkKind(kind, k++), framed);
  }
  await link.send(chunkKind(kind, k), new Uint8Array([0]));
  for (let i = Math.max(0, k - WINDOW); i < k; i++) await acked(i);
}

/** The chunks of a sendStream, each acknowledged when the consumer asks for the next. */
export async function* receiveStream(link: PsiLink, kind: PsiStream): AsyncGenerator<Uint8Array> {
  for (let k = 0; ; k++) {
    const bytes = await link.receive(chunkKind(kind, k));
    if (bytes[0] === 0 && bytes.length === 1) return;
    if (bytes[0] !== 1) throw protocolError(`chunk ${k} of ${kind} has no stream frame`);
    if (bytes.length > MAX_CHUNK_BYTES + 1) throw protocolError(`chunk ${k} of ${kind} holds ${bytes.length - 1} bytes, more than ${MAX_CHUNK_BYTES}`);
    yield bytes.subarray(1);
    await link.send(ackKind(kind, k), new Uint8Array(0));
  }
}

/** `fn` over `source` with up to `depth` calls in flight, results in source order. */
export async function* mapInOrder<T, U>(source: AsyncIterable<T> | Iterable<T>, fn: (item: T) => Promise<U>, depth: number): AsyncGenerator<U> {
  const pending: Promise<U>[] = [];
  try {
    for await (const item of source) {
      const result = fn(item);
      result.catch(() => undefined); // awaited below, in order; this only keeps a later failure from being "unhandled"
      pending.push(result);
      if (pending.length >= depth) yield await pending.shift()!;
    }
    while (pending.length > 0) yield await pending.shift()!;
  } finally {
    await Promise.allSettled(pending);
  }
}

/** The blinded points of a prepared set's records, in its order, with the rows they came from. */
export function blindOwn(key: PsiKey, salt: Uint8Array, ids: PreparedIdSet, checkpoint: () => void): AsyncGenerator<{ blinded: Buffer; rows: Uint32Array }> {
  return mapInOrder(
    ids.pieces(),
    (piece) => {
      checkpoint();
      // The piece's buffer is reused by the next read: take what is needed now.
      const view = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      const rows = Uint32Array.from({ length: piece.length / ID_RECORD_BYTES }, (_, i) => view.readUInt32LE(i * ID_RECORD_BYTES + DIGEST_BYTES));
      const points = pointsOfDigests(salt, piece, ID_RECORD_BYTES);
      return key.blind(points).then((blinded) => ({ blinded, rows }));
    },
    BLINDING_DEPTH,
  );
}

/** Spill each 32-byte value of `values` with a uint32 beside it: `tag(i)` for the i-th value. */
export function spillValues(spill: RecordSpill, values: Uint8Array, tag: (i: number) => number): void {
  if (values.length % POINT_BYTES !== 0) throw protocolError(`a PSI chunk of ${values.length} bytes does not hold whole ${POINT_BYTES}-byte points`);
  const record = Buffer.alloc(VALUE_RECORD_BYTES);
  for (let i = 0; i < values.length / POINT_BYTES; i++) {
    record.set(values.subarray(i * POINT_BYTES, (i + 1) * POINT_BYTES));
    record.writeUInt32LE(tag(i), POINT_BYTES);
    spill.add(record[0]!, record);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Guest

export interface GuestMatch {
  /** Position in the prepared (digest) order. */
  index: number;
  digest: Uint8Array;
  row: number;
  /** Per host, its position of the enterprise, or -1. A view reused for the next match: copy what you keep. */
  positions: Int32Array;
}

/** The guest's half: run once per job step, then read matches() and send each host its alignment. */
export class GuestPsi {
  private constructor(
    private readonly dir: string,
    private readonly ids: PreparedIdSet,
    private readonly pairs: RecordSpill[],
    private readonly rangeSize: number,
    /** Per host: how many ids it holds, and how many of the guest's. */
    readonly hostIds: number[],
    readonly sharedWithGuest: number[],
  ) {}

  static async run(key: PsiKey, salt: Uint8Array, ids: PreparedIdSet, links: PsiLink[], dir: string): Promise<GuestPsi> {
    rmSync(dir, { recursive: true, force: true });
    const ownFile = join(dir, 'guest-blinded.bin');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ownOut = new FileAppender(ownFile);
    try {
      // Every link belongs to the same step attempt, so any one of them says whether to go on.
      for await (const { blinded } of blindOwn(key, salt, ids, links[0]?.checkpoint ?? (() => undefined))) ownOut.write(blinded);
    } finally {
      ownOut.close();
    }
    const rangeSize = Math.max(1, Math.ceil(ids.count / SPILL_BUCKETS));
    const results = await Promise.all(links.map((link, h) => GuestPsi.withHost(key, link, ownFile, ids.count, rangeSize, join(dir, `host-${h}`))));
    rmSync(ownFile, { force: true });
    return new GuestPsi(
      dir,
      ids,
      results.map((r) => r.pairs),
      rangeSize,
      results.map((r) => r.hostIds),
      results.map((r) => r.shared),
    );
  }

  /** Steps 2 and 3 with one host: the (guest index, host position) of every shared id, spilled by guest index. */
  private static async withHost(key: PsiKey, link: PsiLink, ownFile: string, guestIds: number, rangeSize: number, dir: string): Promise<{ pairs: RecordSpill; hostIds: number; shared: number }> {
    const guestDouble = new RecordSpill(join(dir, 'guest-double'), VALUE_RECORD_BYTES);
    const hostDouble = new RecordSpill(join(dir, 'host-double'), VALUE_RECORD_BYTES);
    let returned = 0;
    let hostIds = 0;
    await Promise.all([
      sendStream(link, 'psi.guest_blinded', readRecordPieces(ownFile, POINT_BYTES)),
      (async () => {
        for await (const chunk of receiveStream(link, 'psi.guest_double')) {
          spillValues(guestDouble, chunk, (i) => returned + i);
          returned += chunk.length / POINT_BYTES;
        }
      })(),
      (async () => {
        for await (const chunk of mapInOrder(receiveStream(link, 'psi.host_blinded'), (c) => key.blind(c), BLINDING_DEPTH)) {
          spillValues(hostDouble, chunk, (i) => hostIds + i);
          hostIds += chunk.length / POINT_BYTES;
        }
      })(),
    ]);
    if (returned !== guestIds) throw protocolError(`the host returned ${returned} blinded ids for the guest's ${guestIds}`);
    const pairs = new RecordSpill(join(dir, 'pairs'), 8);
    const pair = Buffer.alloc(8);
    let shared = 0;
    for (let b = 0; b < SPILL_BUCKETS; b++) {
      link.checkpoint();
      const guest = guestDouble.read(b);
      const host = hostDouble.read(b);
      const index = new BlindedIndex(host, VALUE_RECORD_BYTES);
      for (let at = 0; at < guest.length; at += VALUE_RECORD_BYTES) {
        const j = index.find(guest, at);
        if (j < 0) continue;
        const guestIndex = guest.readUInt32LE(at + POINT_BYTES);
        pair.writeUInt32LE(guestIndex, 0);
        pair.writeUInt32LE(host.readUInt32LE(j * VALUE_RECORD_BYTES + POINT_BYTES), 4);
        shared++;
        pairs.add(Math.floor(guestIndex / rangeSize), pair);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    guestDouble.remove();
    hostDouble.remove();
    return { pairs, hostIds, shared };
  }

  /** Every guest id in prepared order, with each host's position of it (or -1). */
  *matches(): Generator<GuestMatch> {
    const hosts = this.pairs.length;
    const positions = new Int32Array(hosts);
    const byHost = Array.from({ length: hosts }, () => new Int32Array(this.rangeSize));
    let range = -1;
    for (const { index, digest, row } of this.ids.records()) {
      const r = Math.floor(index / this.rangeSize);
      if (r !== range) {
        range = r;
        this.pairs.forEach((spill, h) => {
          const at = byHost[h]!.fill(-1);
          const bytes = spill.read(r);
          for (let o = 0; o < bytes.length; o += 8) at[bytes.readUInt32LE(o) - r * this.rangeSize] = bytes.readUInt32LE(o + 4);
        });
      }
      for (let h = 0; h < hosts; h++) positions[h] = byHost[h]![index - r * this.rangeSize]!;
      yield { index, digest, row, positions };
    }
  }

  /** Tell a host which of its positions make up each part of the job, in the shared order. */
  static async sendAlignment(link: PsiLink, counts: number[], positions: Iterable<Uint8Array>): Promise<void> {
    const header = Uint32Array.from([counts.length, ...counts]);
    await sendStream(
      link,
      'psi.alignment',
      (function* () {
        yield new Uint8Array(header.buffer);
        yield* positions;
      })(),
    );
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Host

/** The host's half: run once per job step, then receiveAlignment(). */
export class HostPsi {
  private constructor(
    private readonly dir: string,
    /** Ids this party holds in the PSI. */
    readonly count: number,
  ) {}

  static async run(key: PsiKey, salt: Uint8Array, ids: PreparedIdSet, link: PsiLink, dir: string): Promise<HostPsi> {
    rmSync(dir, { recursive: true, force: true });
    await HostPsi.blindSorted(key, salt, ids, dir, link.checkpoint);
    await Promise.all([sendStream(link, 'psi.host_blinded', readRecordPieces(join(dir, HOST_BLINDED_FILE), POINT_BYTES)), HostPsi.blindGuests(key, link)]);
    rmSync(join(dir, HOST_BLINDED_FILE), { force: true });
    return new HostPsi(dir, ids.count);
  }

  /**
   * Step 1 on the host: its ids blinded under `key`, sorted by blinded value into `dir`/host-blinded.bin, and beside
   * it order.u32, the row of each. Sorted: the order the guest sees depends on nothing it could relate to the file.
   */
  static async blindSorted(key: PsiKey, salt: Uint8Array, ids: PreparedIdSet, dir: string, checkpoint: () => void): Promise<void> {
    const own = new RecordSpill(join(dir, 'own'), VALUE_RECORD_BYTES);
    for await (const { blinded, rows } of blindOwn(key, salt, ids, checkpoint)) spillValues(own, blinded, (i) => rows[i]!);
    const values = new FileAppender(join(dir, HOST_BLINDED_FILE));
    const order = new FileAppender(join(dir, ORDER_FILE));
    try {
      for (let b = 0; b < SPILL_BUCKETS; b++) {
        checkpoint();
        const bytes = own.read(b);
        for (const i of sortedOrder(bytes, VALUE_RECORD_BYTES, POINT_BYTES)) {
          values.write(bytes.subarray(i * VALUE_RECORD_BYTES, i * VALUE_RECORD_BYTES + POINT_BYTES));
          order.write(bytes.subarray(i * VALUE_RECORD_BYTES + POINT_BYTES, (i + 1) * VALUE_RECORD_BYTES));
        }
      }
    } finally {
      values.close();
      order.close();
      own.remove();
    }
  }

  /** Step 2 on the host: the guest's blinded ids, blinded again under `key` and returned in the same order. */
  static blindGuests(key: PsiKey, link: PsiLink): Promise<void> {
    return sendStream(
      link,
      'psi.guest_double',
      mapInOrder(receiveStream(link, 'psi.guest_blinded'), (c) => key.blind(c), BLINDING_DEPTH),
    );
  }

  /** The alignment side of a host set blinded and sorted earlier into `dir` (blindSorted), kept there for reuse. */
  static over(dir: string, count: number): HostPsi {
    return new HostPsi(dir, count);
  }

  /**
   * The alignment from the guest: for each part, this party's rows in the shared order (-1 where it holds no row),
   * handed to `take` a chunk at a time. Returns the number of positions in each part.
   */
  async receiveAlignment(link: PsiLink, take: (part: number, rows: Int32Array) => void): Promise<number[]> {
    const fd = openSync(join(this.dir, ORDER_FILE), 'r');
    const cell = Buffer.alloc(4);
    let counts: number[] | undefined;
    let part = 0;
    let leftInPart = 0;
    try {
      for await (const chunk of receiveStream(link, 'psi.alignment')) {
        if (chunk.length % 4 !== 0) throw protocolError(`an alignment chunk of ${chunk.length} bytes does not hold whole positions`);
        // A copy: the chunk may be a view into a shared pool, at any offset.
        const words = new Uint32Array(new Uint8Array(chunk).buffer);
        if (!counts) {
          if (words.length < 1 || words.length !== 1 + words[0]!) throw protocolError("the alignment header does not hold its parts' counts");
          counts = Array.from(words.subarray(1));
          leftInPart = counts[0] ?? 0;
          continue;
        }
        const rows = Int32Array.from(words, (p) => {
          if (p === NOT_HELD) return -1;
          if (p >= this.count) throw protocolError(`the guest named position ${p} of ${this.count}`);
          if (readSync(fd, cell, 0, 4, p * 4) !== 4) throw new Error(`the PSI order file ended before position ${p}`);
          return cell.readUInt32LE(0);
        });
        for (let o = 0; o < rows.length; ) {
          while (leftInPart === 0) {
            if (++part >= counts.length) throw protocolError('the guest sent more positions than its alignment announced');
            leftInPart = counts[part]!;
          }
          const n = Math.min(leftInPart, rows.length - o);
          take(part, rows.subarray(o, o + n));
          leftInPart -= n;
          o += n;
        }
      }
    } finally {
      closeSync(fd);
    }
    if (!counts) throw protocolError('the guest sent an empty alignment');
    if (leftInPart > 0 || counts.slice(part + 1).some((n) => n > 0)) throw protocolError('the guest sent fewer positions than its alignment announced');
    return counts;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
