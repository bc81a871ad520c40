/**
 * A whole vertical LR job in one process over the in-memory port, with real CKKS: a bank (guest, labels and 13
 * columns) and two hosts holding five columns each of the UCI hetero split, each party bringing its own 4,000 to
 * 4,500 enterprises to a real PSI, with binning and a scorecard. The align step must find exactly the enterprises all
 * three hold; the encrypted job must rank held-out defaults, match the same job in the clear, and leave every party
 * the records a participant keeps.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTestScores } from '../src/credit/test-scores.js';
import { MODEL_REPORT_FILE, TEST_SCORES_FILE } from '../src/paths.js';
import { loadJobReport } from '../src/report/job-report.js';
import { JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import { CkksEngine } from '../src/he/engine.js';
import { generateKeys } from '../src/he/key-ceremony.js';
import { VERTICAL_CKKS_PARAMS } from '../src/he/params.js';
import { VerticalGradient } from '../src/he/vertical-gradient.js';
import { ckksCipher, plaintextCipher } from '../src/vertical/cipher.js';
import { modelPartDigest } from '../src/vertical/party-model.js';
import { ckksOpener, plaintextOpener } from '../src/vertical/lr/opener.js';
import { createLogger } from '../src/log.js';
import { LrParty } from '../src/vertical/lr/party.js';
import { MemoryFederation } from '../src/vertical/lr/memory-port.js';
import { memoryKeeper, runMemoryVerticalJob, type MemoryKept, uciAligned, uciDatasets, UCI_GUEST_FEATURES, UCI_HOST_FEATURES, verticalJob, type MemoryParty } from './helpers/vertical.js';

const engines: CkksEngine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));
const engine = async () => {
  const e = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  engines.push(e);
  return e;
};

describe('a vertical LR job in one process (guest + two hosts + arbiter, real CKKS)', () => {
  it('trains, scores and keeps what a participant keeps, as the same job does in the clear', async () => {
    const spec = JobSpec.parse({
      ...verticalJob({ hosts: ['tax-bureau', 'power'], training: { epochs: 4, batch_size: 512, learning_rate: 0.1, patience: 2 } }),
      binning: {},
      scorecard: {},
    }) as VerticalJobSpec;
    const [guest, hostData] = await uciDatasets();
    // The hosts' columns as h0..h9: a scorecard names each feature once across the parties.
    const host = { ...hostData, features: hostData.features.map((f) => f.replace(/^x/, 'h')) };
    const hostFeatures = UCI_HOST_FEATURES.map((f) => f.replace(/^x/, 'h'));
    // Each party brings its own enterprises to the PSI; those of rows 300 to 3999 are held by all three.
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
    const parties: MemoryParty[] = [
      { org: 'bank', data: guest, features: UCI_GUEST_FEATURES, engine: await engine(), rows: range(0, 4000) },
      { org: 'tax-bureau', data: host, features: hostFeatures.slice(0, 5), engine: await engine(), rows: range(300, 4300) },
      { org: 'power', data: host, features: hostFeatures.slice(5), engine: await engine(), rows: range(0, 4500) },
    ];
    const arbiter = await engine();
    const keys = generateKeys(arbiter, 'arbiter');
    const encrypted = await runMemoryVerticalJob(spec, parties, {
      cipher: (p) => ckksCipher(VerticalGradient.of(p.engine), keys.publicKey, keys.galoisKeys),
      opener: ckksOpener(arbiter, keys.secretKey),
    });
    const clear = await runMemoryVerticalJob(spec, parties, { cipher: () => plaintextCipher, opener: plaintextOpener });

    const auc = Number(encrypted.evaluation.test_auc);
    console.log(`[in-memory vertical job] test AUC ${auc.toFixed(4)} (clear ${Number(clear.evaluation.test_auc).toFixed(4)}), best epoch ${encrypted.best}, ${encrypted.reports.length} steps`);
    expect(auc).toBeGreaterThan(0.7);
    expect(Math.abs(auc - Number(clear.evaluation.test_auc))).toBeLessThan(2e-3);
    expect(encrypted.best).toBe(clear.best);

    // The align step: every party aligned the 3,700 shared enterprises, and each host's rows line up with the
    // guest's in the shared order (the UCI split's parties hold the same ids in the same rows).
    const psi = encrypted.reports.find((r) => r.name === 'psi')!;
    for (const p of parties) expect(psi.reports.get(p.org)!.intersection).toBe(3700);
    const alignment = encrypted.alignments.get('bank')!;
    expect(alignment.train.length + alignment.validation.length + alignment.test.length).toBe(3700);
    expect(Math.min(...alignment.train, ...alignment.validation, ...alignment.test)).toBe(300);
    for (const h of ['tax-bureau', 'power']) {
      const a = encrypted.alignments.get(h)!;
      for (const part of ['train', 'validation', 'test'] as const) expect(Array.from(a[part])).toEqual(Array.from(alignment[part]));
    }

    // Every party keeps its model part, committed to in its finalize report; the guest its calibration.
    const finalize = encrypted.reports.find((r) => r.name === 'finalize')!;
    for (const p of parties) {
      const part = encrypted.kept.get(p.org)!.modelPart!;
      expect(part.organisation).toBe(p.org);
      expect(finalize.reports.get(p.org)!.part_sha256).toBe(Buffer.from(modelPartDigest(part)).toString('hex'));
    }
    expect(encrypted.kept.get('bank')!.modelPart!.calibration).toBeDefined();
    // The scorecard holds the selected features of all three parties; the model report the IV of every feature.
    const bank = encrypted.kept.get('bank')!;
    const parties_ = new Set(bank.scorecard!.features.map((f) => f.party));
    expect([...parties_].sort()).toEqual(['bank', 'power', 'tax-bureau']);
    expect(bank.modelReport!.iv!.length).toBe(UCI_GUEST_FEATURES.length + UCI_HOST_FEATURES.length);
    // Its held-out scores under the fixed column names, not its data's (`id`, `y`), as `fedcredit report` reads them.
    expect(bank.testScores!.slice(0, bank.testScores!.indexOf('\n'))).toBe('enterprise_id,label,score,pd,points');
    const jobDir = mkdtempSync(join(tmpdir(), 'fedcredit-lr-memory-'));
    try {
      writeFileSync(join(jobDir, TEST_SCORES_FILE), bank.testScores!);
      writeFileSync(join(jobDir, MODEL_REPORT_FILE), JSON.stringify(bank.modelReport));
      const held = readTestScores(join(jobDir, TEST_SCORES_FILE));
      expect(held.ids).toEqual(Array.from(alignment.test, (r) => guest.ids[r]));
      expect(held.labels).toEqual(Array.from(alignment.test, (r) => guest.y![r]));
      const report = loadJobReport(jobDir);
      expect(report.test.labels).toEqual(held.labels);
      expect(report.test.pd).toEqual(held.pd);
      expect(report.test.score).toEqual(held.points!.map(Number));
    } finally {
      rmSync(jobDir, { recursive: true, force: true });
    }
    // Hosts keep no labels' worth of anything: no held-out scores, no report.
    expect(encrypted.kept.get('power')!.testScores).toBeUndefined();
    expect(encrypted.kept.get('power')!.modelReport).toBeUndefined();
  }, 300_000);
});

describe('a vertical step run again at a higher attempt', () => {
  it('starts over from where the step began at every party, so the retry computes what one clean run does', async () => {
    const spec = JobSpec.parse(verticalJob({ training: { epochs: 1, batch_size: 256, learning_rate: 0.1 } })) as VerticalJobSpec;
    const { guest, host, alignment } = await uciAligned(1000);
    const log = createLogger('test', 'silent');
    const keeper = { validationScores: new Map() } as MemoryKept;
    const make = (org: string, data: typeof guest, features: string[]) => {
      const party = new LrParty({ jobId: 'retry', org, spec, features, data: () => data, engine: () => Promise.reject(new Error('no binning here')), keeper: memoryKeeper(keeper), log });
      party.setAlignment(alignment);
      party.cipher = plaintextCipher;
      return party;
    };
    const weights = async (attempts: number, rollBack = true) => {
      const parties = { bank: make('bank', guest, UCI_GUEST_FEATURES), 'tax-bureau': make('tax-bureau', host, UCI_HOST_FEATURES) };
      const federation = new MemoryFederation('bank', ['tax-bureau'], plaintextOpener, 30_000);
      const batch = { step: 'batch', epoch: 1, batch: 0, argsJson: '{}' };
      try {
        // Every attempt runs to its end at both parties, as when the coordinator lost a report and asked again.
        for (let attempt = 0; attempt < attempts; attempt++) {
          await Promise.all(
            Object.entries(parties).map(([org, party]) => {
              party.beginStep(rollBack && attempt > 0);
              return party.run(batch, federation.port(org, 1, attempt));
            }),
          );
        }
        return Object.values(parties).flatMap((p) => p.progress({ step: 1, attempt: attempts - 1 }, true)!.after!.weights);
      } finally {
        Object.values(parties).forEach((p) => p.dispose());
        federation.dispose();
      }
    };
    const once = await weights(1);
    const retried = await weights(3);
    const stacked = await weights(3, false);
    const gap = (a: number[], b: number[]) => Math.max(...a.map((w, j) => Math.abs(w - b[j]!)));
    // Each attempt draws its own masks, so the gradients agree to float64 rounding of the masked sums, not bit for bit.
    expect(gap(once, retried)).toBeLessThan(1e-8);
    // Without the rollback the attempts' steps would pile up.
    expect(gap(once, stacked)).toBeGreaterThan(1e-3);
  }, 60_000);

  it('a job whose every step after the PSI runs twice, the first attempt to its end at every party, publishes the model of a clean run', async () => {
    // Five mini-batches an epoch, so no gradient is zero and the masks' float64 rounding (~1e-9) stays that small;
    // patience 1, so that a validation counted twice would stop training early.
    const spec = JobSpec.parse(verticalJob({ training: { epochs: 6, batch_size: 256, learning_rate: 0.1, patience: 1 } })) as VerticalJobSpec;
    const [guest, host] = await uciDatasets();
    const rows = Array.from({ length: 1500 }, (_, r) => r);
    // The job has no binning step, the only one a party's own engine serves.
    const binningEngine = await engine();
    const parties: MemoryParty[] = [
      { org: 'bank', data: guest, features: UCI_GUEST_FEATURES, engine: binningEngine, rows },
      { org: 'tax-bureau', data: host, features: UCI_HOST_FEATURES, engine: binningEngine, rows },
    ];
    const keys = { cipher: () => plaintextCipher, opener: plaintextOpener };
    const clean = await runMemoryVerticalJob(spec, parties, keys);
    const twice = await runMemoryVerticalJob(spec, parties, keys, () => true);
    const steps = (job: typeof clean) => job.reports.map((r) => `${r.name} ${r.epoch}`);
    const curve = clean.kept.get('bank')!.modelReport!.validationAuc.map((p) => p.auc.toFixed(4));
    console.log(`[every step twice] validation AUC by epoch ${curve.join(' ')}, best epoch ${clean.best}`);
    expect(steps(twice)).toEqual(steps(clean));
    expect(twice.best).toBe(clean.best);
    const weights = (job: typeof clean) => ['bank', 'tax-bureau'].flatMap((org) => [...job.kept.get(org)!.modelPart!.weights, job.kept.get(org)!.modelPart!.intercept ?? 0]);
    const gap = Math.max(...weights(clean).map((w, j) => Math.abs(w - weights(twice)[j]!)));
    console.log(`[every step twice] max |w_twice - w_clean| = ${gap.toExponential(2)}`);
    expect(gap).toBeLessThan(1e-7);
    // To 3 decimals: weights 1e-8 apart may swap two held-out enterprises whose scores are closer still.
    expect(Number(twice.evaluation.test_auc)).toBeCloseTo(Number(clean.evaluation.test_auc), 3);
    expect(twice.kept.get('bank')!.modelPart!.calibration!.a).toBeCloseTo(clean.kept.get('bank')!.modelPart!.calibration!.a, 6);
  }, 120_000);
});
