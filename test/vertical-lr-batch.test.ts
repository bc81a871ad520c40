/**
 * The vertical batch step over the in-memory port, with real CKKS: a bank (guest, labels) and a tax bureau (host)
 * on 2,000 enterprises of the UCI hetero split train a few epochs in one process. The encrypted protocol must take
 * the same steps as the same protocol in the clear, and the model it trains must rank defaults.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import { CkksEngine } from '../src/he/engine.js';
import { generateKeys } from '../src/he/key-ceremony.js';
import { VERTICAL_CKKS_PARAMS } from '../src/he/params.js';
import { VerticalGradient } from '../src/he/vertical-gradient.js';
import { createLogger } from '../src/log.js';
import { auc } from '../src/metrics.js';
import { ckksCipher, plaintextCipher, type VerticalCipher } from '../src/vertical/cipher.js';
import { PartyModel } from '../src/vertical/party-model.js';
import { BatchTrainer, guestBatch, hostBatch } from '../src/vertical/lr/batch.js';
import { MemoryFederation } from '../src/vertical/lr/memory-port.js';
import { ckksOpener, plaintextOpener, type Opener } from '../src/vertical/lr/opener.js';
import { uciAligned, UCI_GUEST_FEATURES, UCI_HOST_FEATURES, verticalJob } from './helpers/vertical.js';

const log = createLogger('test', 'silent');
const engines: CkksEngine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

const spec = JobSpec.parse(verticalJob({ training: { epochs: 4, batch_size: 256, learning_rate: 0.1 } })) as VerticalJobSpec;

async function train(cipher: VerticalCipher, opener: Opener, epochs: number) {
  const { guest, host, alignment } = await uciAligned(2000);
  const t = spec.training;
  const models = {
    bank: new PartyModel(
      guest,
      UCI_GUEST_FEATURES.map((f) => guest.features.indexOf(f)),
      alignment.train,
      t.clip,
      true,
      true,
      t.winsorize,
    ),
    'tax-bureau': new PartyModel(
      host,
      UCI_HOST_FEATURES.map((f) => host.features.indexOf(f)),
      alignment.train,
      t.clip,
      false,
      true,
      t.winsorize,
    ),
  };
  const bank = new BatchTrainer({ role: 'guest', cipher, model: models.bank, training: t, train: alignment.train, labels: { y: guest.y!, classWeights: { negative: 1, positive: 1 } }, log });
  const tax = new BatchTrainer({ role: 'host', cipher, model: models['tax-bureau'], training: t, train: alignment.train, log });
  const federation = new MemoryFederation('bank', ['tax-bureau'], opener, 30_000);
  const batches = Math.ceil(alignment.train.length / t.batch_size);
  let step = 0;
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      for (let batch = 0; batch < batches; batch++) {
        step++;
        await Promise.all([guestBatch(bank, federation.port('bank', step), epoch, batch), hostBatch(tax, federation.port('tax-bureau', step), epoch, batch)]);
      }
    }
  } finally {
    bank.dispose();
    tax.dispose();
    federation.dispose();
  }
  const test = alignment.test;
  const scores = models.bank.scores(test).map((s, i) => s + models['tax-bureau'].scores(test)[i]!);
  return {
    weights: [...models.bank.weights, ...models['tax-bureau'].weights],
    auc: auc(
      Float64Array.from(test, (r) => guest.y![r]!),
      scores,
    ),
  };
}

describe('the vertical batch step over the in-memory port', () => {
  it('trains with real CKKS as it trains in the clear, and the joint model ranks held-out defaults', async () => {
    const arbiter = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
    const parties = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
    engines.push(arbiter, parties);
    const keys = generateKeys(arbiter, 'arbiter');
    const encrypted = await train(ckksCipher(VerticalGradient.of(parties), keys.publicKey, keys.galoisKeys), ckksOpener(arbiter, keys.secretKey), 4);
    const clear = await train(plaintextCipher, plaintextOpener, 4);
    const gap = Math.max(...encrypted.weights.map((w, j) => Math.abs(w - clear.weights[j]!)));
    // CKKS error and the arbiter's flooding noise (σ 2^-22 per gradient value) only.
    expect(gap).toBeLessThan(1e-4);
    expect(Math.max(...clear.weights.map(Math.abs))).toBeGreaterThan(1e-2);
    expect(encrypted.auc).toBeGreaterThan(0.65);
    expect(Math.abs(encrypted.auc - clear.auc)).toBeLessThan(1e-3);
  }, 120_000);
});
