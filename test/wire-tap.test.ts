/**
 * The product's core promise, checked on every byte: with a tap at each process's transport (every message it
 * sends, encoded as it goes to gRPC), run a horizontal and a vertical job on real data and search everything the
 * participants sent for their raw feature values (float32, float64, decimal text), their labels and their ids (as
 * text, raw and normalised, and as the SHA-256 digest D(x) the PSI hashes further). The detector is first shown to
 * catch a raw column, a raw row, a CSV line and an id, so the test fails if someone ever sends one.
 *
 * The same jobs then show what every node keeps (secrets at rest): each file a participant and the coordinator keep
 * after the job is listed. Nothing is readable by other users of the machine (files 0600 at most, folders 0700), and
 * no per-job private key or CKKS secret key outlives its job: the only private keys left are each node's long-term
 * ones (its TLS key, the coordinator's ledger signing key).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadDataset, type LoadedDataset } from '../src/data/csv.js';
import { DATASETS, horizontalJob, HOMO_PARTIES, TestFederation, uciHomoSpec } from './helpers/federation.js';
import { uciHomoFile } from '../src/data/public-datasets.js';
import { occurrences } from './helpers/tap.js';
import { uciHeteroSlice, verticalJob } from './helpers/vertical.js';
import { writeVerticalSynth } from '../src/synth/vertical.js';
import { idDigest } from '../src/data/id-buckets.js';
import { normaliseId } from '../src/psi/ids.js';

/** Byte patterns a leak of this dataset would contain: pairs of neighbouring values (row- and column-wise) as
 * float32 and float64, pairs of neighbouring CSV cells as text, and runs of labels in any encoding. */
function leakNeedles(data: LoadedDataset, csvText: string, sampleRows = 1500): Map<Buffer, string> {
  const needles = new Map<Buffer, string>();
  const width = data.features.length;
  const step = Math.max(1, Math.floor(data.rows / sampleRows));
  for (let r = 0; r + 1 < data.rows; r += step) {
    for (let j = 0; j < width; j++) {
      const a = data.x[r * width + j]!;
      const right = j + 1 < width ? data.x[r * width + j + 1]! : Number.NaN;
      const below = data.x[(r + 1) * width + j]!;
      for (const [b, how] of [
        [right, 'row'],
        [below, 'column'],
      ] as const) {
        if (!Number.isFinite(a) || !Number.isFinite(b) || (Number.isInteger(a) && Number.isInteger(b))) continue;
        needles.set(Buffer.from(new Float64Array([a, b]).buffer), `float64 ${how} pair (row ${r}, ${data.features[j]})`);
        needles.set(Buffer.from(new Float32Array([a, b]).buffer), `float32 ${how} pair (row ${r}, ${data.features[j]})`);
      }
    }
  }
  const lines = csvText.trim().split(/\r?\n/).slice(1);
  for (let i = 0; i < lines.length; i += step) {
    const cells = lines[i]!.split(',').slice(1);
    for (let j = 0; j + 1 < cells.length; j++) if (cells[j]!.length + cells[j + 1]!.length >= 8) needles.set(Buffer.from(`${cells[j]},${cells[j + 1]}`), `CSV text (line ${i + 2})`);
  }
  if (data.y) {
    const run = Array.from(data.y.subarray(0, 64));
    needles.set(Buffer.from(Uint8Array.from(run)), 'labels as bytes');
    needles.set(Buffer.from(Float32Array.from(run).buffer), 'labels as float32');
    needles.set(Buffer.from(Float64Array.from(run).buffer), 'labels as float64');
    needles.set(Buffer.from(run.join(',')), 'labels as text');
  }
  for (const [r, id] of data.ids.entries()) {
    const normalised = normaliseId(id);
    // Ids of a few digits occur by chance in any megabyte of ciphertext: those are searched for by digest only.
    if (id.length >= 8) needles.set(Buffer.from(id), `id as text (row ${r})`);
    if (normalised.length >= 8 && normalised !== id) needles.set(Buffer.from(normalised), `normalised id as text (row ${r})`);
    needles.set(idDigest(normalised), `id digest D(x) (row ${r})`);
  }
  return needles;
}

function leaks(sent: Buffer, needles: Map<Buffer, string>): string[] {
  return occurrences(sent, [...needles.keys()]).map((n) => needles.get(n)!);
}

function captured(dir: string, pids: number[]): Buffer {
  const files = readdirSync(dir).filter((f) => pids.includes(Number(f.replace('.bin', ''))));
  expect(files.length).toBe(pids.length);
  return Buffer.concat(files.map((f) => readFileSync(join(dir, f))));
}

interface Kept {
  path: string;
  mode: number;
  directory: boolean;
}

function walk(root: string, dir = root): Kept[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    const kept = { path: relative(root, path), mode: statSync(path).mode & 0o777, directory: e.isDirectory() };
    return e.isDirectory() ? [kept, ...walk(root, path)] : [kept];
  });
}

/** What may hold a private key after every job has ended: long-term identities, never a job's. */
const LONG_TERM_KEYS = [/^keys\/ledger-ed25519\.pem$/];

/** Private key material: PEM private keys by their text, and the files fedcredit keeps per-job secret keys in, by their names. */
function holdsPrivateKey(file: string): boolean {
  const bytes = readFileSync(file);
  return bytes.includes('PRIVATE KEY') || /(^|\/)(box-x25519\.pem|ckks-secret\.key|psi-key|ckks-secret-key\.bin|collective-key-share\.fcth)$/.test(file);
}

const jobKeys = (root: string, kept: Kept[]) => kept.filter((k) => !k.directory && holdsPrivateKey(join(root, k.path)) && !LONG_TERM_KEYS.some((r) => r.test(k.path))).map((k) => k.path);

/** Every file under `root` (a node's state folder): none readable by other users, no job's private key. */
function checkAtRest(root: string, label: string): Kept[] {
  const kept = walk(root);
  expect(kept.length, `${label} keeps files`).toBeGreaterThan(3);
  const open = kept.filter((k) => (k.mode & 0o077) !== 0).map((k) => `${k.path} (${k.mode.toString(8)})`);
  expect(open, `${label}: readable by other users`).toEqual([]);
  expect(jobKeys(root, kept), `${label}: private keys left after the jobs ended`).toEqual([]);
  return kept;
}

/** The parties learn the end from the coordinator and clean up after it: give them up to 10 s to drop their job keys. */
async function cleanedUp(roots: string[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  // A file removed between listing and reading makes that look fail: the clean-up is still under way.
  const left = (root: string) => {
    try {
      return jobKeys(root, walk(root)).length > 0;
    } catch {
      return true;
    }
  };
  while (Date.now() < deadline && roots.some(left)) await new Promise((r) => setTimeout(r, 100));
}

describe('wire tap: no raw feature value, label or id leaves a participant; at rest, no job key and nothing readable by others', () => {
  const feds: TestFederation[] = [];
  afterAll(async () => {
    for (const f of feds) await f.stop();
  });

  it('the detector catches a raw column, a raw row, a CSV line and an id (so the checks below can fail)', async () => {
    const file = uciHomoFile(DATASETS, HOMO_PARTIES[0]);
    const data = await loadDataset(uciHomoSpec(file));
    const needles = leakNeedles(data, readFileSync(file, 'utf8'));
    const noise = Buffer.alloc(200_000, 7);
    const column = Float64Array.from({ length: 100 }, (_, r) => data.x[r * data.features.length + 1]!);
    const row = Float32Array.from(data.x.subarray(0, data.features.length));
    const line = readFileSync(file, 'utf8').split('\n')[1]!;
    expect(leaks(Buffer.concat([noise, Buffer.from(column.buffer), noise]), needles).join()).toMatch(/float64 column pair/);
    expect(leaks(Buffer.concat([noise, Buffer.from(row.buffer), noise]), needles).join()).toMatch(/float32 row pair/);
    expect(leaks(Buffer.concat([noise, Buffer.from(line), noise]), needles).join()).toMatch(/CSV text/);
    expect(leaks(Buffer.concat([noise, idDigest(normaliseId(data.ids[17]!)), noise]), needles).join()).toMatch(/id digest D\(x\) \(row 17\)/);
    expect(leaks(noise, needles)).toEqual([]);
    const dataDir = mkdtempSync(join(tmpdir(), 'fedcredit-capture-ids-'));
    const synth = await writeVerticalSynth(dataDir, { seed: 5, bankRows: 500 });
    const bank = synth.parties.find((p) => p.party === 'bank')!;
    const smes = await loadDataset({ ...bank.spec, path: bank.file });
    const smeNeedles = leakNeedles(smes, readFileSync(bank.file, 'utf8'));
    expect(smes.ids[3]!.length).toBe(18);
    expect(leaks(Buffer.concat([noise, Buffer.from(`{"id":"${smes.ids[3]}"}`), noise]), smeNeedles).join()).toMatch(/id as text \(row 3\)/);
  });

  it("horizontal job (three banks, CKKS): nothing of any bank's data is in what it sent; the CKKS secret key every participant held is gone when the job ends", async () => {
    const capture = mkdtempSync(join(tmpdir(), 'fedcredit-capture-'));
    const names = ['bank-a', 'bank-b', 'bank-c'];
    const fed = await TestFederation.start(
      names.map((name, i) => ({ name, data: uciHomoSpec(uciHomoFile(DATASETS, HOMO_PARTIES[i]!)) })),
      { env: { FEDCREDIT_WIRE_CAPTURE: capture } },
    );
    feds.push(fed);
    const { last } = await fed.run(horizontalJob({ participants: names, training: { rounds: 3 } }));
    expect(last.state, last.message).toBe('succeeded');
    for (const [i, name] of names.entries()) {
      const sent = captured(capture, [fed.cluster.process(name)!.pid!]);
      expect(sent.length).toBeGreaterThan(300_000);
      const file = uciHomoFile(DATASETS, HOMO_PARTIES[i]!);
      const data = await loadDataset(uciHomoSpec(file));
      expect(leaks(sent, leakNeedles(data, readFileSync(file, 'utf8'))), name).toEqual([]);
    }
    await cleanedUp([...names.map((org) => join(fed.dir, 'fedcredit-state', org)), fed.stateDir]);
    for (const org of names) checkAtRest(join(fed.dir, 'fedcredit-state', org), org);
    checkAtRest(fed.stateDir, 'coordinator');
  });

  it("vertical job (bank + tax bureau, CKKS): nothing of either party's data is in what it sent", async () => {
    const capture = mkdtempSync(join(tmpdir(), 'fedcredit-capture-'));
    // The first 10,000 enterprises: everything a party sends derives from the rows it holds, and every one of them
    // is searched for; the PSI of all 30,000 made most of this test's time.
    const uci = uciHeteroSlice(10_000);
    const fed = await TestFederation.start(
      [
        { name: 'bank', data: uci('guest') },
        { name: 'tax-bureau', data: uci('host') },
      ],
      { env: { FEDCREDIT_WIRE_CAPTURE: capture } },
    );
    feds.push(fed);
    const { last } = await fed.run(verticalJob({ training: { epochs: 2, patience: 0 } }));
    expect(last.state, last.message).toBe('succeeded');
    for (const [org, role] of [
      ['bank', 'guest'],
      ['tax-bureau', 'host'],
    ] as const) {
      const sent = captured(capture, [fed.cluster.process(org)!.pid!]);
      expect(sent.length).toBeGreaterThan(1_000_000);
      const spec = uci(role);
      const data = await loadDataset(spec);
      expect(leaks(sent, leakNeedles(data, readFileSync(spec.path, 'utf8'))), org).toEqual([]);
    }
  });

  it("vertical job with binning, WOE, a scorecard and fairness (synthetic SMEs): nothing of either party's data is in what it sent; the parties and the coordinator keep only 0600 files in 0700 folders, and no job key", async () => {
    const capture = mkdtempSync(join(tmpdir(), 'fedcredit-capture-'));
    const dataDir = mkdtempSync(join(tmpdir(), 'fedcredit-capture-data-'));
    const synth = await writeVerticalSynth(dataDir, { seed: 3, bankRows: 4000 });
    const specs = new Map(synth.parties.filter((p) => p.party === 'bank' || p.party === 'tax-bureau').map((p) => [p.party, { ...p.spec, path: p.file }]));
    const fed = await TestFederation.start(
      [...specs].map(([name, data]) => ({ name, data })),
      { env: { FEDCREDIT_WIRE_CAPTURE: capture } },
    );
    feds.push(fed);
    const job = {
      ...verticalJob({ hosts: ['tax-bureau'], alignment: { id_format: 'uscc', min_intersection: 500 }, training: { epochs: 2, patience: 0, batch_size: 1024 } }),
      binning: { iv_threshold: 0 },
      scorecard: {},
      fairness: { party: 'tax-bureau', column: 'industry' },
    };
    const { last, jobId } = await fed.run(job);
    expect(last.state, last.message).toBe('succeeded');
    for (const [org, spec] of specs) {
      const sent = captured(capture, [fed.cluster.process(org)!.pid!]);
      expect(sent.length).toBeGreaterThan(1_000_000);
      const data = await loadDataset(spec);
      expect(leaks(sent, leakNeedles(data, readFileSync(spec.path, 'utf8'))), org).toEqual([]);
    }
    await cleanedUp([...specs.keys()].map((org) => join(fed.dir, 'fedcredit-state', org)).concat(fed.stateDir));
    for (const org of specs.keys()) {
      const kept = checkAtRest(join(fed.dir, 'fedcredit-state', org), org);
      expect(kept.map((k) => k.path)).toContain(join('jobs', jobId, 'model-part.json'));
    }
    const coordinator = checkAtRest(fed.stateDir, 'coordinator');
    expect(coordinator.map((k) => k.path)).toContain(join('jobs', jobId, 'model', 'manifest.json'));
  });
});
