/**
 * The product's first promise, on real data and real processes: three data owners train one model over loopback
 * gRPC with CKKS-encrypted updates, and it is as good as a model trained on the pooled rows, under the lead's key
 * and under a collective key that nobody holds. (The protocol's maths —
 * CKKS against plaintext, round progress, replay, drops — run in one process in test/horizontal-memory.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { HOMO_PARTIES, TestFederation, UCI, UCI_FEATURES, horizontalJob, pooledUciBaseline, uciHomoSpec } from './helpers/federation.js';
import { toFloat32 } from '../src/fl/vector-codec.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];
const files = HOMO_PARTIES.map((p) => join(UCI, `fate_default_credit_homo_${p}.csv`));

// Both jobs have the model and training settings of horizontalJob (they differ in encryption only, which the pooled
// fit does not read): one pooled fit on the same training rows is the upper bound for both.
let baseline: ReturnType<typeof pooledUciBaseline> | undefined;
const pooledBaseline = () => (baseline ??= pooledUciBaseline(horizontalJob({ participants: NAMES })));

describe('horizontal federation of three UCI default-credit owners (real processes, loopback gRPC)', () => {
  let fed: TestFederation;

  beforeAll(async () => {
    fed = await TestFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(files[i]!) })));
  });
  afterAll(async () => {
    await fed?.stop();
  });

  it('the CKKS federation matches the pooled model within 0.005 AUC on the held-out file', async () => {
    const job = horizontalJob({ participants: NAMES });
    const ckks = await fed.run(job);
    expect(ckks.last.state, ckks.last.message).toBe('succeeded');
    expect(ckks.events.some((e) => e.stage === 'keys' && e.message.includes('CKKS keys in place'))).toBe(true);
    const rounds = ckks.events.filter((e) => e.progress).map((e) => e.progress!);
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const r of rounds) expect(r.participants.sort()).toEqual([...NAMES].sort());

    const ckksFiles = await ckks.client.downloadModel(ckks.jobId);
    ckks.client.close();
    expect(toFloat32(ckksFiles['weights.bin']!).length).toBe(UCI_FEATURES.length + 1);
    const { pooled, scoreModel } = await pooledBaseline();
    const federated = await scoreModel(ckksFiles);
    console.log(`test AUC: federated (CKKS) ${federated.auc.toFixed(4)}, pooled ${pooled.auc.toFixed(4)}; KS ${federated.ks.toFixed(4)} vs ${pooled.ks.toFixed(4)}`);
    expect(pooled.auc).toBeGreaterThan(0.7);
    expect(Math.abs(federated.auc - pooled.auc)).toBeLessThanOrEqual(0.005);
  });

  it('under a collective key (ckks-threshold, mutual TLS, signed commitments) it matches the pooled model within 0.005 AUC too', async () => {
    const job = horizontalJob({ participants: NAMES, encryption: { scheme: 'ckks-threshold' } });
    const threshold = await fed.run(job);
    expect(threshold.last.state, threshold.last.message).toBe('succeeded');
    expect(threshold.events.some((e) => e.stage === 'keys' && e.message.includes('nobody the secret key'))).toBe(true);
    const files = await threshold.client.downloadModel(threshold.jobId);
    threshold.client.close();
    const { pooled, scoreModel } = await pooledBaseline();
    const federated = await scoreModel(files);
    console.log(`test AUC: federated (threshold CKKS) ${federated.auc.toFixed(4)}, pooled ${pooled.auc.toFixed(4)}`);
    expect(Math.abs(federated.auc - pooled.auc)).toBeLessThanOrEqual(0.005);
  });
});
