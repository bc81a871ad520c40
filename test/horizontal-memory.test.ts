/**
 * The horizontal protocol end to end in one process (test/helpers/memory-horizontal.ts: the coordinator's job runner
 * and each participant's horizontal job over an in-memory port, with real CKKS and a real ledger) on slices of the UCI
 * default-credit homo split: the protocol's maths, its records and its rules for drops and disagreement, without
 * processes, gRPC or TLS (test/horizontal-federation.test.ts and the fault tests keep those).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { UCI_FEATURES, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { MemoryFederation, writeUciSlices, type MemoryRun } from './helpers/memory-horizontal.js';
import { replayLedger } from '../src/jobs/replay.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { readLedger } from '../src/ledger/read.js';
import { toFloat32 } from '../src/fl/vector-codec.js';
import { sha256 } from '../src/bytes.js';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import type { EncryptedVector, ParticipantMessage } from '../src/wire/messages.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];
/** Rows of each owner's file in its slice: enough for a model with an AUC, few enough for seconds. */
const SLICE_ROWS = 2000;
/** Three rounds, and no winsorising (so no quantile search): the slices' job takes seconds. */
const job = (overrides: Parameters<typeof horizontalJob>[0] = {}) => horizontalJob({ participants: NAMES, ...overrides, training: { rounds: 3, winsorize: 0, ...overrides.training } });

const progressOf = (run: MemoryRun) => run.events.filter((e) => e.progress).map((e) => e.progress!);

describe('a horizontal job in one process (in-memory port, real CKKS) on UCI slices', () => {
  let slices: string;
  let fed: MemoryFederation;
  let ckks: MemoryRun;

  beforeAll(async () => {
    const written = await writeUciSlices(NAMES, SLICE_ROWS);
    slices = written.dir;
    const files = written.files;
    fed = await MemoryFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(files[i]!) })));
    ckks = await fed.run(job());
  });
  afterAll(async () => {
    await fed?.stop();
    if (slices) await rm(slices, { recursive: true, force: true });
  });

  it('CKKS and plaintext federations publish the same model within 1e-4 in every weight; every round names its participants, loss and validation AUC', async () => {
    expect(ckks.state, ckks.message).toBe('succeeded');
    const plain = await fed.run(job({ encryption: { scheme: 'plaintext' } }));
    expect(plain.state, plain.message).toBe('succeeded');
    // Each run really used the scheme it claims: the key ceremony happened only under CKKS.
    expect(ckks.events.some((e) => e.stage === 'keys' && e.message.includes('CKKS keys in place'))).toBe(true);
    expect(plain.events.some((e) => e.stage === 'keys' && e.message.includes('plaintext mode'))).toBe(true);
    const wCkks = toFloat32(ckks.files['weights.bin']!);
    const wPlain = toFloat32(plain.files['weights.bin']!);
    expect(wCkks.length).toBe(UCI_FEATURES.length + 1);
    const maxDiff = wCkks.reduce((m, w, i) => Math.max(m, Math.abs(w - wPlain[i]!)), 0);
    console.log(`max |w_ckks - w_plaintext| = ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(1e-4);

    const rounds = progressOf(ckks);
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const r of rounds) {
      expect(r.participants).toEqual(NAMES);
      expect(r.dropped).toEqual([]);
      expect(r.trainLoss).toBeGreaterThan(0);
      expect(r.validationAuc).toBeGreaterThan(0.65);
    }
    // The published evaluation, from the secure PD histogram of every validation row of the slices.
    const evaluation = JSON.parse(Buffer.from(ckks.files['fedcredit.json']!).toString('utf8')).evaluation as { n: number; auc: number };
    console.log(`validation AUC of the published model: ${evaluation.auc.toFixed(4)} on ${evaluation.n} rows`);
    expect(evaluation.n).toBeGreaterThan(0.15 * 3 * SLICE_ROWS);
    expect(evaluation.auc).toBeGreaterThan(0.65);
  });

  it('leaves a ledger that verifies and replays: every sum re-added in canonical order, the published model derived again', async () => {
    expect((await verifyLedger(fed.ledgerDir)).ok).toBe(true);
    const report = await replayLedger(fed.ledgerDir, { jobId: ckks.jobId });
    const replayed = report.jobs[0]!;
    expect(replayed.failures).toEqual([]);
    expect(replayed.rounds.filter((r) => r.purpose === 'update').map((r) => r.round)).toEqual([1, 2, 3]);
    expect(replayed.rounds.every((r) => r.sumOk && r.contributors.join() === NAMES.join())).toBe(true);
    expect(replayed.publishedModelOk).toBe(true);
  });

  it('a participant gone in round 2 is dropped and named; the round is asked again of the other two and the job completes (min_participants 2)', async () => {
    // Its stream closes as it is about to send its round-2 update.
    fed.participant('bank-b').tamper = (reply) => {
      if (reply.body !== 'contribution' || reply.contribution.purpose !== 'update' || reply.round !== 2) return reply;
      fed.disconnect('bank-b', 'stream closed');
      return undefined;
    };
    try {
      const run = await fed.run(job({ training: { min_participants: 2 } }));
      expect(run.state, run.message).toBe('succeeded');
      const rounds = progressOf(run);
      expect(rounds.map((r) => r.participants)).toEqual([NAMES, ['bank-a', 'bank-c'], ['bank-a', 'bank-c']]);
      // The masks of round 2's first attempt cancel only with bank-b's contribution: the round is asked again of the
      // other two, with masks of their own.
      expect(rounds[1]!.dropped).toEqual(['bank-b (not connected)']);
      expect(rounds[2]!.dropped).toEqual(['bank-b (not connected)']);
      const entries = readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === run.jobId);
      const rejected = entries.filter((e) => e.entry.kind === 'update_rejected').map((e) => e.body);
      expect(rejected).toEqual([{ round: 2, purpose: 'update', participant: 'bank-b', reason: 'stream closed' }]);
      const round2 = entries.filter((e) => e.entry.kind === 'round_opened' && e.body.round === 2 && e.body.purpose === 'update').map((e) => [e.body.attempt, e.body.asked]);
      expect(round2).toEqual([
        [0, NAMES],
        [1, ['bank-a', 'bank-c']],
      ]);
      expect((await replayLedger(fed.ledgerDir, { jobId: run.jobId })).ok).toBe(true);
    } finally {
      fed.participant('bank-b').tamper = undefined;
      fed.reconnect('bank-b');
    }
  });

  it("a coordinator double that hands the reporter one participant's contribution as the aggregate gets no values: it opens to noise and the reporter refuses, failing the job", async () => {
    // The double keeps bank-b's masked round-1 update and sends it to bank-a (the reporter) as round 1's aggregate.
    let victim: EncryptedVector | undefined;
    const reported: ParticipantMessage[] = [];
    fed.participant('bank-b').tamper = (reply) => {
      if (reply.body === 'contribution' && reply.contribution.purpose === 'update' && reply.round === 1) victim = reply.contribution.vector;
      return reply;
    };
    fed.participant('bank-a').tamper = (reply) => {
      if (reply.body === 'aggregateOpened' || reply.body === 'error') reported.push(reply);
      return reply;
    };
    // It re-serialises the contribution as SEAL does a sum (no key needed), so it passes the reporter's form check.
    const engine = await CkksEngine.create();
    const forged = (v: EncryptedVector): EncryptedVector => {
      const blocks = new HorizontalVectors(engine).sumVectors([v.blocks]);
      return { ...v, blocks, blockSha256: blocks.map((b) => sha256(b)) };
    };
    fed.coordinatorTamper = (org, m) =>
      org === 'bank-a' && m.body === 'aggregateReady' && m.aggregateReady.purpose === 'update' && m.round === 1 ? { ...m, aggregateReady: { ...m.aggregateReady, sum: forged(victim!) } } : m;
    try {
      const run = await fed.run(job());
      expect(run.state).toBe('failed');
      expect(victim).toBeDefined();
      const fromReporter = reported.filter((r) => r.round === 1);
      expect(fromReporter.some((r) => r.body === 'aggregateOpened' && r.aggregateOpened.purpose === 'update')).toBe(false);
      const refusal = fromReporter.find((r) => r.body === 'error');
      expect(refusal?.body === 'error' && refusal.error.code).toBe('FC_PROTOCOL');
      const message = refusal?.body === 'error' ? refusal.error.message : '';
      expect(message).toMatch(/the opened update aggregate is not a sum including this node's update/);
      // What bank-a decrypted is noise, not bank-b's update (whose row count is about bank-a's 1,600 or so).
      const openedRows = Number(/its row count opened as (\S+);/.exec(message)?.[1]);
      expect(Number.isNaN(openedRows) || Math.abs(openedRows) > 1e6).toBe(true);
    } finally {
      fed.participant('bank-a').tamper = undefined;
      fed.participant('bank-b').tamper = undefined;
      fed.coordinatorTamper = undefined;
      engine.dispose();
    }
  });

  it('a participant that reports another aggregate than the reporter decrypted fails the job, naming it', async () => {
    fed.participant('bank-c').tamper = (reply) => {
      if (reply.body !== 'aggregateOpened' || reply.aggregateOpened.purpose !== 'update') return reply;
      const digest = Uint8Array.from(reply.aggregateOpened.valuesSha256);
      digest[0]! ^= 1;
      return { ...reply, aggregateOpened: { ...reply.aggregateOpened, valuesSha256: digest } };
    };
    try {
      const run = await fed.run(job());
      expect(run.state).toBe('failed');
      expect(run.message).toMatch(/^FC_JOB_FAILED: round 1: bank-c decrypted a different aggregate than bank-a\n/);
      // The moments sum was opened; round 1's disputed aggregate never is.
      const opened = readLedger(fed.ledgerDir)
        .entries.filter((e) => e.entry.jobId === run.jobId && e.entry.kind === 'aggregate_opened')
        .map((e) => (e.body as { round: number }).round);
      expect(opened).toEqual([0]);
    } finally {
      fed.participant('bank-c').tamper = undefined;
    }
  });
});
