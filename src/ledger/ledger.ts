/**
 * The durable audit ledger: an append-only log of signed, hash-chained entries in one folder, with an RFC 6962
 * Merkle tree over them whose signed tree heads are handed out as receipts. docs/audit-ledger.md specifies the
 * folder; verify.ts checks it.
 *
 * Durability: append() resolves only when its blobs and its record are on disk (fsync). Appends are serialised in
 * call order; appends that arrive while a write is in flight are committed together with one fsync (group commit),
 * each still with its own sequence number and its own tree head.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { decodeMessage, encodeMessage } from '../wire/proto.js';
import { canonicalJson } from './canonical.js';
import { LedgerError, type Problem } from './errors.js';
import { fsyncDir, loadOrCreateSigningKey, sign, verifySignature } from './keys.js';
import { CompactTree, MerkleLevels, leafHash, verifyConsistency } from './merkle.js';
import { equalBytes, hex, sha256 } from '../bytes.js';
import {
  BLOBS_DIR,
  checkBlob,
  LOCK_FILE,
  LOG_FILE,
  SIGNERS_FILE,
  TORN_PREFIX,
  ZERO_HASH,
  decodeSignedEntry,
  type DecodedEntry,
  encodeLedgerEntry,
  encodeSignedEntry,
  frameRecord,
  scanRecords,
  treeHeadSignatureInput,
  type BlobRef,
} from './records.js';

export { LedgerError } from './errors.js';
export type { LedgerProblem, Problem } from './errors.js';

export interface LedgerEvent {
  kind: string;
  jobId: string;
  /** Plain JSON values only (see canonical.ts); bytes are hex-encoded by the caller or passed as blobs. */
  body: Record<string, unknown>;
  /** Payloads stored content-addressed in blobs/ and referenced from the entry by name, SHA-256 and size. */
  blobs?: { name: string; bytes: Uint8Array }[];
}

export interface SignedTreeHead {
  size: number;
  root: Uint8Array;
  unixMs: number;
  signer: string;
  signature: Uint8Array;
}

export interface AppendResult {
  seq: number;
  /** The signed tree head over entries 0..seq: the receipt for this entry. */
  treeHead: SignedTreeHead;
}

/** Events per group commit, at most. */
const MAX_BATCH = 256;

interface PreparedBlob {
  name: string;
  bytes: Uint8Array;
  sha256: Uint8Array;
  hex: string;
}

interface Queued {
  kind: string;
  jobId: string;
  bodyJson: string;
  blobs: PreparedBlob[];
  resolve: (r: AppendResult) => void;
  reject: (err: unknown) => void;
}

/** Folders with an open Ledger in this process (so a second open in the same process is refused too). */
const openHere = new Set<string>();

export class Ledger {
  /** Set by open() when the log ended in an incomplete record, which was moved to `file` (the caller logs this). */
  tornTail?: { seq: number; bytes: number; file: string };

  private readonly logPath: string;
  private readonly blobsDir: string;
  private queue: Queued[] = [];
  private draining?: Promise<void>;
  private failure?: LedgerError;
  private closing?: Promise<void>;
  private head?: SignedTreeHead;
  /** While held, appends wait in the queue unwritten (see holdAppends). */
  private held = false;

  private constructor(
    readonly dir: string,
    readonly author: string,
    readonly publicKeyRaw: Uint8Array,
    private readonly privateKey: KeyObject,
    private readonly fh: FileHandle,
    private fileSize: number,
    private count: number,
    private tree: CompactTree,
    private prevHash: Uint8Array,
    private lastUnixMs: number,
    /** Every entry's leaf hash and the subtree hashes above them, for consistency proofs. */
    private readonly leaves: MerkleLevels,
  ) {
    this.logPath = join(dir, LOG_FILE);
    this.blobsDir = join(dir, BLOBS_DIR);
  }

  /**
   * Open the ledger in `dir` for appending as `author`, creating the folder, the log and the signing key as needed.
   * Publishes the author's public key in signers.json (refusing a different key for an author already listed),
   * checks the existing log's framing, sequence numbers and hash chain (throwing a LedgerError with the problem and
   * seq if it is damaged: it will not extend a damaged ledger), checks that every blob an entry references is in
   * blobs/ with the recorded SHA-256 (blob_missing / blob_mismatch otherwise), and recovers from a torn final record
   * (see tornTail).
   */
  static async open(dir: string, author: string, signingKeyFile: string): Promise<Ledger> {
    if (typeof author !== 'string' || author === '') throw new LedgerError('invalid_event', 'a ledger author name is required');
    const root = resolve(dir);
    // The record holds ciphertexts, aggregates and models: readable by its keeper (and auditors it hands copies to) only.
    await mkdir(join(root, BLOBS_DIR), { recursive: true, mode: 0o700 });
    const releaseLock = await acquireLock(root);
    let fh: FileHandle | undefined;
    try {
      const key = loadOrCreateSigningKey(signingKeyFile);
      await publishSigner(root, author, key.publicKeyRaw);
      const logPath = join(root, LOG_FILE);
      await (await open(logPath, 'a', 0o600)).close(); // create if absent
      fsyncDir(root); // so that the log, signers.json and blobs/ exist after a crash
      fh = await open(logPath, 'r+');
      const bytes = await fh.readFile();
      const scan = scanRecords(bytes);
      const damaged = (seq: number, problem: Problem, detail: string): LedgerError =>
        new LedgerError(problem, `the ledger ${root} is damaged at entry ${seq} (${problem}: ${detail}); it will not be extended. Run \`fedcredit audit verify ${root}\` for the full report.`, {
          seq,
        });
      if (scan.broken) throw damaged(scan.broken.index, 'changed', scan.broken.reason);
      const tree = new CompactTree();
      const leaves = new MerkleLevels();
      const withBlobs: Pick<DecodedEntry, 'seq' | 'kind' | 'blobs'>[] = [];
      let prev = ZERO_HASH;
      let lastUnixMs = 0;
      for (const rec of scan.records) {
        if (!rec.crcOk) throw damaged(rec.index, 'changed', `its record at byte ${rec.offset} fails its CRC-32`);
        let entry: ReturnType<typeof decodeSignedEntry>['entry'];
        try {
          entry = decodeSignedEntry(rec.payload).entry;
        } catch (err) {
          throw damaged(rec.index, 'changed', `its record is not a SignedEntry (${(err as Error).message})`);
        }
        if (entry.seq !== rec.index) throw damaged(rec.index, entry.seq > rec.index ? 'missing' : 'reordered', `the record in that position is entry ${entry.seq}`);
        if (!equalBytes(entry.prevHash, prev)) throw damaged(rec.index, 'changed', 'its prev_hash is not the hash of the entry before it');
        const leaf = leafHash(rec.payload);
        tree.append(leaf);
        leaves.append(leaf);
        prev = sha256(rec.payload);
        lastUnixMs = Math.max(lastUnixMs, entry.unixMs);
        if (entry.blobs.length > 0) withBlobs.push({ seq: entry.seq, kind: entry.kind, blobs: entry.blobs });
      }
      const checked = new Set<string>();
      for (const entry of withBlobs) {
        for (const ref of entry.blobs) {
          const id = hex(ref.sha256);
          if (checked.has(`${id}/${ref.size}`)) continue;
          const problem = await checkBlob(join(root, BLOBS_DIR, id), ref.sha256, ref.size);
          if (problem === 'absent')
            throw damaged(entry.seq, 'blob_missing', `entry ${entry.seq} (${entry.kind}) references blob "${ref.name}" (${ref.size} bytes, SHA-256 ${id}), which is not in ${BLOBS_DIR}/`);
          if (problem)
            throw damaged(
              entry.seq,
              'blob_mismatch',
              `${BLOBS_DIR}/${id} (blob "${ref.name}" of entry ${entry.seq}, ${entry.kind}) ${problem}, where the entry recorded ${ref.size} bytes with SHA-256 ${id}`,
            );
          checked.add(`${id}/${ref.size}`);
        }
      }
      const ledger = new Ledger(root, author, key.publicKeyRaw, key.privateKey, fh, scan.end, scan.records.length, tree, prev, lastUnixMs, leaves);
      if (scan.torn) {
        // Keep the incomplete record's bytes as evidence, durably, before cutting them off the log.
        const file = await writeTornFile(root, bytes.subarray(scan.torn.offset));
        await fh.truncate(scan.end);
        await fh.sync();
        ledger.tornTail = { seq: scan.torn.index, bytes: scan.torn.bytes, file };
      }
      return ledger;
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await releaseLock();
      throw err;
    }
  }

  /** Number of entries on disk (appended and synced). */
  get size(): number {
    return this.count;
  }

  /** Record an event. Resolves once the entry and its blobs are durable, with its seq and the tree head over it. */
  append(event: LedgerEvent): Promise<AppendResult> {
    if (this.closing) return Promise.reject(new LedgerError('closed', `the ledger ${this.dir} is closed; cannot record ${event?.kind}`));
    let prepared: Omit<Queued, 'resolve' | 'reject'>;
    try {
      prepared = prepareEvent(event);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ ...prepared, resolve, reject });
      this.kick();
    });
  }

  /** The signed tree head over every entry appended so far. */
  treeHead(): SignedTreeHead {
    if (!this.head || this.head.size !== this.count) this.head = this.signHead(this.count, this.tree.root());
    return copyHead(this.head);
  }

  /**
   * Hold appends: they queue, unwritten, until releaseAppends() (or are refused by refuseAppends()). A coordinator
   * holds its ledger at start until the participants have shown it their newest receipts.
   */
  holdAppends(): void {
    this.held = true;
  }

  releaseAppends(): void {
    this.held = false;
    this.kick();
  }

  /** Refuse every queued and later append with `err` (the ledger must not be extended). */
  refuseAppends(err: LedgerError): void {
    this.failure ??= err;
    this.held = false;
    this.kick();
  }

  /**
   * Is this ledger an extension of the one `head` (a receipt a participant kept) was issued for? Checks the receipt's
   * signature with this ledger's key, then the RFC 6962 consistency proof from the receipt's size to the current
   * tree. `proof` is that proof, for the participant to check in turn.
   */
  checkReceipt(head: SignedTreeHead): { ok: true; proof: Uint8Array[] } | { ok: false; problem: 'foreign' | 'shorter' | 'inconsistent'; detail: string } {
    const issued = Number.isSafeInteger(head.unixMs) && head.unixMs >= 0 ? new Date(head.unixMs).toISOString() : '?';
    if (head.signer !== this.author || !verifySignature(this.publicKeyRaw, treeHeadSignatureInput(head.size, head.root, head.unixMs), head.signature)) {
      return { ok: false, problem: 'foreign', detail: `the receipt (size ${head.size}, signer "${head.signer}", issued ${issued}) is not signed by this ledger's key (author "${this.author}")` };
    }
    if (head.size > this.count) {
      return {
        ok: false,
        problem: 'shorter',
        detail: `the receipt (issued ${issued}) covers ${head.size} entries, but the ledger ${this.dir} holds ${this.count}: ${head.size - this.count === 1 ? `entry ${this.count} was` : `entries ${this.count}..${head.size - 1} were`} removed after the receipt was issued`,
      };
    }
    const proof = this.leaves.consistencyProof(head.size, this.count);
    if (!verifyConsistency(head.size, this.count, head.root, this.tree.root(), proof)) {
      return {
        ok: false,
        problem: 'inconsistent',
        detail: `the receipt (issued ${issued}) covers ${head.size} entries with root ${hex(head.root).slice(0, 16)}…, but the first ${head.size} entries of the ledger ${this.dir} (of ${this.count}) have another root: its history was rewritten after the receipt was issued`,
      };
    }
    return { ok: true, proof };
  }

  /** Wait for the appends already made, then release the log and the folder's lock. Later appends are refused. */
  close(): Promise<void> {
    if (this.held) this.refuseAppends(new LedgerError('closed', `the ledger ${this.dir} was closed while its appends were held; they were not recorded`));
    this.closing ??= (async () => {
      while (this.draining) await this.draining;
      await this.fh.close();
      openHere.delete(this.dir);
      await unlink(join(this.dir, LOCK_FILE)).catch(() => undefined);
    })();
    return this.closing;
  }

  private get waiting(): boolean {
    return this.held && !this.failure;
  }

  private kick(): void {
    if (this.draining || this.waiting) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.waiting) {
      const batch = this.queue.splice(0, MAX_BATCH);
      if (this.failure) {
        for (const q of batch) q.reject(this.failure);
        continue;
      }
      try {
        await this.commit(batch);
      } catch (err) {
        for (const q of batch) q.reject(err);
      }
    }
  }

  /** Write the batch's blobs, then its records, fsync, and only then publish the new state and resolve. */
  private async commit(batch: Queued[]): Promise<void> {
    let wroteBlob = false;
    const seen = new Set<string>();
    try {
      for (const q of batch) {
        for (const b of q.blobs) {
          if (seen.has(b.hex)) continue;
          seen.add(b.hex);
          if (await this.writeBlob(b)) wroteBlob = true;
        }
      }
      if (wroteBlob) fsyncDir(this.blobsDir);
    } catch (err) {
      // Nothing was written to the log: these events are not recorded, and the ledger stays usable.
      throw new LedgerError(
        'write_failed',
        `storing a blob in ${this.blobsDir} failed (${(err as Error).message}); ${batch.length === 1 ? 'the event was' : `these ${batch.length} events were`} not recorded`,
        { seq: this.count, cause: err },
      );
    }

    const tree = this.tree.clone();
    let prev = this.prevHash;
    let seq = this.count;
    const frames: Buffer[] = [];
    const staged: { q: Queued; seq: number; root: Uint8Array; leaf: Uint8Array }[] = [];
    for (const q of batch) {
      this.lastUnixMs = Math.max(this.lastUnixMs, Date.now()); // entry times never go backwards
      const blobs: BlobRef[] = q.blobs.map((b) => ({ name: b.name, sha256: b.sha256, size: b.bytes.length }));
      const entryBytes = encodeLedgerEntry({ seq, unixMs: this.lastUnixMs, author: this.author, prevHash: prev, jobId: q.jobId, kind: q.kind, bodyJson: q.bodyJson, blobs });
      const signed = encodeSignedEntry(entryBytes, sign(this.privateKey, entryBytes));
      frames.push(frameRecord(signed));
      const leaf = leafHash(signed);
      tree.append(leaf);
      prev = sha256(signed);
      staged.push({ q, seq, root: tree.root(), leaf });
      seq += 1;
    }
    const bytes = Buffer.concat(frames);
    try {
      await writeFully(this.fh, bytes, this.fileSize);
      await this.fh.sync();
    } catch (err) {
      // The log may now end in a partial record, and after a failed fsync the page cache cannot be trusted:
      // refuse everything until the ledger is reopened (open() recovers a torn tail).
      this.failure = new LedgerError(
        'write_failed',
        `writing entries ${this.count}..${seq - 1} to ${this.logPath} failed (${(err as Error).message}); the ledger accepts no more entries until it is reopened`,
        { seq: this.count, cause: err },
      );
      throw this.failure;
    }
    this.tree = tree;
    this.prevHash = prev;
    this.fileSize += bytes.length;
    for (const st of staged) this.leaves.append(st.leaf);
    for (const s of staged) {
      this.count = s.seq + 1;
      this.head = this.signHead(s.seq + 1, s.root);
      s.q.resolve({ seq: s.seq, treeHead: copyHead(this.head) });
    }
  }

  /** Store a blob under its SHA-256 (written and synced under a temporary name, then renamed); false if present. */
  private async writeBlob(b: PreparedBlob): Promise<boolean> {
    const path = join(this.blobsDir, b.hex);
    try {
      const st = await stat(path);
      if (st.isFile() && st.size === b.bytes.length) return false;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const tmp = join(this.blobsDir, `.tmp-${b.hex}-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await writeFully(fh, b.bytes, 0);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    return true;
  }

  private signHead(size: number, root: Uint8Array): SignedTreeHead {
    const unixMs = Date.now();
    return { size, root, unixMs, signer: this.author, signature: sign(this.privateKey, treeHeadSignatureInput(size, root, unixMs)) };
  }
}

const copyHead = (h: SignedTreeHead): SignedTreeHead => ({ ...h, root: new Uint8Array(h.root), signature: new Uint8Array(h.signature) });

function prepareEvent(event: LedgerEvent): Omit<Queued, 'resolve' | 'reject'> {
  if (!event || typeof event !== 'object') throw new LedgerError('invalid_event', 'a ledger event must be an object');
  if (typeof event.kind !== 'string' || event.kind === '') throw new LedgerError('invalid_event', 'a ledger event needs a non-empty kind');
  if (typeof event.jobId !== 'string') throw new LedgerError('invalid_event', `ledger event ${event.kind}: jobId must be a string`);
  if (!event.body || typeof event.body !== 'object' || Array.isArray(event.body)) throw new LedgerError('invalid_event', `ledger event ${event.kind}: the body must be a plain object`);
  const bodyJson = canonicalJson(event.body); // now, so later changes to the caller's object cannot reach the record
  const names = new Set<string>();
  const blobs = (event.blobs ?? []).map((b, i): PreparedBlob => {
    if (typeof b?.name !== 'string' || b.name === '') throw new LedgerError('invalid_event', `ledger event ${event.kind}: blob ${i} needs a non-empty name`);
    if (names.has(b.name)) throw new LedgerError('invalid_event', `ledger event ${event.kind}: two blobs are named "${b.name}"`);
    names.add(b.name);
    if (!(b.bytes instanceof Uint8Array)) throw new LedgerError('invalid_event', `ledger event ${event.kind}: blob "${b.name}" must be a Uint8Array`);
    const bytes = new Uint8Array(b.bytes); // a copy: the caller may reuse its buffer before the write happens
    const digest = sha256(bytes);
    return { name: b.name, bytes, sha256: digest, hex: hex(digest) };
  });
  return { kind: event.kind, jobId: event.jobId, bodyJson, blobs };
}

async function writeFully(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw new Error('the file system accepted no bytes');
    done += bytesWritten;
  }
}

async function writeTornFile(root: string, bytes: Uint8Array): Promise<string> {
  for (let stamp = Date.now(); ; stamp++) {
    const file = join(root, `${TORN_PREFIX}${stamp}.bin`);
    try {
      const fh = await open(file, 'wx', 0o600);
      try {
        await writeFully(fh, bytes, 0);
        await fh.sync();
      } finally {
        await fh.close();
      }
      fsyncDir(root);
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** Add `author` → public key to signers.json (atomically), or refuse if it names the author with another key. */
async function publishSigner(root: string, author: string, publicKeyRaw: Uint8Array): Promise<void> {
  const file = join(root, SIGNERS_FILE);
  let current: Record<string, string> = {};
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    current = parsed as Record<string, string>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new LedgerError('signer_conflict', `${file} cannot be read (${(err as Error).message}); it must be a JSON object {author: Ed25519 public key hex}`, { cause: err });
    }
  }
  const mine = hex(publicKeyRaw);
  const listed = Object.hasOwn(current, author) ? current[author] : undefined;
  if (listed !== undefined && String(listed).toLowerCase() !== mine) {
    throw new LedgerError(
      'signer_conflict',
      `${file} lists author "${author}" with public key ${String(listed).slice(0, 16)}…, but the signing key in use has public key ${mine.slice(0, 16)}…: ` +
        `its existing entries would no longer verify. Use the original key file, or another author name for the new key.`,
    );
  }
  if (listed !== undefined) return;
  const next: Record<string, string> = {};
  for (const k of [...Object.keys(current), author].sort()) next[k] = k === author ? mine : current[k]!;
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(JSON.stringify(next, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  fsyncDir(root);
}

/**
 * One writer per ledger folder: <dir>/writer.lock holds {pid, host, since}. A lock whose process is gone (a crash)
 * is taken over; a lock held by a live process, or by another host (which cannot be checked), is refused.
 */
async function acquireLock(root: string): Promise<() => Promise<void>> {
  const file = join(root, LOCK_FILE);
  const me = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(file, JSON.stringify(me) + '\n', { flag: 'wx', mode: 0o600 });
      openHere.add(root);
      return async () => {
        openHere.delete(root);
        await unlink(file).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: { pid?: unknown; host?: unknown; since?: unknown } | undefined;
    try {
      holder = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      holder = undefined; // unreadable: written by a process that crashed while creating it
    }
    if (holder && lockIsLive(root, holder)) {
      throw new LedgerError(
        'locked',
        `the ledger ${root} is open for writing by process ${String(holder.pid)} on ${String(holder.host)} (since ${String(holder.since)}); only one writer may append to a ledger. ` +
          `If that process is certainly gone, delete ${file}.`,
      );
    }
    await unlink(file).catch(() => undefined);
  }
  throw new LedgerError('locked', `could not take the lock ${file}: other processes keep taking it`);
}

function lockIsLive(root: string, holder: { pid?: unknown; host?: unknown }): boolean {
  if (typeof holder.pid !== 'number') return false;
  if (holder.host !== hostname()) return true;
  if (holder.pid === process.pid) return openHere.has(root);
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface TreeHeadMessage {
  size: number;
  root: Uint8Array;
  unixMs: number;
  signer: string;
  signature: Uint8Array;
}

/** The TreeHead proto message: what participants receive and keep as receipts. */
export function encodeTreeHead(h: SignedTreeHead): Uint8Array {
  return encodeMessage('TreeHead', { size: h.size, root: h.root, unixMs: h.unixMs, signer: h.signer, signature: h.signature } satisfies TreeHeadMessage);
}

/** Decode a TreeHead message. Throws on malformed bytes. */
export function decodeTreeHead(bytes: Uint8Array): SignedTreeHead {
  const m = decodeMessage<TreeHeadMessage>('TreeHead', bytes);
  if (!Number.isSafeInteger(m.size) || !Number.isSafeInteger(m.unixMs)) throw new RangeError('a TreeHead integer is beyond 2^53');
  return { size: m.size, root: new Uint8Array(m.root), unixMs: m.unixMs, signer: m.signer, signature: new Uint8Array(m.signature) };
}

/** Is the tree head signed by the key signers.json lists for its signer? (Says nothing about the ledger's content.) */
export function verifyTreeHead(h: SignedTreeHead, signers: Record<string, Uint8Array>): boolean {
  if (!Object.hasOwn(signers, h.signer)) return false;
  if (h.root.length !== 32 || !Number.isSafeInteger(h.size) || h.size < 0 || !Number.isSafeInteger(h.unixMs) || h.unixMs < 0) return false;
  return verifySignature(signers[h.signer]!, treeHeadSignatureInput(h.size, h.root, h.unixMs), h.signature);
}
