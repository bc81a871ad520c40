/**
 * The auditor's promise on a real job: a horizontal CKKS federation of three UCI data owners leaves a ledger that
 * verifies (with the receipts the participants kept) and replays up to the published model; a coordinator that
 * leaves one participant's update out of a sum is caught by replay even when it re-signs a consistent history. The job
 * runs in one process (test/helpers/memory-horizontal.ts: real CKKS, real ledger, the receipts each participant keeps).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOMO_PARTIES, UCI, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { MemoryFederation } from './helpers/memory-horizontal.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { readLedger } from '../src/ledger/read.js';
import { Ledger } from '../src/ledger/ledger.js';
import { replayLedger } from '../src/jobs/replay.js';
import { replayReportHtml } from '../src/audit/report.js';
import { dataUses } from '../src/audit/show.js';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { VectorCodec } from '../src/fl/vector-codec.js';
import { decodeMessage, encodeMessage } from '../src/wire/proto.js';
import type { EncryptedVector } from '../src/wire/messages.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];

describe('audit ledger of a horizontal CKKS job', () => {
  let fed: MemoryFederation;
  let ledgerDir: string;
  let jobId: string;
  let published: string;

  beforeAll(async () => {
    fed = await MemoryFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(join(UCI, `fate_default_credit_homo_${HOMO_PARTIES[i]}.csv`)) })));
    const run = await fed.run(horizontalJob({ participants: NAMES, training: { rounds: 4 } }));
    expect(run.state, run.message).toBe('succeeded');
    jobId = run.jobId;
    published = run.modelSha256;
    ledgerDir = fed.ledgerDir;
  });
  afterAll(async () => {
    await fed?.stop();
  });

  it('verifies: signatures, chain, blobs, and every receipt the participants hold', async () => {
    const report = await verifyLedger(ledgerDir, { receiptsDir: fed.dir });
    expect(report.failure).toBeUndefined();
    expect(report.ok).toBe(true);
    // Each participant got a receipt for its data binding and for each of its 5 contributions (moments + 4 rounds).
    expect(report.receiptsChecked).toBeGreaterThanOrEqual(3 * 6);
  });

  it('replays every sum and model up to the published model, whose hash is the one the coordinator reported', async () => {
    const report = await replayLedger(ledgerDir, { jobId });
    const job = report.jobs[0]!;
    expect(job.failures).toEqual([]);
    expect(report.ok).toBe(true);
    expect(job.rounds.filter((r) => r.purpose === 'update').map((r) => r.round)).toEqual([1, 2, 3, 4]);
    expect(job.rounds.every((r) => r.sumOk)).toBe(true);
    expect(job.publishedModel).toBe(published);
    expect(job.publishedModelOk).toBe(true);
    // The published model is the round with the best validation AUC (training.model_selection's default).
    const { entries } = readLedger(ledgerDir);
    const closed = entries.filter((e) => e.entry.kind === 'round_closed').map((e) => e.body as { round: number; validation_auc: number; model_sha256: string });
    const selected = entries.find((e) => e.entry.kind === 'model_selected')!.body as { rule: string; round: number; model_sha256: string };
    const best = closed.reduce((a, b) => (b.validation_auc > a.validation_auc + 1e-4 ? b : a));
    expect(selected).toMatchObject({ rule: 'best_validation_auc', round: best.round, model_sha256: best.model_sha256 });
    expect(published).toBe(best.model_sha256);
    expect(job.derived?.['model selection']).toBe(true);
    const html = await replayReportHtml(report, ledgerDir);
    expect(html).toContain('<svg');
    expect(html).toContain('Audit replay <span class="ok">passed');
  });

  it('shows who used which data for which purpose, with fingerprints and never raw values', async () => {
    const uses = dataUses(ledgerDir, { jobId });
    expect(uses.map((u) => u.party).sort()).toEqual(NAMES);
    for (const u of uses) {
      expect(u.rows).toBeGreaterThan(7000);
      expect(u.purpose).toContain('UCI');
      expect(u.idSetSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(u.rowsSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(u.querySha256).toBeUndefined();
    }
    // The ledger holds no raw id: the first ids of the guest file are absent from every entry.
    const guest = await readFile(join(UCI, 'fate_default_credit_homo_guest.csv'), 'utf8');
    const ids = guest
      .split('\n')
      .slice(1, 50)
      .map((l) => l.split(',')[0]!)
      .filter((id) => id.length >= 4);
    const text = readLedger(ledgerDir)
      .entries.map((e) => JSON.stringify(e.body))
      .join('\n');
    for (const id of ids) expect(text).not.toMatch(new RegExp(`\\b${id}\\b`));
  });

  it('catches a coordinator that leaves one update out of a sum, even with a validly re-signed history', async () => {
    // The dishonest coordinator rewrites its own ledger: round 2's aggregate is the sum of two of the three updates.
    const forged = join(await mkdtemp(join(tmpdir(), 'fedcredit-forged-')), 'ledger');
    const { entries } = readLedger(ledgerDir);
    const ledger = await Ledger.open(forged, 'coordinator', fed.ledgerKey);
    const engine = await CkksEngine.create();
    const codec = VectorCodec.ckks(new HorizontalVectors(engine));
    const blob = (sha: Uint8Array) => readFile(join(ledgerDir, 'blobs', Buffer.from(sha).toString('hex')));
    const round2: EncryptedVector[] = [];
    for (const { entry, body } of entries) {
      const b = body as Record<string, any>;
      let blobs: { name: string; bytes: Uint8Array }[] = await Promise.all(entry.blobs.map(async (r) => ({ name: r.name, bytes: await blob(r.sha256) })));
      if (entry.kind === 'update_received' && b.round === 2) round2.push(decodeMessage<EncryptedVector>('EncryptedVector', blobs[0]!.bytes));
      if (entry.kind === 'aggregate_produced' && b.round === 2) blobs = [{ name: 'aggregate', bytes: encodeMessage('EncryptedVector', codec.sum(round2.slice(0, 2))) }];
      await ledger.append({ kind: entry.kind, jobId: entry.jobId, body: b, blobs });
    }
    await ledger.close();
    engine.dispose();

    expect((await verifyLedger(forged)).ok).toBe(true); // consistent and signed: integrity checks alone cannot see it
    expect((await verifyLedger(forged, { receiptsDir: fed.dir })).failure?.problem).toBe('receipt_mismatch');
    const replay = await replayLedger(forged, { jobId });
    expect(replay.ok).toBe(false);
    expect(replay.jobs[0]!.failures.join('\n')).toMatch(/round 2: the logged aggregate is not the sum of the logged updates/);
  });

  it('catches a coordinator that publishes another round than the one with the best validation AUC', async () => {
    // The coordinator rewrites its ledger to name another round's (genuine) model as the selected one.
    const forged = join(await mkdtemp(join(tmpdir(), 'fedcredit-forged-')), 'ledger');
    const { entries } = readLedger(ledgerDir);
    const closed = entries.filter((e) => e.entry.kind === 'round_closed').map((e) => e.body as { round: number; model_sha256: string });
    const honest = entries.find((e) => e.entry.kind === 'model_selected')!.body as { round: number };
    const other = closed.find((c) => c.round !== honest.round)!;
    const ledger = await Ledger.open(forged, 'coordinator', fed.ledgerKey);
    for (const { entry, body } of entries) {
      const blobs = await Promise.all(entry.blobs.map(async (r) => ({ name: r.name, bytes: await readFile(join(ledgerDir, 'blobs', Buffer.from(r.sha256).toString('hex'))) })));
      const b = entry.kind === 'model_selected' ? { ...(body as object), round: other.round, model_sha256: other.model_sha256 } : body;
      await ledger.append({ kind: entry.kind, jobId: entry.jobId, body: b, blobs });
    }
    await ledger.close();
    expect((await verifyLedger(forged)).ok).toBe(true);
    const replay = await replayLedger(forged, { jobId });
    expect(replay.ok).toBe(false);
    expect(replay.jobs[0]!.failures.join('\n')).toContain(
      `the published round ${other.round} is not the one the job's rule (best_validation_auc) picks from the logged validation AUCs (round ${honest.round})`,
    );
  });
});
