/**
 * The auditor's verifier: reads a (copied) ledger folder and the receipts participants kept, trusts nothing but
 * signers.json, and reports the first thing wrong, by entry sequence number. docs/audit-ledger.md, "Verification",
 * is the algorithm in prose; this file follows it step by step.
 */
import { type Dirent, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Problem } from './errors.js';
import { verifySignature } from './keys.js';
import { decodeTreeHead, verifyTreeHead, type SignedTreeHead } from './ledger.js';
import { CompactTree, EMPTY_ROOT, leafHash } from './merkle.js';
import { hex, sha256, equalBytes } from '../bytes.js';
import { BLOBS_DIR, LOG_FILE, SIGNERS_FILE, TORN_PREFIX, ZERO_HASH, checkBlob, decodeSignedEntry, parseSigners, scanRecords, type DecodedSigned, type RawRecord } from './records.js';

export type { Problem } from './errors.js';

export interface VerifyReport {
  ok: boolean;
  dir: string;
  /** Entries verified (all of them when ok; those before the first failing entry otherwise). */
  entries: number;
  /** Job ids of the verified entries, in order of first appearance. */
  jobs: string[];
  /** Authors listed in signers.json. */
  signers: string[];
  /** The Merkle tree head over the verified entries (root in hex). */
  treeHead: { size: number; root: string };
  /** Blob references checked against blobs/. */
  blobsChecked: number;
  /** Receipts whose signature and root were checked against the ledger. */
  receiptsChecked: number;
  /** The checked receipt that covers the most entries: where it was found, its size and when it was issued. */
  newestReceipt?: { where: string; size: number; issued: string };
  failure?: { seq: number; problem: Problem; detail: string };
  /** Things worth knowing that do not fail verification (unreadable receipts, set-aside torn bytes). */
  warnings: string[];
}

interface Receipt {
  where: string;
  head: SignedTreeHead;
}

type Failure = NonNullable<VerifyReport['failure']>;

const short = (b: Uint8Array) => `${hex(b).slice(0, 16)}…`;

export async function verifyLedger(dir: string, opts: { receiptsDir?: string } = {}): Promise<VerifyReport> {
  const report: VerifyReport = { ok: false, dir, entries: 0, jobs: [], signers: [], treeHead: { size: 0, root: hex(EMPTY_ROOT) }, blobsChecked: 0, receiptsChecked: 0, warnings: [] };

  // 1. The trusted keys.
  let signers: Record<string, Uint8Array> = Object.create(null);
  try {
    signers = parseSigners(readFileSync(join(dir, SIGNERS_FILE), 'utf8'));
  } catch (err) {
    report.warnings.push(`${SIGNERS_FILE} cannot be read (${(err as Error).message}): no entry can be attributed to a signer`);
  }
  report.signers = Object.keys(signers).sort();

  // 2. The records.
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(join(dir, LOG_FILE));
  } catch (err) {
    report.failure = { seq: 0, problem: 'missing', detail: `${join(dir, LOG_FILE)} cannot be read (${(err as Error).message}): there are no entries to verify` };
    return report;
  }
  const scan = scanRecords(bytes);
  const records = scan.records;
  noteTornFiles(dir, report.warnings);

  // 3. The receipts, read first so the tree's root is kept at each size a receipt names.
  const receipts = opts.receiptsDir ? collectReceipts(opts.receiptsDir, report.warnings) : [];
  const wanted = new Set(receipts.map((r) => r.head.size));
  const roots = new Map<number, Uint8Array>([[0, EMPTY_ROOT]]);

  // Lazily decoded records and record hashes, for locating entries that are out of place.
  const decoded = new Map<number, DecodedSigned | null>();
  const decodeAt = (i: number): DecodedSigned | null => {
    if (!decoded.has(i)) {
      let d: DecodedSigned | null = null;
      const record = records[i];
      if (record?.crcOk) {
        try {
          d = decodeSignedEntry(record.payload);
        } catch {
          d = null;
        }
      }
      decoded.set(i, d);
    }
    return decoded.get(i)!;
  };
  let hashes: Map<string, number> | undefined;
  const positionOfHash = (h: Uint8Array): number | undefined => {
    hashes ??= new Map(records.map((r) => [hex(sha256(r.payload)), r.index]));
    return hashes.get(hex(h));
  };

  // 4. Every entry in order; the first failure stops the walk.
  const blobResults = new Map<string, string | null>(); // "<sha hex>/<size>" → failure detail or null
  const tree = new CompactTree();
  const jobs = new Set<string>();
  let prev = ZERO_HASH;
  let entryFailure: Failure | undefined;
  for (const rec of records) {
    entryFailure = await checkEntry(rec, prev);
    if (entryFailure) break;
    const entry = decodeAt(rec.index)!.entry;
    tree.append(leafHash(rec.payload));
    prev = sha256(rec.payload);
    if (wanted.has(tree.size)) roots.set(tree.size, tree.root());
    if (entry.jobId) jobs.add(entry.jobId);
  }
  if (!entryFailure && scan.broken) {
    entryFailure = { seq: scan.broken.index, problem: 'changed', detail: `the framing of entries.log breaks off at entry ${scan.broken.index}: ${scan.broken.reason}` };
  }
  if (!entryFailure && scan.torn) {
    const n = scan.torn.index;
    entryFailure = {
      seq: n,
      problem: 'torn',
      detail:
        `entry ${n} is incomplete: the log ends ${scan.torn.bytes} bytes into its record, the trace of a write cut short (a crash while appending). ` +
        `${n === 0 ? 'There are no whole entries before it.' : `Entries 0..${n - 1} are whole and verified.`} Ledger.open sets these bytes aside in ${TORN_PREFIX}*.bin and continues at entry ${n}.`,
    };
  }
  report.entries = tree.size;
  report.jobs = [...jobs];
  report.treeHead = { size: tree.size, root: hex(tree.root()) };

  // 5. Receipts: each must be signed by a listed key and name the root of the ledger's first `size` entries.
  let receiptFailure: Failure | undefined;
  const matched: number[] = [];
  let coversTorn: Failure | undefined;
  for (const r of [...receipts].sort((a, b) => a.head.size - b.head.size)) {
    const { size } = r.head;
    const seq = Math.max(0, size - 1);
    const issued = new Date(r.head.unixMs).toISOString();
    if (!verifyTreeHead(r.head, signers)) {
      receiptFailure ??= {
        seq,
        problem: 'receipt_mismatch',
        detail: `receipt ${r.where} (tree head of size ${size}, signer "${r.head.signer}") is not signed by that signer's key in ${SIGNERS_FILE}: either the receipt is forged or the ledger's keys were replaced`,
      };
      continue;
    }
    if (entryFailure?.problem === 'torn' && size > entryFailure.seq && !coversTorn) {
      // A receipt was issued only after its entries were on disk: an incomplete entry it covers is not a crash.
      const n = entryFailure.seq;
      coversTorn = {
        seq: n,
        problem: 'receipt_mismatch',
        detail: `entry ${n} is incomplete, yet receipt ${r.where} (tree head of size ${size}, issued ${issued}) was issued after entries 0..${size - 1} were written: entries ${n}..${size - 1} were acknowledged to a participant and have since been cut or damaged`,
      };
    }
    if (size > records.length) {
      receiptFailure ??= {
        seq,
        problem: 'receipt_mismatch',
        detail: `receipt ${r.where} (tree head of size ${size}, issued ${issued}) covers entries 0..${size - 1}, but the ledger holds only ${records.length} whole entries: entries ${records.length}..${size - 1} were removed after this receipt was issued`,
      };
      continue;
    }
    const root = roots.get(size);
    if (!root) continue; // beyond the first failing entry: that failure is reported first
    report.receiptsChecked += 1;
    if (equalBytes(root, r.head.root)) {
      matched.push(size);
      if (!report.newestReceipt || size >= report.newestReceipt.size) report.newestReceipt = { where: r.where, size, issued };
      continue;
    }
    const lastGood = Math.max(0, ...matched.filter((m) => m < size));
    receiptFailure ??= {
      seq,
      problem: 'receipt_mismatch',
      detail:
        `receipt ${r.where} (tree head of size ${size}, issued ${issued}, signed by ${r.head.signer}) has root ${short(r.head.root)}, but the ledger's first ${size} entries have root ${short(root)}: ` +
        `history up to entry ${size - 1} was rewritten after this receipt was issued` +
        (lastGood > 0 ? ` (an earlier receipt of size ${lastGood} still matches, so the rewrite is within entries ${lastGood}..${size - 1})` : ''),
    };
  }

  // First failure in sequence order; on a tie the entry's own failure is the more specific (the sort is stable),
  // except that a torn entry a receipt covers is reported as the receipt mismatch it is.
  const failures = [coversTorn ?? entryFailure, receiptFailure].filter((f): f is Failure => f !== undefined).sort((a, b) => a.seq - b.seq);
  report.failure = failures[0];
  report.ok = report.failure === undefined;
  return report;

  async function checkEntry(rec: RawRecord, prevHash: Uint8Array): Promise<Failure | undefined> {
    const i = rec.index;
    const after = i === 0 ? 'at the start of the log' : `after entry ${i - 1}`;
    // Framing: the bytes are the ones written.
    if (!rec.crcOk)
      return { seq: i, problem: 'changed', detail: `the record of entry ${i} (byte ${rec.offset} of ${LOG_FILE}) does not match its CRC-32: its bytes were changed after they were written` };
    const d = decodeAt(i);
    if (!d) return { seq: i, problem: 'changed', detail: `the record of entry ${i} (byte ${rec.offset} of ${LOG_FILE}) is not a SignedEntry: its bytes were changed` };
    const { entry } = d;
    // Signature: the entry is what its author signed. (Checked before its position, so that an altered entry is
    // reported as altered and not as a gap or a reordering its altered seq or prev_hash would suggest.)
    if (!Object.hasOwn(signers, entry.author)) {
      return {
        seq: i,
        problem: 'unknown_signer',
        detail: `entry ${i} is signed by "${entry.author}", who is not listed in ${SIGNERS_FILE} (listed: ${Object.keys(signers).sort().join(', ') || 'nobody'})`,
      };
    }
    if (!verifySignature(signers[entry.author]!, d.entryBytes, d.signature)) {
      return {
        seq: i,
        problem: 'bad_signature',
        detail: `the signature of entry ${i} does not verify with ${entry.author}'s key in ${SIGNERS_FILE}: the entry was changed after it was signed, or signed with another key`,
      };
    }
    // Position: seq and prev_hash place the entry right after the previous one.
    if (entry.seq > i) {
      const later = records.findIndex((_r, j) => j > i && decodeAt(j)?.entry.seq === i);
      if (later >= 0) return { seq: i, problem: 'reordered', detail: `entries are out of order: ${after} the log holds entry ${entry.seq}, and entry ${i} comes later (record ${later})` };
      return {
        seq: i,
        problem: 'missing',
        detail: entry.seq === i + 1 ? `entry ${i} is missing: ${after} the log holds entry ${entry.seq}` : `entries ${i}..${entry.seq - 1} are missing: ${after} the log holds entry ${entry.seq}`,
      };
    }
    if (entry.seq < i) {
      return { seq: i, problem: 'reordered', detail: `entries are out of order: ${after} the log holds entry ${entry.seq} (again or late), where entry ${i} belongs` };
    }
    if (!equalBytes(entry.prevHash, prevHash)) {
      const j = positionOfHash(entry.prevHash);
      if (j !== undefined && j !== i - 1) return { seq: i, problem: 'reordered', detail: `entry ${i}'s prev_hash names the record at position ${j}, not the entry before it: entries were reordered` };
      return {
        seq: i,
        problem: 'changed',
        detail:
          i === 0
            ? 'entry 0 has a prev_hash that is not 32 zero bytes'
            : `entry ${i}'s prev_hash is not the hash of entry ${i - 1}: entry ${i - 1} was replaced by another validly signed entry, or entry ${i} comes from another ledger`,
      };
    }
    // Blobs: each payload the entry references is present and is the one recorded.
    for (const ref of entry.blobs) {
      report.blobsChecked += 1;
      if (ref.sha256.length !== 32) return { seq: i, problem: 'blob_mismatch', detail: `entry ${i}'s blob "${ref.name}" has a ${ref.sha256.length}-byte hash, not a SHA-256` };
      const id = hex(ref.sha256);
      const key = `${id}/${ref.size}`;
      if (!blobResults.has(key)) blobResults.set(key, await checkBlob(join(dir, BLOBS_DIR, id), ref.sha256, ref.size));
      const problem = blobResults.get(key);
      if (problem === 'absent') return { seq: i, problem: 'blob_missing', detail: `entry ${i} references blob "${ref.name}" (${ref.size} bytes, SHA-256 ${id}), which is not in ${BLOBS_DIR}/` };
      if (problem)
        return {
          seq: i,
          problem: 'blob_mismatch',
          detail: `${BLOBS_DIR}/${id} (blob "${ref.name}" of entry ${i}) ${problem}; entry ${i} recorded ${ref.size} bytes with SHA-256 ${id.slice(0, 16)}… (the blob's name): the blob was changed after it was written`,
        };
    }
    return undefined;
  }
}

/** Every *.sth file (a TreeHead) and every line of every *.receipts file (a hex TreeHead) under `root`. */
function collectReceipts(root: string, warnings: string[]): Receipt[] {
  const out: Receipt[] = [];
  const walk = (dir: string) => {
    let names: Dirent[];
    try {
      names = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      warnings.push(`receipts folder ${dir} cannot be read (${(err as Error).message})`);
      return;
    }
    for (const d of names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(dir, d.name);
      const name = relative(root, path) || d.name;
      if (d.isDirectory()) walk(path);
      else if (!d.isFile() && !d.isSymbolicLink()) continue;
      else if (d.name.endsWith('.sth')) {
        try {
          out.push({ where: name, head: decodeTreeHead(readFileSync(path)) });
        } catch (err) {
          warnings.push(`receipt ${name} is not a TreeHead (${(err as Error).message}); not checked`);
        }
      } else if (d.name.endsWith('.receipts')) {
        let text: string;
        try {
          text = readFileSync(path, 'utf8');
        } catch (err) {
          warnings.push(`receipts file ${name} cannot be read (${(err as Error).message})`);
          continue;
        }
        text.split('\n').forEach((raw, n) => {
          const line = raw.trim();
          if (line === '') return;
          try {
            if (!/^([0-9a-fA-F]{2})+$/.test(line)) throw new Error('not hex');
            out.push({ where: `${name}:${n + 1}`, head: decodeTreeHead(Buffer.from(line, 'hex')) });
          } catch (err) {
            warnings.push(`receipt ${name}:${n + 1} is not a hex TreeHead (${(err as Error).message}); not checked`);
          }
        });
      }
    }
  };
  try {
    if (!statSync(root).isDirectory()) throw new Error('not a folder');
    walk(root);
  } catch (err) {
    warnings.push(`receipts folder ${root} cannot be read (${(err as Error).message}); no receipts checked`);
  }
  return out;
}

function noteTornFiles(dir: string, warnings: string[]): void {
  try {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith(TORN_PREFIX) && name.endsWith('.bin')) {
        const ms = Number(name.slice(TORN_PREFIX.length, -4));
        const when = Number.isFinite(ms) ? ` on ${new Date(ms).toISOString()}` : '';
        warnings.push(`${name}: ${statSync(join(dir, name)).size} bytes of an incomplete entry were set aside${when} after a crash mid-write (not part of the ledger)`);
      }
    }
  } catch {
    // a folder we cannot list has already failed above
  }
}

const MEANING: Record<Problem, string> = {
  changed: 'bytes of the ledger were altered after they were written',
  missing: 'entries were cut out of the ledger',
  reordered: 'entries are not in the order in which they were written',
  bad_signature: 'an entry does not carry a valid signature of its author: it was altered or forged',
  unknown_signer: 'an entry is signed by an author that signers.json does not list',
  blob_missing: 'a payload an entry refers to is absent from blobs/',
  blob_mismatch: 'a payload in blobs/ is not the one the entry recorded',
  receipt_mismatch: 'the ledger disagrees with a signed tree head a participant received: its history was rewritten or cut short after that receipt was issued',
  torn: 'the last write was cut short (a crash while appending); the entries before it are intact',
};

/** One screen for a terminal: the verdict, what was checked, and on failure the first failing entry and why. */
export function formatVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  const range = r.entries === 0 ? 'no entries' : r.entries === 1 ? '1 entry (0)' : `${r.entries} entries (0..${r.entries - 1})`;
  if (r.ok) {
    lines.push(`ledger ${r.dir}: OK`);
    lines.push(`  ${range}, ${r.jobs.length} job${r.jobs.length === 1 ? '' : 's'}${r.jobs.length ? `: ${r.jobs.slice(0, 8).join(', ')}${r.jobs.length > 8 ? ', …' : ''}` : ''}`);
    lines.push(`  signatures (signers: ${r.signers.join(', ') || 'none'}), hash chain, and ${r.blobsChecked} blob reference${r.blobsChecked === 1 ? '' : 's'} verified`);
  } else {
    const f = r.failure!;
    lines.push(`ledger ${r.dir}: FAILED at entry ${f.seq}: ${f.problem}`);
    lines.push(`  ${f.detail}`);
    lines.push(`  meaning: ${MEANING[f.problem]}`);
    lines.push(`  verified before it: ${range}${r.jobs.length ? `, jobs ${r.jobs.slice(0, 8).join(', ')}${r.jobs.length > 8 ? ', …' : ''}` : ''}`);
  }
  lines.push(`  tree head: size ${r.treeHead.size}, root ${r.treeHead.root}`);
  lines.push(`  receipts: ${r.receiptsChecked} checked${r.receiptsChecked && r.ok ? ', all consistent with this ledger' : ''}`);
  if (r.newestReceipt) lines.push(`  coverage: ${receiptCoverage(r.newestReceipt, r.entries)}`);
  for (const w of r.warnings.slice(0, 6)) lines.push(`  note: ${w}`);
  if (r.warnings.length > 6) lines.push(`  note: … and ${r.warnings.length - 6} more`);
  return lines.join('\n');
}

/** How much of the ledger the newest receipt vouches for: what a participant could prove if the ledger were cut back. */
function receiptCoverage(newest: NonNullable<VerifyReport['newestReceipt']>, entries: number): string {
  const covered = newest.size === 0 ? 'no entries' : `entries 0..${newest.size - 1}`;
  const rest = entries - newest.size;
  return (
    `the newest receipt (${newest.where}, issued ${newest.issued}) covers ${newest.size} of ${entries} entries (${covered})` +
    (rest > 0 ? `; the last ${rest} ${rest === 1 ? 'entry is' : 'entries are'} covered by no receipt given` : '; every entry is covered')
  );
}
