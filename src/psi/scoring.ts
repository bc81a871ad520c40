/**
 * The PSI of scoring (docs/protocol-vertical.md §5), kept per model so that a request after the first costs the
 * blinding of the guest's few ids, not of every id a host holds.
 *
 * Each party keeps, in the model job's folder, a PSI key of its own for the model (mode 0600). A host keeps its ids
 * blinded under its key, H(h)^b, sorted, with the row of each, for as long as its ids do not change; the guest keeps
 * each host's set blinded again under its own key, H(h)^ba, with the host's position of each, for as long as the
 * host's set is the same (the host names its set by the SHA-256 of its blinded values). A request is then:
 *   1. the host says which set it holds (count, digest); the guest asks for the set only if it has not kept it;
 *   2. the guest sends H(g)^a of the ids to score; the host returns H(g)^ab in the same order;
 *   3. the guest looks each up in the kept set: the host's position of the enterprise, or none;
 *   4. the alignment to the host is as in training (GuestPsi.sendAlignment, HostPsi.receiveAlignment).
 * A host whose ids changed blinds them again under a new key, so its old and new sets cannot be related.
 *
 * What this gives up against a fresh PSI per request (docs/threat-model.md): the guest's key is the same for every
 * request against the model, so a host can tell that an id it does not hold was asked for before; and the keys live
 * as long as the model's folder (deleting `score-psi/` there makes new ones).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ErrorCode, FedcreditError } from '../errors.js';
import { writeFileAtomic } from '../paths.js';
import { readRecordPieces } from '../data/row-store.js';
import { RecordSpill } from '../data/spill.js';
import { POINT_BYTES, PsiKey } from './ecdh.js';
import { PreparedIdSet, type IdFormat } from './ids.js';
import type { HostSetOffer } from './kinds.js';
import {
  blindOwn,
  BLINDING_DEPTH,
  HOST_BLINDED_FILE,
  HostPsi,
  mapInOrder,
  receiveMessage,
  receiveStream,
  sendMessage,
  sendStream,
  spillValues,
  VALUE_RECORD_BYTES,
  type GuestMatch,
  type PsiLink,
} from './stream.js';
import { sha256 } from '../bytes.js';

/** The folder, inside a model job's folder, where a party keeps its scoring PSI key and blinded sets. */
export const SCORING_PSI_DIR = 'score-psi';
const KEY_FILE = 'psi-key';
const META_FILE = 'set.json';

/** The salt of every scoring request against a model: one per model, so that blinded sets can be kept. */
export function scoringSalt(modelJob: string): Uint8Array {
  return sha256(`fedcredit vertical-score salt\n${modelJob}`);
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** A set being built for longer than this was left by a process that crashed: its folder is removed. */
const STALE_BUILD_MS = 6 * 3600_000;

/** A new folder beside `dir` to build its next content in; leftovers of crashed builds beside it are removed. */
function buildingFolder(dir: string): string {
  const parent = dirname(dir);
  const prefix = `${basename(dir)}.building-`;
  if (existsSync(parent)) {
    for (const name of readdirSync(parent)) {
      if (name.startsWith(prefix) && Date.now() - statSync(join(parent, name)).mtimeMs > STALE_BUILD_MS) rmSync(join(parent, name), { recursive: true, force: true });
    }
  }
  return `${dir}.building-${randomBytes(6).toString('hex')}`;
}

const protocolError = (what: string) => new FedcreditError(ErrorCode.PROTOCOL, what, 'restart the job; if it recurs, upgrade all parties to the same version');

/** Each id with its place in the list, made one at a time (a host's list is all its ids). */
export function* withPositions(ids: readonly string[]): Generator<readonly [string, number]> {
  for (let i = 0; i < ids.length; i++) yield [ids[i]!, i];
}

interface HostSetMeta {
  /** SHA-256 of the id format, the salt and the ids in row order: the set is valid while this holds. */
  idsDigest: string;
  count: number;
  /** SHA-256 of the sorted blinded values: what the guest keys its copy by. */
  version: string;
}

/** A host's ids blinded under its per-model key, kept in `<model job>/score-psi/host/`. */
export class HostScoringSet {
  private constructor(
    private readonly dir: string,
    private readonly key: PsiKey,
    readonly meta: HostSetMeta,
    /** True when this request had to blind every id (the first, or the ids changed). */
    readonly built: boolean,
  ) {}

  /** The kept set if the host's ids are those it was made of; otherwise every id blinded now, under a new key. */
  static async open(modelDir: string, ids: readonly string[], format: IdFormat, salt: Uint8Array, checkpoint: () => void): Promise<HostScoringSet> {
    const dir = join(modelDir, SCORING_PSI_DIR, 'host');
    const hash = createHash('sha256').update(`${format}\n`).update(salt);
    for (const id of ids) hash.update(`\n${id}`);
    const idsDigest = hash.digest('hex');
    const kept = readJson<HostSetMeta>(join(dir, META_FILE));
    if (kept?.idsDigest === idsDigest && existsSync(join(dir, KEY_FILE))) {
      return new HostScoringSet(dir, PsiKey.fromSecret(readFileSync(join(dir, KEY_FILE), 'utf8')), kept, false);
    }
    // Built beside the kept set and swapped in whole: a crash or a concurrent request never sees half a set.
    const building = buildingFolder(dir);
    mkdirSync(building, { recursive: true, mode: 0o700 });
    try {
      const key = PsiKey.generate();
      writeFileAtomic(join(building, KEY_FILE), key.exportSecret());
      const prepared = await PreparedIdSet.prepare(() => withPositions(ids), format, join(building, 'ids'), checkpoint);
      await HostPsi.blindSorted(key, salt, prepared, building, checkpoint);
      rmSync(join(building, 'ids'), { recursive: true, force: true });
      const version = createHash('sha256');
      for (const piece of readRecordPieces(join(building, HOST_BLINDED_FILE), POINT_BYTES)) version.update(piece);
      const meta: HostSetMeta = { idsDigest, count: prepared.count, version: version.digest('hex') };
      writeFileAtomic(join(building, META_FILE), JSON.stringify(meta));
      rmSync(dir, { recursive: true, force: true });
      renameSync(building, dir);
      return new HostScoringSet(dir, key, meta, true);
    } catch (err) {
      rmSync(building, { recursive: true, force: true });
      throw err;
    }
  }

  /** Steps 1 and 2 of a request, then the alignment's receiving side over the kept set. */
  async answer(link: PsiLink): Promise<HostPsi> {
    await sendMessage(link, 'psi.host_set', { count: this.meta.count, version: this.meta.version });
    const wanted = await receiveMessage(link, 'psi.host_set_wanted');
    await Promise.all([wanted ? sendStream(link, 'psi.host_blinded', readRecordPieces(join(this.dir, HOST_BLINDED_FILE), POINT_BYTES)) : Promise.resolve(), HostPsi.blindGuests(this.key, link)]);
    return HostPsi.over(this.dir, this.meta.count);
  }
}

/** The guest's side: its per-model key and, per host, that host's set blinded again, in `<model job>/score-psi/`. */
export class GuestScoringPsi {
  private constructor(
    private readonly ids: PreparedIdSet,
    /** Per host, the host's position of each query (in prepared order), or -1. */
    private readonly positions: Int32Array[],
    /** Per host, whether this request fetched and blinded its whole set. */
    readonly fetched: boolean[],
  ) {}

  static async run(modelDir: string, salt: Uint8Array, ids: PreparedIdSet, hosts: { organisation: string; link: PsiLink }[]): Promise<GuestScoringPsi> {
    const dir = join(modelDir, SCORING_PSI_DIR);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const keyFile = join(dir, KEY_FILE);
    if (!existsSync(keyFile)) writeFileAtomic(keyFile, PsiKey.generate().exportSecret());
    const key = PsiKey.fromSecret(readFileSync(keyFile, 'utf8'));
    const checkpoint = hosts[0]?.link.checkpoint ?? (() => undefined);
    // The queries blinded once, for every host.
    const blinded: Buffer[] = [];
    for await (const { blinded: b } of blindOwn(key, salt, ids, checkpoint)) blinded.push(b);
    const results = await Promise.all(hosts.map((h) => GuestScoringPsi.withHost(key, h.link, blinded, ids.count, join(dir, `host-${h.organisation}`))));
    return new GuestScoringPsi(
      ids,
      results.map((r) => r.positions),
      results.map((r) => r.fetched),
    );
  }

  private static async withHost(key: PsiKey, link: PsiLink, blinded: Buffer[], count: number, dir: string): Promise<{ positions: Int32Array; fetched: boolean }> {
    let offered: HostSetOffer;
    try {
      offered = await receiveMessage(link, 'psi.host_set');
    } catch (err) {
      if (err instanceof SyntaxError) throw protocolError('the host named its blinded set in a form this version does not read');
      throw err;
    }
    if (!Number.isInteger(offered.count) || offered.count < 0 || !/^[0-9a-f]{64}$/.test(String(offered.version))) throw protocolError('the host named its blinded set without a count and digest');
    const kept = readJson<HostSetOffer>(join(dir, META_FILE));
    const fetch = kept?.version !== offered.version || !existsSync(join(dir, 'values'));
    await sendMessage(link, 'psi.host_set_wanted', fetch);
    const doubled: Buffer[] = [];
    await Promise.all([
      fetch ? GuestScoringPsi.keepHostSet(key, link, offered, dir) : Promise.resolve(),
      sendStream(link, 'psi.guest_blinded', blinded),
      (async () => {
        for await (const chunk of receiveStream(link, 'psi.guest_double')) doubled.push(Buffer.from(chunk));
      })(),
    ]);
    const values = Buffer.concat(doubled);
    if (values.length !== count * POINT_BYTES) throw protocolError(`the host returned ${values.length / POINT_BYTES} blinded ids for the guest's ${count}`);
    // Step 3: each query looked up in the bucket of its first byte only.
    const positions = new Int32Array(count).fill(-1);
    const byBucket = new Map<number, number[]>();
    for (let i = 0; i < count; i++) {
      const bucket = values[i * POINT_BYTES]!;
      const list = byBucket.get(bucket);
      if (list) list.push(i);
      else byBucket.set(bucket, [i]);
    }
    for (const [bucket, queries] of byBucket) {
      const records = RecordSpill.readBucket(join(dir, 'values'), bucket);
      for (const i of queries) {
        for (let at = 0; at < records.length; at += VALUE_RECORD_BYTES) {
          if (records.compare(values, i * POINT_BYTES, (i + 1) * POINT_BYTES, at, at + POINT_BYTES) === 0) {
            positions[i] = records.readUInt32LE(at + POINT_BYTES);
            break;
          }
        }
      }
    }
    return { positions, fetched: fetch };
  }

  /** The host's whole set, blinded again under the guest's key and kept with each value's position in the host's list. */
  private static async keepHostSet(key: PsiKey, link: PsiLink, offered: HostSetOffer, dir: string): Promise<void> {
    const building = buildingFolder(dir);
    try {
      const spill = new RecordSpill(join(building, 'values'), VALUE_RECORD_BYTES);
      const version = createHash('sha256');
      let received = 0;
      for await (const chunk of mapInOrder(
        receiveStream(link, 'psi.host_blinded'),
        (c) => {
          version.update(c);
          return key.blind(c);
        },
        BLINDING_DEPTH,
      )) {
        spillValues(spill, chunk, (i) => received + i);
        received += chunk.length / POINT_BYTES;
      }
      spill.close();
      if (received !== offered.count || version.digest('hex') !== offered.version) {
        throw protocolError(`the host sent ${received} blinded ids that do not make the set it named (${offered.count} ids)`);
      }
      writeFileAtomic(join(building, META_FILE), JSON.stringify(offered));
      rmSync(dir, { recursive: true, force: true });
      renameSync(building, dir);
    } catch (err) {
      rmSync(building, { recursive: true, force: true });
      throw err;
    }
  }

  /** Every query in prepared order, with each host's position of it (or -1). */
  *matches(): Generator<GuestMatch> {
    const positions = new Int32Array(this.positions.length);
    for (const { index, digest, row } of this.ids.records()) {
      for (let h = 0; h < this.positions.length; h++) positions[h] = this.positions[h]![index]!;
      yield { index, digest, row, positions };
    }
  }

  remove(): void {
    rmSync(this.ids.dir, { recursive: true, force: true });
  }
}
