/** Vertical-job fixtures on the UCI default-credit hetero split (bank = guest with labels, tax-bureau = host). */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Rng } from '../../src/random.js';
import { join } from 'node:path';
import { EphemeralFederation, type FederationOptions } from '../../src/federation/ephemeral.js';
import type { CsvDatasetSpec } from '../../src/data/schema.js';
import { loadDataset, type LoadedDataset } from '../../src/data/csv.js';
import { holdoutOf } from '../../src/data/split.js';
import { prepareIds } from '../../src/psi/ids.js';
import { JobSpec, type VerticalJobSpec } from '../../src/config/schemas.js';
import type { Scorecard, ScorecardPart } from '../../src/credit/scorecard.js';
import { afterAll, beforeAll } from 'vitest';
import { CkksEngine } from '../../src/he/engine.js';
import { VERTICAL_CKKS_PARAMS, VERTICAL_THRESHOLD_CKKS_PARAMS } from '../../src/he/params.js';
import { ThresholdContext } from '../../src/he/threshold/context.js';
import { VerticalGradient } from '../../src/he/vertical-gradient.js';
import { VERTICAL_MAX_FEATURE } from '../../src/he/vertical-threshold.js';
import { ckksCipher, plaintextCipher } from '../../src/vertical/cipher.js';
import { inProcessCollectiveKeys } from '../../src/vertical/lr/threshold-opener.js';
import { createLogger } from '../../src/log.js';
import type { VerticalCipher } from '../../src/vertical/cipher.js';
import type { ModelPart } from '../../src/vertical/party-model.js';
import type { BinnedStatistics } from '../../src/vertical/lr/binning.js';
import { PsiKey } from '../../src/psi/ecdh.js';
import { guestAlign, hostAlign, type AlignInputs } from '../../src/vertical/lr/align.js';
import { MemoryAlignStore, MemoryFederation } from '../../src/vertical/lr/memory-port.js';
import { runTraining, trainingPlan } from '../../src/vertical/lr/schedule.js';
import { plaintextOpener, type Opener } from '../../src/vertical/lr/opener.js';
import { LrParty, type KeptBinning, type LrKeeper, type ModelReport } from '../../src/vertical/lr/party.js';
import { csvHead, UCI } from './federation.js';
import type { VerticalSetup } from '../../src/wire/messages.js';

export const UCI_GUEST_FEATURES = Array.from({ length: 13 }, (_, i) => `x${i}`);
export const UCI_HOST_FEATURES = Array.from({ length: 10 }, (_, i) => `x${i}`);

export function uciHeteroSpec(role: 'guest' | 'host'): CsvDatasetSpec {
  const features = role === 'guest' ? UCI_GUEST_FEATURES : UCI_HOST_FEATURES;
  return {
    path: join(UCI, `fate_default_credit_hetero_${role}.csv`),
    delimiter: ',',
    id_column: 'id',
    ...(role === 'guest' ? { label_column: 'y' } : {}),
    features: features.map((name) => ({ name, type: 'number', missing: 'impute' })),
    duplicate_ids: 'reject',
    missing_values: ['', 'NA'],
  };
}

/**
 * The first `rows` enterprises of the UCI hetero split (both files hold the same ids in the same order), written to a
 * temporary folder: for the process tests of faults and restarts, whose properties do not need all 30,000.
 */
export function uciHeteroSlice(rows: number): ((role: 'guest' | 'host') => CsvDatasetSpec) & { dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-uci-hetero-'));
  for (const role of ['guest', 'host'] as const) csvHead(uciHeteroSpec(role).path, rows, join(dir, `${role}.csv`));
  return Object.assign((role: 'guest' | 'host') => ({ ...uciHeteroSpec(role), path: join(dir, `${role}.csv`) }), { dir });
}

/**
 * The bank (guest) and the tax bureau (host) over the first `rows` UCI enterprises, as a federation of processes
 * (coordinator and two participants): `ledgerDir` is the coordinator's ledger, `slice` the data the parties read;
 * `stop` ends the processes and removes the slice.
 */
export async function startUciHeteroPair(
  rows: number,
  opts: FederationOptions = {},
): Promise<{ fed: EphemeralFederation; ledgerDir: string; slice: ReturnType<typeof uciHeteroSlice>; stop(): Promise<void> }> {
  const slice = uciHeteroSlice(rows);
  try {
    const fed = await EphemeralFederation.start(
      [
        { name: 'bank', data: slice('guest') },
        { name: 'tax-bureau', data: slice('host') },
      ],
      opts,
    );
    return {
      fed,
      ledgerDir: fed.ledgerDir,
      slice,
      stop: async () => {
        await fed.stop();
        rmSync(slice.dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(slice.dir, { recursive: true, force: true });
    throw err;
  }
}

export function verticalJob(overrides: { training?: Record<string, unknown>; encryption?: Record<string, unknown>; hosts?: string[]; alignment?: Record<string, unknown>; guest?: string } = {}) {
  return {
    name: 'uci-hetero-lr',
    kind: 'vertical-lr',
    purpose: 'test: default model on UCI credit card clients, bank and tax bureau',
    guest: overrides.guest ?? 'bank',
    hosts: overrides.hosts ?? ['tax-bureau'],
    alignment: { id_format: 'any', min_intersection: 1000, ...overrides.alignment },
    training: { epochs: 25, batch_size: 4096, learning_rate: 0.05, seed: 7, patience: 5, validation_fraction: 0.1, test_fraction: 0.2, step_timeout_s: 120, grace_period_s: 20, ...overrides.training },
    encryption: { scheme: 'ckks', ...overrides.encryption },
  };
}

/**
 * startUciHeteroPair for a describe block: started before its tests (its fields set from then on) and stopped after
 * them, `beforeStop` first (e.g. to wake a frozen process).
 */
export function uciHeteroPairForSuite(rows: number, opts: FederationOptions = {}, beforeStop?: (fed: EphemeralFederation) => void): UciHeteroPair {
  const pair = {} as UciHeteroPair;
  let stop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    ({ fed: pair.fed, ledgerDir: pair.ledgerDir, slice: pair.slice, stop } = await startUciHeteroPair(rows, opts));
  }, 60_000);
  afterAll(async () => {
    if (pair.fed) beforeStop?.(pair.fed);
    await stop?.();
  });
  return pair;
}

export interface UciHeteroPair {
  fed: EphemeralFederation;
  ledgerDir: string;
  slice: ReturnType<typeof uciHeteroSlice>;
}

/** The setup of a job with guest bank and host tax-bureau, without keys: what a party's channel installs. */
export function bankTaxSetup(paramsFingerprint: Uint8Array = new Uint8Array(), psiSalt: Uint8Array = new Uint8Array(32)): VerticalSetup {
  return { ckksPublicKey: new Uint8Array(), galoisKeys: new Uint8Array(), paramsFingerprint, parties: [], guest: 'bank', hosts: ['tax-bureau'], psiSalt };
}

/** Where a participant of an EphemeralFederation keeps a job's files (model part, held-out scores). */
export function participantJobDir(federationDir: string, org: string, jobId: string): string {
  return join(federationDir, 'fedcredit-state', org, 'jobs', jobId);
}

/**
 * Start a vertical job, kill `org` (SIGKILL) once its log shows `batches` finished mini-batches of it, restart it
 * at once, and return the job's outcome; `logged` tells whether the node rebuilt the job from its folder.
 */
export async function runKillingMidTraining(fed: EphemeralFederation, org: string, job: object, batches = 9) {
  const logFile = join(fed.dir, 'logs', `${org}.log`);
  const before = readFileSync(logFile, 'utf8').length;
  const running = fed.run(job);
  const deadline = Date.now() + 120_000;
  while (
    Date.now() < deadline &&
    (
      readFileSync(logFile, 'utf8')
        .slice(before)
        .match(/"name":"batch"/g) ?? []
    ).length < batches
  )
    await new Promise((r) => setTimeout(r, 100));
  await fed.cluster.kill(org, 'SIGKILL');
  fed.cluster.startParticipant(org);
  const result = await running;
  return { ...result, restored: /vertical job restored from its job folder; rejoining/.test(readFileSync(logFile, 'utf8').slice(before)) };
}

/**
 * A tiny two-party vertical data set for tests of timing and faults: a bank of 3,000 enterprises with a label and
 * one feature, a tax bureau holding 2,500 of them with another. Returns the spec of each party's file.
 */
export function writeTinyVertical(prefix: string, seed: number): { dir: string; bank: CsvDatasetSpec; tax: CsvDatasetSpec } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const rng = new Rng(seed);
  writeFileSync(
    join(dir, 'bank.csv'),
    [
      'id,y,f1',
      ...Array.from({ length: 3_000 }, (_, i) => {
        const x = rng.normal();
        return `E${i},${rng.next() < 1 / (1 + Math.exp(-x)) ? 1 : 0},${x.toFixed(3)}`;
      }),
    ].join('\n') + '\n',
  );
  writeFileSync(join(dir, 'tax.csv'), ['id,h1', ...Array.from({ length: 2_500 }, (_, i) => `E${(i * 7) % 3_001},${rng.normal().toFixed(3)}`)].join('\n') + '\n');
  const spec = (file: string, label: boolean): CsvDatasetSpec => ({
    path: join(dir, file),
    delimiter: ',',
    id_column: 'id',
    ...(label ? { label_column: 'y' } : {}),
    features: [{ name: label ? 'f1' : 'h1', type: 'number', missing: 'impute' }],
    duplicate_ids: 'reject',
    missing_values: [''],
  });
  return { dir, bank: spec('bank.csv', true), tax: spec('tax.csv', false) };
}

let uciLoaded: Promise<[LoadedDataset, LoadedDataset]> | undefined;

/** Both parties' datasets of the UCI hetero split (same ids in the same order), loaded once. */
export function uciDatasets(): Promise<[LoadedDataset, LoadedDataset]> {
  uciLoaded ??= Promise.all([loadDataset(uciHeteroSpec('guest')), loadDataset(uciHeteroSpec('host'))]);
  return uciLoaded;
}

/**
 * The UCI hetero split as an aligned vertical job sees it after its PSI, in one process: both parties' datasets
 * (same ids in the same order, so row r of one is row r of the other) and the first `rows` rows cut into training,
 * validation and test (70 / 15 / 15).
 */
export async function uciAligned(rows: number): Promise<{ guest: LoadedDataset; host: LoadedDataset; alignment: { train: Uint32Array; validation: Uint32Array; test: Uint32Array } }> {
  const [guest, host] = await uciDatasets();
  const range = (from: number, to: number) => Uint32Array.from({ length: to - from }, (_, i) => from + i);
  const train = Math.round(rows * 0.7);
  const validation = Math.round(rows * 0.15);
  return { guest, host, alignment: { train: range(0, train), validation: range(train, train + validation), test: range(train + validation, rows) } };
}

/**
 * The alignment a vertical job's PSI step gives two parties that hold the same enterprises in the same row order
 * (the UCI hetero split): every valid id under the job's id_format, in the guest's order, cut into training,
 * validation and test by the job's keyed hash of the id (what a participant does with each PSI match).
 */
export function alignedByHoldout(guest: LoadedDataset, host: LoadedDataset, spec: VerticalJobSpec): { train: Uint32Array; validation: Uint32Array; test: Uint32Array } {
  const t = spec.training;
  const prepared = prepareIds(guest.ids, spec.alignment.id_format);
  const hostRows = prepareIds(host.ids, spec.alignment.id_format).rows;
  if (prepared.rows.length !== hostRows.length || prepared.rows.some((r, i) => r !== hostRows[i] || guest.ids[r] !== host.ids[r])) {
    throw new Error('alignedByHoldout needs two parties holding the same ids in the same row order');
  }
  const parts = { train: [] as number[], validation: [] as number[], test: [] as number[] };
  prepared.ids.forEach((id, i) => parts[holdoutOf(id, t.seed, t.test_fraction, t.validation_fraction)].push(prepared.rows[i]!));
  return { train: Uint32Array.from(parts.train), validation: Uint32Array.from(parts.validation), test: Uint32Array.from(parts.test) };
}

/** What an in-memory party kept of its steps (what a participant would have written to its job folder). */
export interface MemoryKept {
  statistics?: BinnedStatistics[];
  binning?: KeptBinning;
  validationScores: Map<number, Float64Array>;
  modelPart?: ModelPart;
  scorecardPart?: ScorecardPart;
  scorecard?: Scorecard;
  testScores?: string;
  modelReport?: ModelReport;
}

export function memoryKeeper(kept: MemoryKept): LrKeeper {
  return {
    statistics: (s) => void (kept.statistics = s),
    binning: (b) => void (kept.binning = b),
    validationScores: (epoch, z) => void kept.validationScores.set(epoch, z),
    keptValidationScores: (epoch) => kept.validationScores.get(epoch)!,
    modelPart: (p) => void (kept.modelPart = p),
    scorecardPart: (p) => void (kept.scorecardPart = p),
    scorecard: (card) => void (kept.scorecard = card),
    testScores: (csv) => void (kept.testScores = csv),
    modelReport: (r) => void (kept.modelReport = r),
  };
}

/** A party of an in-memory vertical job: its rows, the columns it brings, and its CKKS engine (each party has its own). */
export interface MemoryParty {
  org: string;
  data: LoadedDataset;
  features: string[];
  engine: CkksEngine;
  /** The rows (by index) whose ids the party brings to the PSI; every row when absent. */
  rows?: readonly number[];
}

/**
 * A whole vertical LR job in one process over the in-memory port, from each party's unaligned ids: the align step
 * (a real ECDH PSI), binning (when the job has it), the epochs of batches with validation and early stopping as the
 * coordinator runs them, the chosen epoch, the scorecard (when asked for) and the evaluation. Returns each step's
 * reports by party, each party's alignment and what each party kept. A step `rerun` names runs twice, its first
 * attempt to its end at every party, as when a restarted coordinator asks again for a step whose end it did not record.
 */
export async function runMemoryVerticalJob(
  spec: VerticalJobSpec,
  parties: MemoryParty[],
  keys: { cipher: (party: MemoryParty) => VerticalCipher; opener: Opener; sentGradient?: (party: string, purpose: string, masked: Uint8Array) => void },
  rerun: (name: string, epoch: number, batch: number) => boolean = () => false,
) {
  const log = createLogger('test', 'silent');
  const federation = new MemoryFederation(spec.guest, spec.hosts, keys.opener, 120_000, keys.sentGradient);
  const scratch = mkdtempSync(join(tmpdir(), 'fedcredit-memory-psi-'));
  const kept = new Map(parties.map((p) => [p.org, { validationScores: new Map() } as MemoryKept]));
  const lr = new Map(
    parties.map((p) => {
      const party = new LrParty({ jobId: 'memory-job', org: p.org, spec, features: p.features, data: () => p.data, engine: async () => p.engine, keeper: memoryKeeper(kept.get(p.org)!), log });
      party.cipher = keys.cipher(p);
      return [p.org, party] as const;
    }),
  );
  /** Each step's reports by party, and its wall time (every party's work in this one process). */
  const reports: { name: string; epoch: number; reports: Map<string, Record<string, unknown>>; ms?: number }[] = [];
  let step = 1;
  const salt = randomBytes(32);
  const stores = new Map(parties.map((p) => [p.org, new MemoryAlignStore(join(scratch, p.org))]));
  const align = async (p: MemoryParty) => {
    const rows = p.rows ?? p.data.ids.map((_, r) => r);
    const inputs: AlignInputs = {
      ids: () => rows.map((r) => [p.data.ids[r]!, r] as const),
      format: spec.alignment.id_format,
      key: PsiKey.generate(),
      salt,
      store: stores.get(p.org)!,
      attempt: 0,
      minIntersection: spec.alignment.min_intersection,
      split: spec.training,
      log,
    };
    const port = federation.port(p.org, step);
    return [p.org, p.org === spec.guest ? await guestAlign(port, inputs) : await hostAlign(port, inputs)] as const;
  };
  const run = async (name: string, epoch = 0, batch = 0, args: object = {}) => {
    step++;
    const started = performance.now();
    const attempt = (n: number) =>
      Promise.all(
        parties.map(async (p) => {
          const party = lr.get(p.org)!;
          party.beginStep(n > 0);
          return [p.org, await party.run({ step: name, epoch, batch, argsJson: JSON.stringify(args) }, federation.port(p.org, step, n))] as const;
        }),
      );
    let done = await attempt(0);
    if (rerun(name, epoch, batch)) done = await attempt(1);
    const byParty = new Map(done);
    reports.push({ name, epoch, reports: byParty, ms: performance.now() - started });
    return byParty.get(spec.guest)!;
  };
  try {
    reports.push({ name: 'psi', epoch: 0, reports: new Map(await Promise.all(parties.map(align))) });
    const alignments = new Map(parties.map((p) => [p.org, stores.get(p.org)!.alignment()]));
    for (const [org, party] of lr) party.setAlignment(alignments.get(org)!);
    const alignment = alignments.get(spec.guest)!;
    if (spec.binning) await run('bin');
    const { best } = await runTraining(trainingPlan(spec.training, alignment.train.length), {
      batch: async (epoch, b) => void (await run('batch', epoch, b)),
      validate: (epoch) => run('validate', epoch),
    });
    await run('finalize', 0, 0, { epoch: best });
    if (spec.scorecard) await run('scorecard');
    const evaluation = await run('evaluate');
    return { reports, alignments, kept, best, evaluation };
  } finally {
    for (const party of lr.values()) party.dispose();
    federation.dispose();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The test AUC of the bank-and-tax-bureau `job` run in the clear, in this process, over a UCI slice: what the same job
 * under CKKS publishes, up to the encryption's noise (a reference for the process tests, at a fraction of a CKKS
 * job's time).
 */
export async function clearUciSliceAuc(job: object, slice: ReturnType<typeof uciHeteroSlice>): Promise<number> {
  const [guest, host] = await Promise.all([loadDataset(slice('guest')), loadDataset(slice('host'))]);
  const engine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  try {
    const run = await runMemoryVerticalJob(
      JobSpec.parse(job) as VerticalJobSpec,
      [
        { org: 'bank', data: guest, features: UCI_GUEST_FEATURES, engine },
        { org: 'tax-bureau', data: host, features: UCI_HOST_FEATURES, engine },
      ],
      { cipher: () => plaintextCipher, opener: plaintextOpener },
    );
    return Number(run.evaluation.test_auc);
  } finally {
    engine.dispose();
  }
}

/** A guest's and a host's engines for the vertical CKKS parameters: made before the calling describe's tests, freed after. */
export function verticalEngines(): { guest: CkksEngine; host: CkksEngine } {
  const engines = {} as { guest: CkksEngine; host: CkksEngine };
  beforeAll(async () => {
    engines.guest = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
    engines.host = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  });
  afterAll(() => {
    engines.guest?.dispose();
    engines.host?.dispose();
  });
  return engines;
}

/**
 * A vertical job's collective gradient key for in-memory tests (encryption.scheme ckks-threshold): the arbiter and
 * every party make their shares, commit and reveal (verticalCollectiveKeyShare), every party's cipher encrypts under
 * the collective keys, and the arbiter opens each masked gradient with a decryption share from every shareholder.
 * `shareholders` keeps each one's rules and records, and `context` the SEAL context (dispose() frees it).
 */
export async function memoryCollectiveKeys(job: { guest: string; hosts: readonly string[]; features?: Record<string, string[]> }) {
  const context = await ThresholdContext.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
  const made = inProcessCollectiveKeys(context, 'memory-job', job);
  return {
    context,
    ...made,
    keys: {
      cipher: (p: MemoryParty) => ckksCipher(VerticalGradient.of(p.engine), made.publicKey, made.galoisKeys, VERTICAL_MAX_FEATURE),
      opener: made.opener,
      sentGradient: made.sentGradient,
    },
    dispose: () => {
      for (const holder of made.shareholders.values()) holder.forget();
      context.dispose();
    },
  };
}
