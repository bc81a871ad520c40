/**
 * A vertical-boost job over real processes on loopback: a slice of the UCI default-credit hetero split (the first
 * 4,000 enterprises of ../shared/datasets, written to a temporary folder; the tax bureau holds the first 3,950 of
 * them), the bank (guest: labels + 13 features) and the tax bureau (host: 10 features), aligned by PSI, trees grown
 * under the bank's CKKS key; then `fedcredit score` with the trees.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { VerticalBoostSpec } from '../src/config/schemas.js';
import { loadDataset } from '../src/data/csv.js';
import type { CsvDatasetSpec } from '../src/data/schema.js';
import { readLedger, type LedgerReadEntry } from '../src/ledger/read.js';
import { hex, sha256 } from '../src/bytes.js';
import { replayBoostJob } from '../src/audit/replay-boost.js';
import { formatReplay, type BlobRef } from '../src/audit/replay.js';
import { replayReportHtml } from '../src/audit/report.js';
import type { TreeRecord } from '../src/vertical/step-reports.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { replayLedger } from '../src/jobs/replay.js';
import { writeJobReport } from '../src/report/job-report.js';
import { readTestScores } from '../src/credit/test-scores.js';
import { auc } from '../src/metrics.js';
import { boost, gainImportance, localOracle, predictMargin, reasonCodes as treeReasonCodes, scoreRows } from '../src/model/gbdt.js';
import type { ModelReportInput } from '../src/report/model-report.js';
import type { BatchReport } from '../src/paths.js';
import { gbdtParams, jobRows, partDigest, scoringBins, treeFeatures, type BoostGuestPart, type BoostHostPart } from '../src/vertical/boost/party.js';
import { requestScores } from '../src/vertical/score-client.js';
import { TestFederation, UCI } from './helpers/federation.js';
import { participantJobDir, uciHeteroSpec, UCI_GUEST_FEATURES, UCI_HOST_FEATURES } from './helpers/vertical.js';

const ROWS = 4000;
/** The tax bureau holds the first HOST_ROWS of the bank's enterprises: the rest are scored as not held. */
const HOST_ROWS = 3950;

describe('vertical-boost on a UCI hetero slice (bank + tax bureau)', () => {
  let fed: TestFederation;
  let dir: string;
  /** The training job, for the scoring tests. */
  let trained: string;
  const slice = (role: 'guest' | 'host'): CsvDatasetSpec => {
    const lines = readFileSync(join(UCI, `fate_default_credit_hetero_${role}.csv`), 'utf8').split('\n');
    const path = join(dir, `${role}.csv`);
    writeFileSync(path, `${lines.slice(0, (role === 'guest' ? ROWS : HOST_ROWS) + 1).join('\n')}\n`);
    return { ...uciHeteroSpec(role), path };
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fc-boost-'));
    fed = await TestFederation.start([
      { name: 'bank', data: slice('guest'), consent: { job_kinds: ['vertical-boost'] } },
      // Scoring is admitted by the kind of the model's job, and capped as for a linear model (consent.scoring).
      { name: 'tax-bureau', data: slice('host'), consent: { job_kinds: ['vertical-boost'], scoring: { max_ids_per_request: 40 } } },
    ]);
  });
  afterAll(async () => {
    await fed?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const job = {
    name: 'uci-hetero-boost',
    kind: 'vertical-boost',
    purpose: 'test: gradient-boosted default model on UCI credit card clients, bank and tax bureau',
    guest: 'bank',
    hosts: ['tax-bureau'],
    alignment: { id_format: 'any', min_intersection: 1000 },
    training: { seed: 7, step_timeout_s: 300, grace_period_s: 10 },
    binning: { fine_bins: 16 },
    boosting: { trees: 5, depth: 3, learning_rate: 0.3, early_stopping_patience: 0 },
  };
  const ledgerDir = () => fed.ledgerDir;
  const treesOf = (jobId: string) =>
    readLedger(ledgerDir())
      .entries.filter((e) => e.entry.jobId === jobId && e.entry.kind === 'tree_built')
      .map((e) => e.body as TreeRecord);
  // The uninterrupted job's trees and test AUC, for the resumed one to match.
  let reference: { trees: TreeRecord[]; auc: number } | undefined;

  it('grows the trees, records each, publishes a manifest committing to both parts, and matches the central GBDT on the same rows', async () => {
    const { jobId, last } = await fed.run(job);
    expect(last.state, last.message).toBe('succeeded');
    trained = jobId;

    const entries = readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    const trees = entries.filter((e) => e.entry.kind === 'tree_built').map((e) => e.body as { tree: number; sha256: string });
    expect(trees.map((t) => t.tree)).toEqual([0, 1, 2, 3, 4]);
    const published = entries.find((e) => e.entry.kind === 'model_published')!.body as { trees: number; parts: Record<string, { sha256: string }>; test: { auc: number; ks: number; rows: number } };
    expect(published.trees).toBe(5);
    reference = { trees: treesOf(jobId), auc: published.test.auc };

    // The ledger verifies (chain, signatures, the parties' receipts), and the audit says what it checked of the job.
    const verified = await verifyLedger(ledgerDir(), { receiptsDir: fed.dir });
    expect(verified.ok, JSON.stringify(verified)).toBe(true);
    const replay = await replayLedger(ledgerDir(), { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
    expect(replay.jobs[0]!.rounds.map((r) => r.round)).toEqual([0, 1, 2, 3, 4]);
    expect(replay.jobs[0]!.publishedModelOk).toBe(true);
    // `fedcredit audit replay` prints a row per tree, and --report draws the validation AUC per tree.
    const printed = formatReplay(replay);
    expect(printed).toContain('published model ' + replay.jobs[0]!.publishedModel + ": lists the kept trees of the record and commits to every party's part");
    expect(printed).toMatch(/^ +tree +step/m);
    expect(printed).toMatch(/replay OK/);
    expect(await replayReportHtml(replay, ledgerDir())).toContain('Validation AUC per tree');
    // Every level is recorded: the tax bureau was asked the root's histogram, and its splits by node.
    const records = entries.filter((e) => e.entry.kind === 'tree_built').map((e) => e.body as TreeRecord);
    expect(records[0]!.levels[0]!.histograms).toEqual({ 'tax-bureau': [0] });
    expect(records.flatMap((t) => t.levels).length).toBeGreaterThanOrEqual(5 * 3);

    // A record that lies, consistently signed (a coordinator or guest that deviates): the replay names the check.
    const blob = (ref: BlobRef) => readFile(join(ledgerDir(), 'blobs', hex(ref.sha256)));
    const tampered = async (edit: (copy: LedgerReadEntry[], blobs: Map<string, Uint8Array>) => void) => {
      const copy = structuredClone(entries);
      const blobs = new Map<string, Uint8Array>();
      edit(copy, blobs);
      const replayed = await replayBoostJob(jobId, copy, async (ref) => blobs.get(hex(ref.sha256)) ?? blob(ref));
      return replayed.failures.join('; ');
    };
    // The trees as both the tree_built entries and the guest's boost report hold them.
    const editTrees = (copy: LedgerReadEntry[], edit: (trees: TreeRecord[]) => TreeRecord[]) => {
      const step = copy.find((e) => e.entry.kind === 'step_completed' && e.body.name === 'boost')!;
      const report = (step.body.reports as Record<string, { trees: TreeRecord[] }>).bank!;
      report.trees = edit(report.trees);
      const built = copy.filter((e) => e.entry.kind === 'tree_built');
      const at = copy.indexOf(built[0]!);
      copy.splice(at, built.length, ...report.trees.map((t) => ({ ...built[0]!, body: structuredClone(t) as unknown as Record<string, unknown> })));
    };
    expect(await tampered(() => undefined)).toBe('');
    // A tree of the published model that is not the logged one.
    const swapped = await tampered((copy, blobs) => {
      const entry = copy.find((e) => e.entry.kind === 'model_published')!;
      const ref = entry.entry.blobs.find((r) => r.name === 'manifest.json')!;
      const manifest = JSON.parse(readFileSync(join(ledgerDir(), 'blobs', hex(ref.sha256)), 'utf8'));
      manifest.trees[1] = '0'.repeat(64);
      const bytes = Buffer.from(JSON.stringify(manifest));
      ref.sha256 = sha256(bytes);
      entry.body.model_sha256 = hex(ref.sha256);
      blobs.set(hex(ref.sha256), bytes);
    });
    expect(swapped).toMatch(/manifest: it lists 5 trees where the record keeps 5 \(tree 1 is not the logged tree/);
    // An extra tree beyond boosting.trees.
    expect(await tampered((copy) => editTrees(copy, (trees) => [...trees, { ...trees[4]!, tree: 5 }]))).toMatch(/schedule: 6 trees were grown for a job of at most 5/);
    // A split by an organisation that is no party of the job.
    const stranger = await tampered((copy) =>
      editTrees(copy, (trees) => trees.map((t, i) => (i === 2 ? { ...t, nodes: t.nodes.map((n, j) => (j === 0 ? { ...n, owner: 'power-company' } : n)) } : t))),
    );
    expect(stranger).toMatch(/tree 2: split owners: node 0 is split by power-company, not a party of the job/);
    // The histogram of the larger child asked (an ask outside the protocol's schedule): the host's own view disagrees too.
    const larger = await tampered((copy) =>
      editTrees(copy, (trees) =>
        trees.map((t, i) => {
          if (i !== 0) return t;
          const root = t.nodes[0]!;
          const big = t.nodes[root.left!]!.rows > t.nodes[root.right!]!.rows ? root.left! : root.right!;
          return { ...t, levels: t.levels.map((l) => (l.level === 1 ? { ...l, histograms: { 'tax-bureau': [big] } } : l)) };
        }),
      ),
    );
    expect(larger).toMatch(/tree 0: asks: level 1 logs/);
    expect(larger).toMatch(/host views: tax-bureau reports \d+ asks answered .* the guest asked tax-bureau other than it logged/);
    // A tree recorded as dropped though early stopping is off.
    expect(await tampered((copy) => editTrees(copy, (trees) => trees.map((t, i) => (i === 4 ? { ...t, kept: false } : t))))).toMatch(
      /early stopping: tree 4 is recorded as dropped; the best validation AUC keeps the first 5 trees/,
    );

    // The manifest commits to the part each party kept, and the guest's trees are the ones the ledger records.
    const part = (org: string) => JSON.parse(readFileSync(join(participantJobDir(fed.dir, org, jobId), 'model-part.json'), 'utf8'));
    const guestPart = part('bank');
    const hostPart = part('tax-bureau');
    expect(published.parts.bank!.sha256).toBe(partDigest(guestPart));
    expect(published.parts['tax-bureau']!.sha256).toBe(partDigest(hostPart));
    expect(hostPart.splits.length).toBeGreaterThan(0);
    // The guest's model names a host split by owner and id only: the bins stay in the host's part.
    const hostRefs = (guestPart.model.trees as { nodes: { ref?: Record<string, unknown> }[] }[]).flatMap((t) => t.nodes.flatMap((n) => (n.ref && 'owner' in n.ref ? [n.ref] : [])));
    expect(hostRefs.length).toBeGreaterThan(0);
    for (const ref of hostRefs) expect(Object.keys(ref).sort()).toEqual(['id', 'owner']);

    // The central GBDT on the same aligned rows (the bank's own record of them), bins and settings.
    const spec = VerticalBoostSpec.parse(job);
    const [guest, host] = await Promise.all([loadDataset(slice('guest')), loadDataset(slice('host'))]);
    const parts: Record<string, number[]> = { train: [], validation: [], test: [] };
    const rowOf = new Map(guest.ids.map((id, r) => [id, r]));
    const record = readFileSync(join(participantJobDir(fed.dir, 'bank', jobId), 'aligned-ids.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1);
    for (const line of record) {
      const [id, p] = line.split(',') as [string, string];
      parts[p]!.push(rowOf.get(id)!);
    }
    const alignment = { train: Uint32Array.from(parts.train!), validation: Uint32Array.from(parts.validation!), test: Uint32Array.from(parts.test!) };
    expect(alignment.test.length).toBe(published.test.rows);
    const mine = treeFeatures(guest, 'bank', UCI_GUEST_FEATURES, alignment, spec.binning, spec.boosting);
    const theirs = treeFeatures(host, 'tax-bureau', UCI_HOST_FEATURES, alignment, spec.binning, spec.boosting);
    const { rows, train, valid, test } = jobRows(alignment);
    const labels = Float64Array.from(rows, (r) => guest.y![r]!);
    const central = await boost(localOracle([...mine.info, ...theirs.info], [...mine.bins, ...theirs.bins]), { labels, train, valid }, gbdtParams(spec.boosting));
    const testBins = [...mine.bins, ...theirs.bins].map((c) => Uint16Array.from(test, (r) => c[r]!));
    const centralAuc = auc(
      Float64Array.from(test, (r) => labels[r]!),
      predictMargin(central, testBins, test.length),
    );
    console.log(
      `vertical-boost UCI slice: federated test AUC ${published.test.auc.toFixed(4)} KS ${published.test.ks.toFixed(4)}; central GBDT ${centralAuc.toFixed(4)}; ${published.test.rows} held-out`,
    );
    expect(published.test.auc).toBeGreaterThan(0.7);
    expect(Math.abs(published.test.auc - centralAuc)).toBeLessThanOrEqual(0.002);

    // `fedcredit report` on the bank's machine: the model report from its job folder (held-out scores, aggregates).
    const out = join(dir, 'report.html');
    const figures = await writeJobReport(participantJobDir(fed.dir, 'bank', jobId), out);
    expect(figures.length).toBeGreaterThan(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain(job.name);
    expect(html).toContain(published.test.auc.toFixed(3));
    // For trees: gain importance per party and feature (the guest's trees' split gains), and the held-out reason codes.
    const saved = JSON.parse(readFileSync(join(participantJobDir(fed.dir, 'bank', jobId), 'model-report.json'), 'utf8')) as Required<Pick<ModelReportInput, 'importance' | 'reasons'>>;
    const gains = gainImportance(guestPart.model);
    expect(saved.importance.map((r) => r.gain)).toEqual(Array.from(gains));
    expect(saved.importance.map((r) => `${r.party}/${r.feature}`)).toEqual(guestPart.model.features.map((f: { owner: string; name: string }) => `${f.owner}/${f.name}`));
    expect(saved.importance.some((r) => r.party === 'tax-bureau' && r.gain > 0)).toBe(true);
    expect(saved.reasons.rows).toBe(published.test.rows);
    const firsts = saved.reasons.features.reduce((n, f) => n + f.first, 0);
    // An enterprise whose every feature lowered its PD has no reason code.
    expect(firsts).toBeGreaterThan(0);
    expect(firsts).toBeLessThanOrEqual(published.test.rows);
    for (const f of saved.reasons.features) expect(f.any).toBeGreaterThanOrEqual(f.first);
    expect(html).toContain('id="importance"');
    expect(html).toContain('id="reasons"');
    expect(existsSync(join(dir, 'report-figures', 'importance.svg'))).toBe(true);
  }, 900_000);

  it('scores new applicants with the trees in one round: the PDs of training, the not-held as missing values, reason codes named with their party', async () => {
    expect(trained, 'the training test ran').toBeDefined();
    const [guest, host] = await Promise.all([loadDataset(slice('guest')), loadDataset(slice('host'))]);
    const record = readFileSync(join(participantJobDir(fed.dir, 'bank', trained), 'aligned-ids.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1);
    const heldOut = record
      .filter((l) => l.endsWith(',test'))
      .map((l) => l.split(',')[0]!)
      .slice(0, 25);
    const bankOnly = guest.ids.slice(HOST_ROWS, HOST_ROWS + 5);
    const stateDir = join(fed.dir, 'fedcredit-state', 'bank');
    const transport = await fed.identity('bank', 'submitter');
    const ask = (ids: string[]) => requestScores({ coordinator: fed.cluster.address, transport, organisation: 'bank', stateDir, modelJob: trained, ids, purpose: 'test: scoring with trees' });
    const result = await ask([...heldOut, ...bankOnly]);
    const [header, ...lines] = result.csv.trim().split('\n');
    expect(header).toBe('enterprise_id,pd,score,hosts_missing,reason_1,reason_2,reason_3');
    const rows = lines.map((l) => l.split(','));
    expect(rows.map((r) => r[0])).toEqual([...heldOut, ...bankOnly]);

    // The enterprises of the held-out part score as the job's own evaluation scored them.
    // test-scores.csv names its columns as a vertical-lr job's does, not as the bank's data does (`id`, `y`).
    const testFile = join(participantJobDir(fed.dir, 'bank', trained), 'test-scores.csv');
    expect(readFileSync(testFile, 'utf8').split('\n')[0]).toBe('enterprise_id,label,score,pd');
    const held = readTestScores(testFile);
    const labelOf = new Map(
      readFileSync(join(dir, 'guest.csv'), 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(','))
        .map(([id, y]) => [id!, Number(y)]),
    );
    expect(held.labels).toEqual(held.ids.map((id) => labelOf.get(id)));
    const testScores = new Map(held.ids.map((id, i) => [id, held.pd[i]!]));
    for (const [id, pd] of rows.slice(0, heldOut.length)) expect(Number(pd)).toBeCloseTo(testScores.get(id!)!, 6);

    // A central walk of the same trees with both parts at hand; the tax bureau's features missing where it does not hold the enterprise.
    const part = (org: string) => JSON.parse(readFileSync(join(participantJobDir(fed.dir, org, trained), 'model-part.json'), 'utf8'));
    const guestPart = part('bank') as BoostGuestPart;
    const hostPart = part('tax-bureau') as BoostHostPart;
    const ids = rows.map((r) => r[0]!);
    const guestBins = scoringBins(
      guest,
      guestPart.binning,
      ids.map((id) => guest.ids.indexOf(id)),
    );
    const hostBins = scoringBins(
      host,
      hostPart.binning,
      ids.map((id) => host.ids.indexOf(id)),
    );
    const central = scoreRows(guestPart.model, ids.length, (_t, _i, split, r) => {
      if ('leftBins' in split.ref) return split.ref.leftBins.includes(guestBins[split.feature]![r]!);
      const theirs = hostPart.splits[split.ref.id]!;
      return theirs.leftBins.includes(hostBins[theirs.feature]![r]!);
    });
    rows.forEach(([id, pd, score, missing, ...reasons], r) => {
      expect(Number(score)).toBeCloseTo(central.margin[r]!, 6);
      expect(Number(pd)).toBeCloseTo(1 / (1 + Math.exp(-central.margin[r]!)), 6);
      const notHeld = bankOnly.includes(id!);
      expect(missing).toBe(notHeld ? 'tax-bureau' : '');
      // The features that raised this PD most, largest first, named with their party; never a party that lacks the enterprise.
      const expected = treeReasonCodes(guestPart.model, central.contributions, r, guestPart.model.features.length)
        .filter((c) => !notHeld || c.owner !== 'tax-bureau')
        .slice(0, 3)
        .map((c) => `${c.owner}/${c.feature} (+${c.contribution.toFixed(4)})`);
      expect(reasons.filter(Boolean)).toEqual(expected);
    });
    expect(rows.some((r) => r[4]?.startsWith('tax-bureau/'))).toBe(true);
    const produced = readLedger(fed.ledgerDir).entries.find((e) => e.entry.kind === 'scores_produced' && e.entry.jobId === result.jobId)!.body;
    expect(produced).toMatchObject({ requested: rows.length, scored: rows.length, scored_without_some_host: bankOnly.length, not_held_by_host: { 'tax-bureau': bankOnly.length } });

    // The batch report: the bank's own features' stability against its training rows; the host answers routes only.
    const batch = JSON.parse(readFileSync(join(participantJobDir(fed.dir, 'bank', result.jobId), 'batch-report.json'), 'utf8')) as BatchReport;
    expect(Object.keys(batch.featurePsi.bank!)).toEqual(UCI_GUEST_FEATURES);
    for (const psi of Object.values(batch.featurePsi.bank!)) expect(psi).toBeGreaterThanOrEqual(0);
    expect(batch.featurePsi['tax-bureau']).toBeNull();
    expect(batch.notHeld).toEqual({ 'tax-bureau': bankOnly.length });

    // The tax bureau's cap on the ids of one request holds for trees too.
    await expect(ask(guest.ids.slice(0, 41))).rejects.toThrow(/consent\.scoring\.max_ids_per_request: the scoring request lists at least \d+ enterprises; this data owner allows 40 per request/);
    // A scoring job names a model job that is not a finished training job: the coordinator says so.
    await expect(
      requestScores({ coordinator: fed.cluster.address, transport, organisation: 'bank', stateDir, modelJob: result.jobId, ids: heldOut.slice(0, 2), purpose: 'test: scoring with a scoring job' }),
    ).rejects.toThrow(/is a vertical-score job in state succeeded, not a finished vertical-lr or vertical-boost job/);
  }, 300_000);

  it('killed (SIGKILL) in the boost step, the coordinator resumes the job: the trees are grown again and match an uninterrupted run, and the replay passes', async () => {
    expect(reference, 'the uninterrupted job ran first').toBeDefined();
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(job), 'test-bank');
    let killed: Promise<void> | undefined;
    // A second into the boost step (step 2; five trees take longer): the guest is growing the trees with the host.
    await client
      .watchJob(jobId, (e) => {
        if (e.stage === 'training' && !killed) killed = new Promise((r) => setTimeout(r, 1_000)).then(() => fed.cluster.kill('coordinator', 'SIGKILL'));
      })
      .catch(() => undefined);
    await killed;
    client.close();
    await fed.cluster.restartCoordinator();
    const after = await fed.client();
    const last = await after.watchJob(jobId, () => undefined);
    after.close();
    expect(last.state, last.message).toBe('succeeded');

    const entries = readLedger(ledgerDir()).entries.filter((e) => e.entry.jobId === jobId);
    const resumed = entries.find((e) => e.entry.kind === 'job_resumed' && e.body.coordinator_restart === true);
    // The PSI is step 1, the trees step 2.
    expect(resumed?.body.step).toBe(2);
    const boostStep = entries.find((e) => e.entry.kind === 'step_completed' && e.body.name === 'boost')!;
    expect(Number(boostStep.body.attempt)).toBeGreaterThanOrEqual(1);
    // The same trees, node by node (rows and owners); gains and hence digests differ by CKKS noise.
    const trees = treesOf(jobId);
    expect(trees.map((t) => t.nodes)).toEqual(reference!.trees.map((t) => t.nodes));
    const published = entries.find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } };
    console.log(`vertical-boost resumed after a coordinator kill in the boost step: test AUC ${published.test.auc.toFixed(4)} (uninterrupted ${reference!.auc.toFixed(4)})`);
    expect(Math.abs(published.test.auc - reference!.auc)).toBeLessThan(1e-3);
    const verified = await verifyLedger(ledgerDir(), { receiptsDir: fed.dir });
    expect(verified.ok, JSON.stringify(verified.failure)).toBe(true);
    const replay = await replayLedger(ledgerDir(), { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
  }, 900_000);
  it('a host killed in the boost step and restarted: the job fails at once, naming the host and the resubmit fix, not at step_timeout_s', async () => {
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(job), 'test-bank');
    let restarted: Promise<number> | undefined;
    // A boosting job's trees live in memory: the restarted host cannot rejoin, and says so when asked for the step
    // again (before, it ignored the request and the job waited out step_timeout_s, 300 s here, 600 s by default).
    const last = await client.watchJob(jobId, (e) => {
      if (e.stage === 'training' && !restarted)
        restarted = new Promise((r) => setTimeout(r, 1_000)).then(async () => {
          await fed.cluster.kill('tax-bureau', 'SIGKILL');
          fed.cluster.startParticipant('tax-bureau');
          return Date.now();
        });
    });
    const failedAfter = (Date.now() - (await restarted!)) / 1000;
    client.close();
    expect(last.state).toBe('failed');
    expect(last.message).toMatch(/tax-bureau was restarted during this vertical-boost job and cannot rejoin it/);
    expect(last.message).toMatch(/resubmit the job/);
    console.log(`vertical-boost host restarted in the boost step: the job failed ${failedAfter.toFixed(1)} s after the restart`);
    expect(failedAfter).toBeLessThan(job.training.step_timeout_s / 5);
  }, 400_000);
});
