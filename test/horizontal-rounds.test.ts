/**
 * A participant takes part only in the rounds its job has, each from the model the last one produced: a coordinator that asks for an update outside rounds
 * 1..training.rounds, or for the evaluation in another round than rounds + 1, is refused, naming the rounds, before
 * the participant computes anything (each extra round would hand out another contribution and another aggregate).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { HorizontalJob } from '../participant/horizontal-job.js';
import { HorizontalJobSpec } from '../src/config/schemas.js';
import { ingestSource } from '../src/data/source.js';
import { loadTf } from '../src/model/tf.js';
import type { CoordinatorMessage, SumPurpose } from '../src/wire/messages.js';
import { applyAggregate } from '../src/fl/fedavg.js';
import { float32Bytes, toFloat64 } from '../src/fl/vector-codec.js';
import { weightsDigest } from '../src/model/artifact.js';
import { horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { writeUciSlices } from './helpers/memory-horizontal.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];

describe('a horizontal participant asked for rounds its job does not have', () => {
  let dir: string | undefined;
  let job: HorizontalJob | undefined;

  beforeAll(async () => {
    const slices = await writeUciSlices(NAMES, 300);
    dir = slices.dir;
    const data = uciHomoSpec(slices.files[0]!);
    const rows = await ingestSource(data, { baseDir: dir, columns: data.features.map((f) => f.name), dir: join(dir, 'rows'), scatter: true });
    const spec = HorizontalJobSpec.parse(horizontalJob({ participants: NAMES, training: { rounds: 3 }, encryption: { scheme: 'plaintext' } }));
    const { tf } = await loadTf();
    job = await HorizontalJob.open('job-rounds', spec, rows.features, { organisation: 'bank-a', rows, tf, log: pino({ level: 'silent' }), saveKeys: () => undefined, sharesGiven: () => ({}) });
  });
  afterAll(async () => {
    job?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const ask = (purpose: SumPurpose, round: number): CoordinatorMessage => ({
    jobId: 'job-rounds',
    round,
    body: 'contributionRequest',
    contributionRequest: { purpose, globalWeights: new Uint8Array(), globalWeightsSha256: new Uint8Array(), preprocessing: null, deadlineUnixMs: Date.now() + 60_000, contributors: [], attempt: 0 },
  });

  it('refuses an update before round 1 or after the last round, and an evaluation in any round but rounds + 1', async () => {
    const refusal = /FC_PROTOCOL|the job trains in rounds 1 to 3 and evaluates in round 4/;
    await expect(job!.handle(ask('update', 4))).rejects.toThrow(/asked for an update contribution in round 4; the job trains in rounds 1 to 3 and evaluates in round 4/);
    await expect(job!.handle(ask('update', 0))).rejects.toThrow(refusal);
    await expect(job!.handle(ask('evaluation', 2))).rejects.toThrow(/asked for an evaluation contribution in round 2/);
    // Within the rounds the request goes on to the global model's check (here: empty weights with no digest), not this rule.
    await expect(job!.handle(ask('update', 3))).rejects.toThrow(/round 3: global weights do not match their digest/);
    await expect(job!.handle(ask('evaluation', 4))).rejects.toThrow(/round 4: global weights do not match their digest/);
  });

  /** A request to contribute from the given weights, with their digest, as an honest coordinator sends it. */
  const request = (round: number, weights: Float32Array, purpose: SumPurpose = 'update'): CoordinatorMessage => {
    const features = job!.state.features;
    return {
      jobId: 'job-rounds',
      round,
      body: 'contributionRequest',
      contributionRequest: {
        purpose,
        globalWeights: float32Bytes(weights),
        globalWeightsSha256: weightsDigest(weights),
        preprocessing: { features, mean: features.map(() => 0), scale: features.map(() => 1) },
        deadlineUnixMs: Date.now() + 60_000,
        contributors: [],
        attempt: 0,
      },
    };
  };

  it('refuses to start a round from other weights than the last round it opened, with that aggregate applied', async () => {
    const features = job!.state.features;
    const start = new Float32Array(features.length + 1);
    const reply = await job!.handle(request(1, start));
    if (reply?.body !== 'contribution') throw new Error('round 1 gave no contribution');
    // The coordinator opens round 1's aggregate (here: this participant's own contribution) and sends it back.
    const sum = reply.contribution.vector;
    const opened = await job!.handle({ jobId: 'job-rounds', round: 1, body: 'aggregateReady', aggregateReady: { purpose: 'update', sum, contributors: ['bank-a', 'bank-b'] } });
    if (opened?.body !== 'aggregateOpened') throw new Error('round 1 was not opened');
    const next = applyAggregate(start, toFloat64(opened.aggregateOpened.values));
    // A deviating coordinator starts round 2 from weights of its choosing (here: round 1's again), digest and all.
    await expect(job!.handle(request(2, start))).rejects.toThrow("round 2: the coordinator starts the round from weights that are not round 1's global model with its aggregate applied");
    const honest = await job!.handle(request(2, next));
    expect(honest?.body).toBe('contribution');
  });

  it('evaluates (and so publishes) only a model one of its training rounds produced', async () => {
    // Continues the job above: round 2's contribution was sent from round 1's model.
    const features = job!.state.features;
    const models: Float32Array[] = [];
    let global: Float32Array = new Float32Array(features.length + 1);
    for (let round = 1; round <= 3; round++) {
      const reply = await job!.handle(request(round, global));
      if (reply?.body !== 'contribution') throw new Error(`round ${round} gave no contribution`);
      const opened = await job!.handle({
        jobId: 'job-rounds',
        round,
        body: 'aggregateReady',
        aggregateReady: { purpose: 'update', sum: reply.contribution.vector, contributors: ['bank-a', 'bank-b'] },
      });
      if (opened?.body !== 'aggregateOpened') throw new Error(`round ${round} was not opened`);
      global = applyAggregate(global, toFloat64(opened.aggregateOpened.values));
      models.push(global);
    }
    // A deviating coordinator asks for the evaluation of weights no round produced (round 2's, nudged).
    const crafted = Float32Array.from(models[1]!, (w, i) => (i === 0 ? w + 0.5 : w));
    await expect(job!.handle(request(4, crafted, 'evaluation'))).rejects.toThrow("the coordinator asks to evaluate a model that is none of the training rounds' global models");
    // Under the default best_validation_auc any round's model may be the published one: round 2's is evaluated.
    expect((await job!.handle(request(4, models[1]!, 'evaluation')))?.body).toBe('contribution');
  });
});
