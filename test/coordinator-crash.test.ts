/**
 * kill -9 of the coordinator in the middle of a job: restarted with the same config, it rebuilds the job from its
 * ledger, the participants reconnect by themselves, and the job ends with the model an uninterrupted run makes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { HOMO_PARTIES, TestFederation, UCI, csvHead, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { toFloat32 } from '../src/fl/vector-codec.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { replayLedger } from '../src/jobs/replay.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];

describe('coordinator killed (SIGKILL) in round 3 of 6', () => {
  let fed: TestFederation;
  beforeAll(async () => {
    // The first 3,000 rows of each owner's file: resuming from the ledger does not depend on how many there are.
    const slices = mkdtempSync(join(tmpdir(), 'fedcredit-uci-slices-'));
    const files = HOMO_PARTIES.map((p, i) => csvHead(join(UCI, `fate_default_credit_homo_${p}.csv`), 3_000, join(slices, `${NAMES[i]}.csv`)));
    fed = await TestFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(files[i]!), extra: { state_dir: `state-${name}` } })));
  });
  afterAll(async () => {
    await fed?.stop();
  });

  it('resumes from its ledger after a restart and publishes the same model as an uninterrupted run', async () => {
    const job = horizontalJob({ participants: NAMES, training: { rounds: 6, round_timeout_s: 60 } });
    const reference = await fed.run(job);
    expect(reference.last.state, reference.last.message).toBe('succeeded');
    const expected = toFloat32((await reference.client.downloadModel(reference.jobId))['weights.bin']!);
    reference.client.close();

    const client = await fed.client();
    const jobId = await client.submitJob(stringify(job), 'test-bank');
    let killed: Promise<void> | undefined;
    await client
      .watchJob(jobId, (e) => {
        if (e.progress?.round === 2 && !killed) killed = fed.cluster.kill('coordinator', 'SIGKILL');
      })
      .catch(() => undefined); // the watch breaks with the coordinator
    await killed;
    client.close();

    await fed.cluster.restartCoordinator();
    const after = await fed.client();
    const last = await after.watchJob(jobId, () => undefined);
    expect(last.state, last.message).toBe('succeeded');
    const resumed = toFloat32((await after.downloadModel(jobId))['weights.bin']!);
    after.close();

    const maxDiff = resumed.reduce((m, w, i) => Math.max(m, Math.abs(w - expected[i]!)), 0);
    console.log(`max |w_resumed - w_uninterrupted| = ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(1e-6);

    // The record stays whole across the crash: it verifies against the receipts and replays to the published model.
    const ledgerDir = fed.ledgerDir;
    const verified = await verifyLedger(ledgerDir, { receiptsDir: fed.dir });
    expect(verified.ok, verified.failure?.detail).toBe(true);
    const replay = await replayLedger(ledgerDir, { jobId });
    expect(replay.jobs[0]!.failures).toEqual([]);
    expect(replay.jobs[0]!.publishedModelOk).toBe(true);

    // Once finished, the job and its model outlive another restart: rebuilt from the ledger and its blobs.
    await fed.cluster.kill('coordinator', 'SIGKILL');
    await fed.cluster.restartCoordinator();
    const again = await fed.client();
    expect((await again.getJob(jobId)).state).toBe('succeeded');
    expect(Buffer.from((await again.downloadModel(jobId))['weights.bin']!).equals(Buffer.from(new Uint8Array(resumed.buffer)))).toBe(true);
    again.close();
  });
});
