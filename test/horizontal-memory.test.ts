/**
 * The horizontal protocol end to end in one process (test/helpers/memory-horizontal.ts: the coordinator's job runner
 * and each participant's horizontal job over an in-memory port, with real CKKS and a real ledger) on slices of the UCI
 * default-credit homo split: the protocol's maths, its records and its rules for drops and disagreement, without
 * processes, gRPC or TLS (test/horizontal-federation.test.ts and the fault tests keep those).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOMO_PARTIES, UCI, UCI_FEATURES, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { MemoryFederation, type MemoryRun } from './helpers/memory-horizontal.js';
import { replayLedger } from '../src/jobs/replay.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { readLedger } from '../src/ledger/read.js';
import { toFloat32 } from '../src/fl/vector-codec.js';

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
    slices = await mkdtemp(join(tmpdir(), 'fedcredit-uci-slices-'));
    const files = await Promise.all(
      HOMO_PARTIES.map(async (p, i) => {
        const lines = (await readFile(join(UCI, `fate_default_credit_homo_${p}.csv`), 'utf8')).split('\n');
        const file = join(slices, `${NAMES[i]}.csv`);
        await writeFile(file, lines.slice(0, SLICE_ROWS + 1).join('\n') + '\n');
        return file;
      }),
    );
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

  it('a participant gone in round 2 is dropped and named; the job completes with the other two (min_participants 2)', async () => {
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
      expect(rounds[1]!.dropped).toEqual(['bank-b (stream closed)']);
      expect(rounds[2]!.dropped).toEqual(['bank-b (not connected)']);
      const rejected = readLedger(fed.ledgerDir)
        .entries.filter((e) => e.entry.jobId === run.jobId && e.entry.kind === 'update_rejected')
        .map((e) => e.body);
      expect(rejected).toEqual([{ round: 2, purpose: 'update', participant: 'bank-b', reason: 'stream closed' }]);
      expect((await replayLedger(fed.ledgerDir, { jobId: run.jobId })).ok).toBe(true);
    } finally {
      fed.participant('bank-b').tamper = undefined;
      fed.reconnect('bank-b');
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
