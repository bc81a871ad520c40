/**
 * The align step of a vertical job (docs/protocol-vertical.md §2): ECDH PSI between the guest and every host over
 * the PeerPort's PSI links. In training, the guest splits the enterprises every party holds into train, validation
 * and test by a keyed hash of the id and tells each host its rows of each part; in scoring (§5), it tells each host
 * which of the requested enterprises it holds, against the blinded sets kept per model (src/psi/scoring.ts).
 *
 * The step writes no file of its own: what it streams through (prepared ids, the PSI's working files, aligned rows,
 * the guest's positions for each host) goes to an AlignStore, the job folder on a participant
 * (participant/job-store.ts), memory and a scratch folder in the in-memory harness.
 */
import { holdoutOfDigest } from '../../data/split.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PsiKey } from '../../psi/ecdh.js';
import { describeIds, idReport, PreparedIdSet, type IdFormat } from '../../psi/ids.js';
import { GuestScoringPsi, HostScoringSet, withPositions } from '../../psi/scoring.js';
import { GuestPsi, HostPsi, NOT_HELD, type PsiLink } from '../../psi/stream.js';
import type { PeerPort } from './port.js';

/** The parts of a training job's aligned enterprises, in the order the alignment streams them. */
export const ALIGNED_PARTS = ['train', 'validation', 'test'] as const;
export type AlignedPart = (typeof ALIGNED_PARTS)[number];

/** Where the align step writes a stream of uint32 records (rows or positions). */
export interface RecordSink {
  write(bytes: Uint8Array): void;
  close(): void;
}

/** What the align step streams through, kept by the party (its job folder, or memory). */
export interface AlignStore {
  /** An empty folder for the party's prepared ids (src/psi/ids.ts keeps them on disk, sorted). */
  idsFolder(): string;
  /** A fresh folder for one attempt's PSI working files; earlier attempts' folders go. */
  psiWorkFolder(attempt: number): string;
  /** A new alignment begins: the rows and positions of an earlier attempt go. */
  clearAligned(): void;
  /** This party's aligned rows of `part`, in the shared order. */
  alignedRows(part: AlignedPart): RecordSink;
  /** The guest's positions (in host `host`'s blinded list) of the shared enterprises of `part`, read back to send. */
  positions(host: number, part: AlignedPart): RecordSink;
  readPositions(host: number, part: AlignedPart): Iterable<Uint8Array>;
  /** The positions are sent: they are no longer needed. */
  removePositions(): void;
}

/** What an align step needs of the PeerPort: the parties, the PSI traffic with each, and whether to go on. */
export type PsiPort = Pick<PeerPort, 'self' | 'guest' | 'hosts' | 'psiLink' | 'checkpoint'>;

export interface IdSource {
  /** Each raw id with its row. */
  ids: () => Iterable<readonly [string, number]>;
  format: IdFormat;
}

/**
 * The party's ids prepared for the PSI in the store (a pass over all of them); fails the step, naming what was wrong
 * with them, when none is valid.
 */
export async function preparePsiIds(port: PsiPort, store: Pick<AlignStore, 'idsFolder'>, source: IdSource, log: Logger): Promise<PreparedIdSet> {
  const ids = await PreparedIdSet.prepare(source.ids, source.format, store.idsFolder(), port.checkpoint);
  log.info({ ids: describeIds(ids, source.format) }, 'ids prepared for the PSI');
  if (ids.count === 0) {
    throw new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `${port.self} has no valid ids to align (${describeIds(ids, source.format)})`,
      source.format === 'uscc'
        ? "check the data's id column and the job's id_format (uscc): ids that are not unified social credit codes (account numbers, row numbers) need `alignment.id_format: any` in the job file"
        : `check the data's id column and the job's id_format (${source.format})`,
    );
  }
  return ids;
}

/** What a training job's align step needs besides the port. */
export interface AlignInputs extends IdSource {
  /** This party's PSI key for the job, and the job's salt (from the arbiter's setup). */
  key: PsiKey;
  salt: Uint8Array;
  store: AlignStore;
  attempt: number;
  /** The job's alignment.min_intersection. */
  minIntersection: number;
  /** The job's split: its seed and the shares of test and validation enterprises. */
  split: { seed: number; test_fraction: number; validation_fraction: number };
  log: Logger;
}

const protocolError = (what: string) => new FedcreditError(ErrorCode.PROTOCOL, what, 'restart the job');

/** The host's align step: its rows of each part in the store, in the guest's shared order; its report. */
export async function hostAlign(port: PsiPort, inputs: AlignInputs): Promise<Record<string, unknown>> {
  const { store } = inputs;
  const ids = await preparePsiIds(port, store, inputs, inputs.log);
  store.clearAligned();
  const link = port.psiLink(port.guest);
  const psi = await HostPsi.run(inputs.key, inputs.salt, ids, link, store.psiWorkFolder(inputs.attempt));
  const sinks = ALIGNED_PARTS.map((part) => store.alignedRows(part));
  let counts: number[];
  try {
    counts = await psi.receiveAlignment(link, (part, rows) => {
      if (part >= sinks.length || rows.some((r) => r < 0)) throw protocolError('the guest sent an alignment that does not fit a training job');
      sinks[part]!.write(new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
    });
  } finally {
    for (const sink of sinks) sink.close();
    psi.remove();
  }
  if (counts.length !== sinks.length) throw protocolError(`the guest's alignment has ${counts.length} parts; a training job has ${sinks.length}`);
  return { ...idReport(ids, inputs.format), intersection: counts.reduce((a, b) => a + b, 0) };
}

/**
 * The guest's align step: the enterprises every host holds, split into train / validation / test by a keyed hash
 * of the id; its rows of each part in the store, each host told its positions of each part; its report.
 */
export async function guestAlign(port: PsiPort, inputs: AlignInputs): Promise<Record<string, unknown>> {
  const { store, split } = inputs;
  const ids = await preparePsiIds(port, store, inputs, inputs.log);
  store.clearAligned();
  const psi = await GuestPsi.run(
    inputs.key,
    inputs.salt,
    ids,
    port.hosts.map((h) => port.psiLink(h)),
    store.psiWorkFolder(inputs.attempt),
  );
  const rowSinks = ALIGNED_PARTS.map((part) => store.alignedRows(part));
  const positionSinks = port.hosts.map((_, h) => ALIGNED_PARTS.map((part) => store.positions(h, part)));
  const counts = ALIGNED_PARTS.map(() => 0);
  const cell = Buffer.alloc(4);
  try {
    for (const m of psi.matches()) {
      if (m.positions.some((p) => p < 0)) continue;
      const part = ALIGNED_PARTS.indexOf(holdoutOfDigest(m.digest, split.seed, split.test_fraction, split.validation_fraction));
      counts[part]!++;
      cell.writeUInt32LE(m.row);
      rowSinks[part]!.write(cell);
      m.positions.forEach((p, h) => {
        cell.writeUInt32LE(p);
        positionSinks[h]![part]!.write(cell);
      });
    }
  } finally {
    for (const sink of [...rowSinks, ...positionSinks.flat()]) sink.close();
    psi.remove();
  }
  const [train, validation, test] = counts as [number, number, number];
  const total = train + validation + test;
  if (total < inputs.minIntersection) {
    const perHost = port.hosts.map((h, i) => `${h}: ${psi.sharedWithGuest[i]}`).join(', ');
    throw new FedcreditError(
      ErrorCode.JOB_FAILED,
      `the parties share ${total} enterprises, below the job's alignment.min_intersection of ${inputs.minIntersection} (shared with the guest: ${perHost})`,
      'check that every party uses the same id column and id_format, or lower alignment.min_intersection',
    );
  }
  for (const [h, host] of port.hosts.entries()) {
    await GuestPsi.sendAlignment(
      port.psiLink(host),
      counts,
      (function* () {
        for (const part of ALIGNED_PARTS) yield* store.readPositions(h, part);
      })(),
    );
  }
  store.removePositions();
  return {
    ...idReport(ids, inputs.format),
    shared_with_guest: Object.fromEntries(port.hosts.map((h, i) => [h, psi.sharedWithGuest[i]])),
    host_ids: Object.fromEntries(port.hosts.map((h, i) => [h, psi.hostIds[i]])),
    intersection: total,
    train,
    validation,
    test,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Scoring

/** Positions per alignment chunk: a megabyte, as every PSI stream's chunks. */
const CHUNK_POSITIONS = 262_144;

/** What a scoring job's align step needs besides the port. */
export interface ScoringAlignInputs {
  /** The model job's folder, where the blinded sets of its scoring requests are kept (src/psi/scoring.ts). */
  modelFolder: string;
  salt: Uint8Array;
  format: IdFormat;
}

/**
 * The host's scoring align step over its blinded set of every id it holds (kept per model, built on first use): for
 * each requested enterprise, in request order, its row or -1. `guestLink` may wrap the link the guest's ids arrive on
 * (the owner's cap on them).
 */
export async function hostScoringAlign(
  port: PsiPort,
  inputs: ScoringAlignInputs & { ids: readonly string[]; guestLink?: (link: PsiLink) => PsiLink; log: Logger },
): Promise<{ rows: Int32Array; built: boolean }> {
  const set = await HostScoringSet.open(inputs.modelFolder, inputs.ids, inputs.format, inputs.salt, port.checkpoint);
  if (set.meta.count === 0)
    throw new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `${port.self} has no valid ids to align (id_format ${inputs.format})`,
      `check the data's id column and the model job's alignment.id_format (${inputs.format})`,
    );
  if (set.built) inputs.log.info({ ids: set.meta.count }, 'every id blinded for scoring against this model; kept for its later requests');
  const link = port.psiLink(port.guest);
  const psi = await set.answer(inputs.guestLink ? inputs.guestLink(link) : link);
  const pieces: Int32Array[] = [];
  await psi.receiveAlignment(link, (_, rows) => pieces.push(rows.slice()));
  return { rows: Int32Array.from(pieces.flatMap((p) => Array.from(p))), built: set.built };
}

/**
 * The guest's scoring align step for its `queries` (valid ids it holds, in request order): per host, its position
 * of each query or -1, each host told its positions; and which hosts' sets this request fetched.
 */
export async function guestScoringAlign(
  port: PsiPort,
  store: Pick<AlignStore, 'idsFolder'>,
  inputs: ScoringAlignInputs & { queries: readonly string[]; log: Logger },
): Promise<{ coverage: { host: string; match: Int32Array }[]; fetched: boolean[] }> {
  // The guest's queries: the row of each is its place in the request.
  const ids = await preparePsiIds(port, store, { ids: () => withPositions(inputs.queries), format: inputs.format }, inputs.log);
  const psi = await GuestScoringPsi.run(
    inputs.modelFolder,
    inputs.salt,
    ids,
    port.hosts.map((h) => ({ organisation: h, link: port.psiLink(h) })),
  );
  if (psi.fetched.some(Boolean)) inputs.log.info({ hosts: port.hosts.filter((_, h) => psi.fetched[h]) }, "a host's blinded ids fetched and blinded again for this model; kept for its later requests");
  const n = inputs.queries.length;
  const coverage = port.hosts.map((host) => ({ host, match: new Int32Array(n).fill(-1) }));
  try {
    for (const m of psi.matches()) coverage.forEach((c, h) => (c.match[m.row] = m.positions[h]!));
  } finally {
    psi.remove();
  }
  for (const c of coverage) {
    const positions = Uint32Array.from(c.match, (p) => (p < 0 ? NOT_HELD : p));
    const pieces = Array.from({ length: Math.ceil(n / CHUNK_POSITIONS) }, (_, i) => new Uint8Array(positions.buffer, i * CHUNK_POSITIONS * 4, Math.min(CHUNK_POSITIONS, n - i * CHUNK_POSITIONS) * 4));
    await GuestPsi.sendAlignment(port.psiLink(c.host), [n], pieces);
  }
  return { coverage, fetched: psi.fetched };
}
