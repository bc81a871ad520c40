/**
 * The batch step of vertical LR (docs/protocol-vertical.md §3): per mini-batch each host sends the guest its
 * encrypted partial scores [[0.25·u]], the guest forms the encrypted fore-gradient [[d]] and sends it back, every
 * party computes its masked gradient Enc(Xᵀd + m), has the arbiter open its class sums, unmasks them and takes an
 * optimiser step. A party's BatchTrainer holds what makes this fast (the fixed batch partition, batches' encoded
 * columns kept across epochs, the next batch prepared while the others finish); none of it changes a result.
 */
import { randomFillSync } from 'node:crypto';
import type { VerticalJobSpec } from '../../config/schemas.js';
import { ErrorCode, FedcreditError, errorMessage } from '../../errors.js';
import type { BatchColumns } from '../../he/vertical-gradient.js';
import type { Logger } from '../../log.js';
import { Rng, seededShuffle } from '../../random.js';
import type { PreparedGradient, VerticalCipher } from '../cipher.js';
import type { PartyModel } from '../party-model.js';
import { Superseded, type PeerPort } from './port.js';

/**
 * What a party keeps of its batches' encoded columns across epochs (16 diagonals of 128 KiB for up to 16 columns:
 * 2 MiB per batch, so 64 batches of 4,096 rows); batches past it are encoded again every epoch.
 */
const KEPT_COLUMNS_BYTES = 128 * 2 ** 20;

/**
 * Encode a gradient's plaintexts one per turn of the event loop until done, so that a message arriving meanwhile
 * waits for one encoding (~0.6 ms) at most; maskedGradient encodes whatever is left when [[d]] comes first.
 */
function encodeAhead(input: PreparedGradient): void {
  if (encoding.has(input)) return;
  encoding.add(input);
  const next = () => {
    try {
      if (input.encodeNext()) setImmediate(next);
    } catch {
      // Only a head start: the job ended (engine gone) or the input is spent. maskedGradient encodes what is missing
      // and reports any real error in its step.
    }
  };
  setImmediate(next);
}
const encoding = new WeakSet<PreparedGradient>();

/**
 * Run a computation in steps with a turn of the event loop between them (see CkksEngine.maskedGradientSteps),
 * stopping (and freeing what the steps hold) as soon as a newer attempt of the step has begun.
 */
async function stepsWithPauses<T>(steps: Generator<void, T, void>, port: PeerPort): Promise<T> {
  try {
    for (;;) {
      const next = steps.next();
      if (next.done) return next.value;
      await new Promise((resolve) => setImmediate(resolve));
      if (!port.current()) throw new Superseded('superseded by a newer attempt');
    }
  } finally {
    steps.return(undefined as never);
  }
}

/** What a party needs for one batch of training besides [[d]]. */
export interface BatchWork {
  epoch: number;
  batch: number;
  rows: Uint32Array;
  /** One mask value per slot, drawn for this batch only. */
  mask: Float64Array;
  input: PreparedGradient;
  /** A host's encrypted partial scores and the weights they were computed with. */
  partial?: { weights: Float64Array; bytes: Uint8Array };
}

/** What a party trains with: its model on the aligned training rows and the job's cipher. */
export interface BatchInputs {
  role: 'guest' | 'host';
  cipher: VerticalCipher;
  model: PartyModel;
  training: VerticalJobSpec['training'];
  /** The aligned training rows (dataset row numbers). */
  train: Uint32Array;
  /** Guest: the label of every dataset row, and the weight of each class (training.class_weight). */
  labels?: { y: ArrayLike<number>; classWeights: { negative: number; positive: number } };
  log: Logger;
}

/** One party's training over the batches of a job, for one model: made when the model is, disposed with it. */
export class BatchTrainer {
  /** The next batch's work, begun at the end of the batch before. */
  private nextBatch?: BatchWork;
  /** The training rows in the order the fixed batch partition cuts them (batchRows). */
  private partition?: Uint32Array;
  private epochOrder?: { epoch: number; order: Uint32Array };
  /** Columns of batches (by id in the partition) kept with their encoded diagonals for later epochs. */
  private readonly keptColumns = new Map<number, BatchColumns>();
  private keptColumnsBytes = 0;
  /** The batch being trained, whose gradient input dispose() must free if the job ends in the middle. */
  private inFlight?: BatchWork;
  private disposed = false;

  constructor(readonly inputs: BatchInputs) {}

  get model(): PartyModel {
    return this.inputs.model;
  }

  /**
   * The training rows of batch `id` of the job's fixed partition: the training rows shuffled once by the seed and
   * cut into batches. Every epoch visits the same batches in an order of its own (batchId), so that a party can
   * keep a batch's encoded columns from one epoch to the next.
   */
  private batchRows(id: number): Uint32Array {
    const { train, training } = this.inputs;
    this.partition ??= seededShuffle(train.length, new Rng(training.seed, 999));
    const size = training.batch_size;
    return this.partition.subarray(id * size, Math.min(train.length, (id + 1) * size)).map((i) => train[i]!);
  }

  /** Which batch of the partition is the `position`-th of `epoch`. */
  private batchId(epoch: number, position: number): number {
    const batches = Math.ceil(this.inputs.train.length / this.inputs.training.batch_size);
    const order = this.epochOrder?.epoch === epoch ? this.epochOrder.order : seededShuffle(batches, new Rng(this.inputs.training.seed, 1000 + epoch));
    this.epochOrder = { epoch, order };
    return order[position]!;
  }

  /** A batch's columns for the cipher: kept from an earlier epoch, or made now and kept while KEPT_COLUMNS_BYTES allows. */
  private batchColumns(id: number, rows: Uint32Array): BatchColumns {
    const kept = this.keptColumns.get(id);
    if (kept) return kept;
    const columns = this.inputs.cipher.batchColumns(this.model.columns(rows));
    if (this.keptColumnsBytes + columns.keptBytes <= KEPT_COLUMNS_BYTES) {
      columns.keep();
      this.keptColumns.set(id, columns);
      this.keptColumnsBytes += columns.keptBytes;
    }
    return columns;
  }

  /** The work for a batch: made ahead at the end of the batch before (prepareNextBatch), or now. */
  private batchWork(epoch: number, batch: number): BatchWork {
    const ready = this.nextBatch;
    this.nextBatch = undefined;
    if (ready && ready.epoch === epoch && ready.batch === batch) return ready;
    ready?.input.dispose();
    const id = this.batchId(epoch, batch);
    const rows = this.batchRows(id);
    const mask = this.drawMask();
    return { epoch, batch, rows, mask, input: this.inputs.cipher.gradientInput(this.batchColumns(id, rows), mask) };
  }

  /** A host's [[0.25·u]] for the batch: the one made ahead if the weights are still those it was made with. */
  private partialOf(work: BatchWork): Uint8Array {
    const weights = this.model.weights;
    const made = work.partial;
    if (made && made.weights.length === weights.length && made.weights.every((w, j) => w === weights[j])) return made.bytes;
    return this.inputs.cipher.encryptPartial(this.model.scores(work.rows).map((s) => 0.25 * s));
  }

  /**
   * Once this batch's step is reported, start on the next batch while the other parties finish theirs: its rows,
   * mask and feature diagonals depend only on this party's data and the seed, and a host's partial scores only on
   * its weights, which are final for the batch now. If the job does something else next (a step is re-run, or
   * training stops), the work is dropped.
   */
  private prepareNextBatch(port: PeerPort, epoch: number, batch: number): void {
    const next = this.batchAfter(epoch, batch);
    if (!next) return;
    const [nextEpoch, nextBatch] = next;
    setImmediate(() => {
      if (!port.current() || this.nextBatch || this.disposed) return;
      const work = this.batchWork(nextEpoch, nextBatch);
      try {
        if (this.inputs.role === 'host') work.partial = { weights: this.model.weights.slice(), bytes: this.partialOf(work) };
      } catch (err) {
        // A head start only: the batch itself redoes this and reports the error in its step.
        work.input.dispose();
        this.inputs.log.debug({ err: errorMessage(err) }, 'could not prepare the next batch ahead');
        return;
      }
      this.nextBatch = work;
      encodeAhead(work.input);
    });
  }

  /** The (epoch, batch) that training visits after this one, if any. */
  private batchAfter(epoch: number, batch: number): [number, number] | undefined {
    const batches = Math.ceil(this.inputs.train.length / this.inputs.training.batch_size);
    const next: [number, number] = batch + 1 < batches ? [epoch, batch + 1] : [epoch + 1, 0];
    return next[0] > this.inputs.training.epochs ? undefined : next;
  }

  /**
   * One independent mask per slot, uniform in ±2^20 (53 random bits each): the arbiter decrypts every slot, each a
   * partial sum of X·d below 2^-4, hidden up to 2^-25 (docs/protocol-vertical.md, "What the arbiter decrypts").
   */
  private drawMask(): Float64Array {
    const cipher = this.inputs.cipher;
    const random = new Uint32Array(2 * cipher.slots);
    randomFillSync(random);
    const mask = new Float64Array(cipher.slots);
    for (let i = 0; i < mask.length; i++) {
      const uniform = (random[2 * i]! * 2 ** 21 + (random[2 * i + 1]! >>> 11)) / 2 ** 53; // [0, 1)
      mask[i] = (2 * uniform - 1) * cipher.maskMagnitude;
    }
    return mask;
  }

  /**
   * One batch at this party: its role's exchange for [[d]], then the masked gradient, opened by the arbiter and
   * unmasked here, and the optimiser step.
   */
  async run(port: PeerPort, epoch: number, batch: number, exchange: (work: BatchWork) => Promise<Uint8Array>): Promise<void> {
    const { cipher, training } = this.inputs;
    const work = this.batchWork(epoch, batch);
    const { input } = work;
    let gradient: Float64Array;
    this.inFlight = work;
    try {
      const fore = await exchange(work);
      const masked = await stepsWithPauses(cipher.maskedGradient(fore, input), port);
      input.dispose();
      const count = this.model.weights.length;
      // Xᵀd for this party's columns: the arbiter's class sums of z + m, less the same sums of m.
      const values = await port.openGradient(masked, count);
      if (values.length !== count) throw new FedcreditError(ErrorCode.PROTOCOL, `the arbiter returned ${values.length} values for ${count} columns`, 'restart the job');
      gradient = cipher.unmask(values, work.mask);
    } finally {
      input.dispose();
      this.inFlight = undefined;
    }
    this.model.step(gradient, epoch - 1, { optimizer: training.optimizer, learningRate: training.learning_rate, lrDecay: training.lr_decay, l2: training.l2 });
    this.prepareNextBatch(port, epoch, batch);
  }

  /** The host sends [[0.25·u]] and receives [[d]]. */
  async hostExchange(port: PeerPort, work: BatchWork): Promise<Uint8Array> {
    const { cipher } = this.inputs;
    await port.send(port.guest, 'train.partial', this.partialOf(work));
    // The gradient's plaintexts depend only on this party's columns: encoded while the guest forms [[d]]. So does
    // the costly part of the next batch's encryption, which needs no weights yet.
    encodeAhead(work.input);
    if (this.batchAfter(work.epoch, work.batch)) {
      setImmediate(() => {
        try {
          if (!this.disposed) cipher.prepareEncryption();
        } catch (err) {
          // A head start only: the next batch's encryption does all of it and reports any error in its step.
          this.inputs.log.debug({ err: errorMessage(err) }, 'could not prepare the next encryption ahead');
        }
      });
    }
    return port.receive(port.guest, 'train.fore_gradient');
  }

  /** The guest forms [[d]] = weights ⊙ (Σ [[0.25·u_h]]) + weights ⊙ (0.25·u_g + 0.5 − y) and sends it to every host. */
  async guestExchange(port: PeerPort, work: BatchWork): Promise<Uint8Array> {
    const { cipher } = this.inputs;
    const { y, classWeights } = this.inputs.labels!;
    const { rows } = work;
    encodeAhead(work.input);
    const partials = await Promise.all(port.hosts.map((h) => port.receive(h, 'train.partial')));
    const c = Float64Array.from(rows, (r) => (y[r] === 1 ? classWeights.positive : classWeights.negative));
    const total = c.reduce((s, v) => s + v, 0);
    const ug = this.model.scores(rows);
    const weights = c.map((v) => v / total);
    const offset = weights.map((w, i) => w * (0.25 * ug[i]! + 0.5 - y[rows[i]!]!));
    const fore = cipher.foreGradient(partials, weights, offset);
    await Promise.all(port.hosts.map((h) => port.send(h, 'train.fore_gradient', fore)));
    return fore;
  }

  /** Training is over (or the model is replaced): free the batches' encoded columns and a batch made ahead. */
  release(): void {
    this.nextBatch?.input.dispose();
    this.nextBatch = undefined;
    for (const columns of this.keptColumns.values()) columns.dispose();
    this.keptColumns.clear();
    this.keptColumnsBytes = 0;
  }

  dispose(): void {
    this.disposed = true;
    this.release();
    this.inFlight?.input.dispose();
  }
}

/** The guest's side of one batch. */
export const guestBatch = (trainer: BatchTrainer, port: PeerPort, epoch: number, batch: number): Promise<void> => trainer.run(port, epoch, batch, (work) => trainer.guestExchange(port, work));
/** A host's side of one batch. */
export const hostBatch = (trainer: BatchTrainer, port: PeerPort, epoch: number, batch: number): Promise<void> => trainer.run(port, epoch, batch, (work) => trainer.hostExchange(port, work));
