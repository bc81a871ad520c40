/**
 * The product's first promise, on real data and real processes: three data owners train one model over loopback
 * gRPC with CKKS-encrypted updates, and it is as good as a model trained on the pooled rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { HOMO_PARTIES, TestFederation, UCI, UCI_FEATURES, horizontalJob, pooledUciBaseline, uciHomoSpec } from './helpers/federation.js';
import { toFloat32 } from '../src/fl/vector-codec.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];
const files = HOMO_PARTIES.map((p) => join(UCI, `fate_default_credit_homo_${p}.csv`));

describe('horizontal federation of three UCI default-credit owners (real processes, loopback gRPC)', () => {
  let fed: TestFederation;

  beforeAll(async () => {
    fed = await TestFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(files[i]!) })));
  });
  afterAll(async () => {
    await fed?.stop();
  });

  it('CKKS federation matches the pooled model within 0.005 AUC and the plaintext federation within 1e-4 in every weight', async () => {
    const job = horizontalJob({ participants: NAMES });
    const ckks = await fed.run(job);
    expect(ckks.last.state, ckks.last.message).toBe('succeeded');
    const plain = await fed.run(horizontalJob({ participants: NAMES, encryption: { scheme: 'plaintext' } }));
    expect(plain.last.state, plain.last.message).toBe('succeeded');

    // Each run really used the scheme it claims: the key ceremony happened only under CKKS.
    expect(ckks.events.some((e) => e.stage === 'keys' && e.message.includes('CKKS keys in place'))).toBe(true);
    expect(plain.events.some((e) => e.stage === 'keys' && e.message.includes('plaintext mode'))).toBe(true);

    const ckksFiles = await ckks.client.downloadModel(ckks.jobId);
    const plainFiles = await plain.client.downloadModel(plain.jobId);
    ckks.client.close();
    plain.client.close();
    const wCkks = toFloat32(ckksFiles['weights.bin']!);
    const wPlain = toFloat32(plainFiles['weights.bin']!);
    expect(wCkks.length).toBe(UCI_FEATURES.length + 1);
    const maxDiff = wCkks.reduce((m, w, i) => Math.max(m, Math.abs(w - wPlain[i]!)), 0);
    console.log(`max |w_ckks - w_plaintext| = ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(1e-4);

    const { pooled, scoreModel } = await pooledUciBaseline(job);
    const federated = await scoreModel(ckksFiles);
    console.log(`test AUC: federated (CKKS) ${federated.auc.toFixed(4)}, pooled ${pooled.auc.toFixed(4)}; KS ${federated.ks.toFixed(4)} vs ${pooled.ks.toFixed(4)}`);
    expect(pooled.auc).toBeGreaterThan(0.7);
    expect(Math.abs(federated.auc - pooled.auc)).toBeLessThanOrEqual(0.005);
  });

  it('reports round progress: every round names its participants, loss and validation AUC', async () => {
    const run = await fed.run(horizontalJob({ participants: NAMES, training: { rounds: 3 } }));
    run.client.close();
    const rounds = run.events.filter((e) => e.progress).map((e) => e.progress!);
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const r of rounds) {
      expect(r.participants.sort()).toEqual([...NAMES].sort());
      expect(r.trainLoss).toBeGreaterThan(0);
      expect(r.validationAuc).toBeGreaterThan(0.6);
    }
  });
});
