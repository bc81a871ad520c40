/**
 * A participant's side of a vertical training job (docs/protocol-vertical.md): the PSI alignment, then the steps of
 * src/vertical/lr/ (binning, batches, validation, the chosen epoch, the scorecard, evaluation) run by LrParty over
 * the channel's PeerPort, with what they keep written to the job folder. Party-to-party payloads are sealed to the
 * recipient's per-job X25519 key, so the coordinator relays bytes it cannot open.
 *
 * Steps run one at a time. A step re-issued with a higher attempt (after a party came back) supersedes the running
 * one, whose waits are cancelled; the model is rolled back to where the step began, so a retried step computes
 * exactly what the first attempt would have.
 */
import { ceremonyRestarts, type VerticalJobSpec } from '../src/config/schemas.js';
import type { LoadedDataset } from '../src/data/csv.js';
import type { Logger } from '../src/log.js';
import { CkksEngine } from '../src/he/engine.js';
import { paramsFingerprint, verticalCkksParams } from '../src/he/params.js';
import { verticalCollectiveRotationSteps } from '../src/he/packing.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import { SecretKeyShare } from '../src/he/threshold/secret-key.js';
import { sharesGivenFile } from '../src/he/threshold/shares-given-file.js';
import { collectiveTranscript, verticalKeyDigest, verticalKeysFromSums } from '../src/he/key-ceremony.js';
import { hex } from '../src/bytes.js';
import { gradientLabel, VERTICAL_MAX_FEATURE } from '../src/he/vertical-threshold.js';
import { ARBITER_SHAREHOLDER, GradientShareholder, gradientPeriods } from '../src/vertical/lr/threshold-opener.js';
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import { ThresholdParty } from './threshold-party.js';
import { VerticalGradient } from '../src/he/vertical-gradient.js';
import { ckksCipher, plaintextCipher } from '../src/vertical/cipher.js';
import type { Alignment } from '../src/vertical/party-model.js';
import type { GradientShareRequest, StepRequest, ThresholdCeremony, VerticalSetup } from '../src/wire/messages.js';
import { PartyChannel, type PartyIo, type StepHandler } from './vertical-channel.js';
import type { JobBinding, KeyBinding } from '../src/crypto/key-binding.js';
import type { Progress } from '../src/vertical/lr/state.js';
import { LrParty, type KeptBinning, type LrKeeper } from '../src/vertical/lr/party.js';
import { ALIGNED_PARTS, guestAlign, hostAlign, type AlignInputs } from '../src/vertical/lr/align.js';
import { COLLECTIVE_FILES, JOB_FILES, JobFolder, validationScoresFile } from './job-store.js';
import { exportPrivateKey, importPrivateKey, rawX25519PublicKey, type BoxKeyPair } from '../src/crypto/sealed-box.js';
import { decodeMessage, encodeMessage } from '../src/wire/proto.js';
import type { Scorecard } from '../src/credit/scorecard.js';
import { scorecardToPmml } from '../src/credit/pmml.js';

/** Where a vertical party's rows come from: its ids, streamed for the PSI, and all its rows once aligned. */
export interface PartyData {
  ids(): Iterable<readonly [string, number]>;
  load(): LoadedDataset;
  /** Changes whenever a row would hold another id: aligned rows kept across a restart are valid only if it matches. */
  rowsDigest(): string;
}

export class VerticalParty implements StepHandler {
  /** The job's step runner and messaging: payloads sealed to peers, relayed by the coordinator. */
  readonly channel: PartyChannel;
  private engine?: CkksEngine;
  /** The party's steps after the PSI (src/vertical/lr/party.ts), keeping what they make in the job folder. */
  private readonly lr: LrParty;
  /** Whether the last thing saved is the end of the last step (endStep), with no step begun since. */
  private savedStepEnd = false;
  /** Whether the align step's rows are in the job folder, read when the next step begins (the PSI never loads the rows). */
  private aligned = false;
  /** The job's folder on this node: every file the job keeps. */
  private readonly folder: JobFolder;
  private readonly log: Logger;
  /**
   * Under a collective gradient key (encryption.scheme ckks-threshold): this party's side of the ceremony (none in a
   * job restored after the ceremony), then the keys it computed and its share of the secret key with its rules. The
   * share, the sums that rebuild the keys and the record of every decryption share given are kept in the job folder
   * (COLLECTIVE_FILES, mode 0600) so that the job can be rejoined after a restart; they go when the job ends.
   */
  private collective?: {
    context: ThresholdContext;
    ceremony?: ThresholdParty;
    keys?: { publicKey: Uint8Array; galoisKeys: Uint8Array };
    shareholder?: GradientShareholder;
    /** The ceremony attempt of a key restored from the job folder (no ceremony object then). */
    keyAttempt?: number;
  };
  /**
   * Set once the setup arrived under a collective key: from then on this party encrypts under the key, so it refuses
   * to restart the key ceremony (docs/threshold-ckks.md, "A party lost during the key ceremony").
   */
  private keyInUse = false;

  constructor(
    readonly id: string,
    readonly spec: VerticalJobSpec,
    readonly org: string,
    private readonly source: PartyData,
    readonly features: string[],
    io: PartyIo,
    log: Logger,
    jobDir: string,
    box?: BoxKeyPair,
  ) {
    this.channel = new PartyChannel(id, org, spec.guest, io, log, spec.training.step_timeout_s * 1000, this, box);
    this.folder = new JobFolder(jobDir);
    this.log = log.child({ job: id });
    this.lr = new LrParty({
      jobId: id,
      org,
      spec,
      features,
      data: () => this.data,
      engine: async () => (this.engine ??= await CkksEngine.create(verticalCkksParams(spec.encryption.scheme))),
      keeper: folderKeeper(this.folder, spec, org === spec.guest, (fields, message) => log.info({ job: id, ...fields }, message)),
      log,
    });
    if (!box) this.folder.write(JOB_FILES.boxKey, exportPrivateKey(this.channel.box.privateKey));
  }

  /** Set by the node before the job is accepted (src/crypto/key-binding.ts); absent with --insecure. */
  set binding(binding: JobBinding | undefined) {
    this.channel.binding = binding;
  }

  get box(): BoxKeyPair {
    return this.channel.box;
  }

  /** This party's signed statement that its per-job box key is its own, for its JobAccepted. */
  boxKeyBinding(): KeyBinding | null {
    return this.channel.boxKeyBinding();
  }

  /** The data owner's consent.share_statistics: its feature statistics go into the job's record when the job asks. */
  set shareStatistics(share: boolean) {
    this.lr.shareStatistics = share;
  }

  /** The party's rows in memory: loaded when the first step after the PSI needs them. */
  private get data(): LoadedDataset {
    return this.source.load();
  }

  /**
   * Rebuild a job this node was running when it stopped (crash or restart), from what it kept in the job folder:
   * its per-job key, the job's keys, the aligned ids and the model state around the last step. Stopped after its
   * setup and before its PSI step completed, it keeps nothing of the step and runs it again when the coordinator asks
   * (the step's next attempt, which every party runs from its start). Undefined when the job had not got its box key
   * (it then cannot rejoin).
   */
  static async restore(id: string, spec: VerticalJobSpec, org: string, source: PartyData, features: string[], io: PartyIo, log: Logger, jobDir: string): Promise<VerticalParty | undefined> {
    const folder = new JobFolder(jobDir);
    if (folder.has(JOB_FILES.boxKey) && !folder.has(JOB_FILES.setup)) return await VerticalParty.restoreBeforeSetup(id, spec, org, source, features, io, log, folder);
    const stepped = folder.has(JOB_FILES.alignedIds) && folder.has(JOB_FILES.progress);
    const done = stepped ? undefined : folder.alignedDone();
    // Aligned ids without a record of the step after the PSI: the folder is not one this node leaves; no rejoining.
    if (!folder.has(JOB_FILES.boxKey) || !folder.has(JOB_FILES.setup) || (!done && !stepped && folder.has(JOB_FILES.alignedIds))) return undefined;
    const privateKey = importPrivateKey(folder.read(JOB_FILES.boxKey).toString('utf8'));
    const box = { privateKey, publicKey: rawX25519PublicKey(privateKey) };
    const job = new VerticalParty(id, spec, org, source, features, io, log, jobDir, box);
    if (spec.encryption.scheme === 'ckks-threshold') await job.restoreCollective();
    await job.channel.install(decodeMessage<VerticalSetup>('VerticalSetup', folder.read(JOB_FILES.setup)));
    if (!done && !stepped) {
      folder.removePsi();
      log.info({ job: id }, 'vertical job restored before its PSI step completed; rejoining: the PSI runs again');
      return job;
    }
    if (done) {
      // Stopped between the PSI step and the next: the aligned rows are on disk, valid if the rows are the same.
      if (done.rowsDigest !== source.rowsDigest()) {
        log.warn({ job: id }, 'the data changed since the job aligned its rows; it cannot rejoin');
        job.dispose();
        return undefined;
      }
      job.aligned = true;
      job.channel.resumeAt(done.step, done.attempt);
      log.info({ job: id, step: done.step }, 'vertical job restored after its PSI; rejoining');
      return job;
    }
    const rowOf = new Map(job.data.ids.map((v, r) => [v, r]));
    const parts: Record<string, number[]> = { train: [], validation: [], test: [] };
    for (const line of folder.read(JOB_FILES.alignedIds).toString('utf8').trim().split('\n').slice(1)) {
      const comma = line.lastIndexOf(',');
      const row = rowOf.get(line.slice(0, comma));
      if (row === undefined) {
        // An aligned enterprise no longer in the data: going on would pair this party's rows with its peers' wrongly.
        log.warn({ job: id }, 'the data changed since the job aligned its rows (an aligned enterprise is no longer in it); it cannot rejoin');
        job.dispose();
        return undefined;
      }
      parts[line.slice(comma + 1)]!.push(row);
    }
    job.setAlignment({ train: Uint32Array.from(parts.train!), validation: Uint32Array.from(parts.validation!), test: Uint32Array.from(parts.test!) }, false);
    if (folder.has(JOB_FILES.binning)) job.lr.restoreBinning(folder.readJson<KeptBinning>(JOB_FILES.binning));
    if (folder.has(JOB_FILES.scorecard)) job.lr.restoreScorecard(folder.readJson<Scorecard>(JOB_FILES.scorecard));
    const progress = folder.readJson<Progress>(JOB_FILES.progress);
    job.channel.resumeAt(progress.step, progress.attempt);
    job.lr.loadProgress(progress);
    log.info({ job: id, step: progress.step, attempt: progress.attempt, stepDone: progress.after !== null }, 'vertical job restored from its job folder; rejoining');
    return job;
  }

  /**
   * A job stopped before its setup arrived (nothing encrypted under any key yet): it rejoins with its per-job box key,
   * the one its peers know, and takes the setup when the coordinator sends it again. Under a collective key it was in
   * the key ceremony: if it had reached the ceremony's key step (its share, the keys' sums and their digest
   * all in the folder), the key comes back, checked against the digest it reported: the setup for that key may be on
   * its way, which the coordinator sends again, or the coordinator restarts the ceremony, which wipes it
   * (abandonCeremony). Anything less an abandoned attempt left (a share without the rest) is deleted: it is never
   * revealed or used again.
   */
  private static async restoreBeforeSetup(id: string, spec: VerticalJobSpec, org: string, source: PartyData, features: string[], io: PartyIo, log: Logger, folder: JobFolder): Promise<VerticalParty> {
    const privateKey = importPrivateKey(folder.read(JOB_FILES.boxKey).toString('utf8'));
    const job = new VerticalParty(id, spec, org, source, features, io, log, folder.dir, { privateKey, publicKey: rawX25519PublicKey(privateKey) });
    if (spec.encryption.scheme !== 'ckks-threshold') {
      log.info({ job: id }, 'vertical job restored before its setup arrived; rejoining when the coordinator sends it');
      return job;
    }
    if (Object.values(COLLECTIVE_FILES).every((name) => folder.has(name))) {
      try {
        await job.restoreCollective();
        log.info({ job: id }, 'vertical job restored after its key ceremony, before its setup; rejoining with its share of the collective key');
        return job;
      } catch (err) {
        log.warn({ job: id, err: errorMessage(err) }, 'the collective key kept in the job folder cannot be restored; deleting it');
      }
    }
    const left = Object.values(COLLECTIVE_FILES).filter((name) => folder.has(name));
    for (const name of left) folder.remove(name);
    job.sharesDeleted = left.length > 0;
    log.info({ job: id, deleted: left }, 'vertical job restored during its key ceremony; rejoining when the coordinator restarts the ceremony');
    return job;
  }

  /** Restored during the ceremony with part of a share's files (deleted then): a setup for that key finds none. */
  private sharesDeleted = false;

  /** The job's keys, checked by the channel: kept to rejoin, and the cipher made from them. */
  async install(setup: VerticalSetup): Promise<void> {
    this.folder.write(JOB_FILES.setup, encodeMessage('VerticalSetup', setup));
    if (this.spec.encryption.scheme === 'ckks') {
      this.engine ??= await CkksEngine.create(verticalCkksParams('ckks'));
      this.engine.requireFingerprint(setup.paramsFingerprint, 'the arbiter');
      this.lr.cipher = ckksCipher(VerticalGradient.of(this.engine), setup.ckksPublicKey, setup.galoisKeys);
    } else if (this.spec.encryption.scheme === 'ckks-threshold') {
      const keys = this.collective?.keys;
      if (!keys && this.sharesDeleted)
        throw new FedcreditError(
          ErrorCode.JOB_FAILED,
          `${this.org} restarted after the key ceremony of job ${this.id} and before the job's setup reached it: the share it made was deleted at the restart (nothing was encrypted under it yet), so it cannot use the key the others hold`,
          'resubmit the job; the other parties refuse a new key ceremony once their setup arrived',
        );
      if (!keys)
        throw new FedcreditError(
          ErrorCode.PROTOCOL,
          `the coordinator sent the setup of job ${this.id} before the collective key ceremony was over`,
          'the coordinator deviates from the protocol; tell the federation operator',
        );
      this.keyInUse = true;
      this.engine ??= await CkksEngine.create(verticalCkksParams('ckks-threshold'));
      this.engine.requireFingerprint(setup.paramsFingerprint, 'the arbiter');
      // The keys this party computed itself from every party's revealed shares, never keys handed to it.
      this.lr.cipher = ckksCipher(VerticalGradient.of(this.engine), keys.publicKey, keys.galoisKeys, VERTICAL_MAX_FEATURE);
    } else {
      this.lr.cipher = plaintextCipher;
    }
  }

  /**
   * One step of the collective key ceremony among the arbiter, the guest and every host (ThresholdParty, as in a
   * horizontal job): commit to a bundle of key shares, reveal it, add every party's into the keys.
   */
  async ceremony(m: ThresholdCeremony): Promise<ThresholdCeremony> {
    if (this.spec.encryption.scheme !== 'ckks-threshold')
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `job ${this.id} runs under scheme ${this.spec.encryption.scheme}, not ckks-threshold`,
        'the coordinator sent a message of another protocol; restart it',
      );
    const attempt = m.attempt ?? 0;
    if (this.collective && this.collective.ceremony?.attempt !== attempt) this.abandonCeremony(attempt, m.step);
    if (!this.collective) {
      if (attempt > ceremonyRestarts(this.spec)) throw this.restartRefused(attempt, `the job allows at most ${ceremonyRestarts(this.spec)} restarts (encryption.ceremony_restarts)`);
      const { context, params, shareholders, steps } = await this.collectiveSetting();
      const vertical = { steps, arbiter: ARBITER_SHAREHOLDER };
      this.collective = {
        context,
        ceremony: new ThresholdParty(this.id, this.org, shareholders, context, paramsFingerprint(params), () => this.channel.binding, shareholders.length, undefined, vertical, {}, attempt),
      };
    }
    // abandonCeremony refuses a job whose key is in place (no ceremony left); any other has its attempt's ceremony.
    const c = this.collective;
    const ceremony = c.ceremony!;
    if (m.step === 'commit') this.log.info({ job: this.id, attempt }, "key ceremony: making this party's share of the collective gradient key");
    const { reply, keys } = ceremony.ceremony(m);
    if (keys?.galoisKeys && keys.secretKey && keys.sums) {
      // What rejoins the job after a restart, kept before this party reports the keys: its share, the keys' sums.
      this.folder.write(JOB_FILES.keyShare, keys.secretKey);
      this.folder.write(JOB_FILES.keySums, keys.sums);
      // Beside the record: the collective keys' digest as this party reported it and the ceremony's attempt, which a
      // restart rebuilds the keys under and checks them against.
      const memory = sharesGivenFile(this.folder.path(JOB_FILES.sharesGiven), { keySha256: hex(reply.publicKeySha256), keyAttempt: attempt });
      memory.keep!({ issued: [] });
      c.keys = { publicKey: keys.publicKey, galoisKeys: keys.galoisKeys };
      c.shareholder = new GradientShareholder(c.context, this.org, SecretKeyShare.deserialize(c.context, keys.secretKey), ceremony.parties.length, gradientPeriods(this.spec), { keep: memory.keep });
      keys.secretKey.fill(0);
      this.log.info({ job: this.id }, 'collective gradient key in place; this node holds a share of the secret key (in its job folder, mode 0600, until the job ends), nobody the key');
    }
    return reply;
  }

  private restartRefused(attempt: number, why: string): FedcreditError {
    return new FedcreditError(
      ErrorCode.CEREMONY_RESTART_REFUSED,
      `${this.org} refuses attempt ${attempt} of the key ceremony of job ${this.id}: ${why}`,
      "the coordinator asked for a key ceremony the protocol does not allow; the refusal is in this node's log. Tell the federation operator",
    );
  }

  /**
   * The coordinator restarted the key ceremony (a party, or the coordinator itself, was lost before the key was in place): the share made for
   * the abandoned attempt is wiped and its files deleted, so that the next attempt's share is fresh and no old one is
   * ever revealed or used. Refused once this party has given a decryption share or received the setup (it encrypts
   * under the key from then on: a restart then would give the coordinator two keys' shares for one ciphertext), for
   * an attempt that is not after the current one, beyond encryption.ceremony_restarts, or at another step than commit.
   */
  private abandonCeremony(attempt: number, step: ThresholdCeremony['step']): void {
    const c = this.collective!;
    const given = c.shareholder?.sharesGiven ?? 0;
    // The attempt this party is at: its ceremony's, or that of the key it restored from its folder before its setup.
    const current = c.ceremony?.attempt ?? c.keyAttempt;
    if (this.keyInUse || given > 0 || current === undefined)
      throw this.restartRefused(attempt, `the collective key is in use (${given > 0 ? `${given} decryption shares given under it` : 'its setup arrived: this node encrypts under it'})`);
    if (attempt <= current) throw this.restartRefused(attempt, `it is at attempt ${current} already`);
    if (attempt > ceremonyRestarts(this.spec)) throw this.restartRefused(attempt, `the job allows at most ${ceremonyRestarts(this.spec)} restarts (encryption.ceremony_restarts)`);
    if (step !== 'commit') throw this.restartRefused(attempt, `a restarted ceremony begins with commit, not ${step}`);
    c.ceremony?.forget();
    c.shareholder?.forget();
    for (const name of Object.values(COLLECTIVE_FILES)) this.folder.remove(name);
    c.context.dispose();
    this.collective = undefined;
    this.log.warn(
      { job: this.id, attempt, abandoned: current },
      'key ceremony restarted by the coordinator (a party or the coordinator was lost before the key was in place): the share of the abandoned attempt is wiped and its files deleted',
    );
  }

  /** The collective key's parameters, SEAL context, shareholders in the transcript's order and rotation steps. */
  private async collectiveSetting() {
    const params = verticalCkksParams('ckks-threshold');
    const context = await ThresholdContext.create(params);
    const shareholders = [ARBITER_SHAREHOLDER, this.spec.guest, ...this.spec.hosts];
    return { params, context, shareholders, steps: verticalCollectiveRotationSteps(context.degree / 2) };
  }

  /**
   * After a restart: the share, the collective keys rebuilt from their sums and checked against the digest this
   * party reported in the ceremony, and the record of every share given before (so none is given twice).
   */
  private async restoreCollective(): Promise<void> {
    const missing = Object.values(COLLECTIVE_FILES).filter((name) => !this.folder.has(name));
    if (missing.length > 0) throw new Error(`the job's collective key is not in its folder (${missing.join(', ')} missing)`);
    const { context, params, shareholders, steps } = await this.collectiveSetting();
    try {
      const memory = sharesGivenFile(this.folder.path(JOB_FILES.sharesGiven));
      const kept = memory.given;
      if (typeof kept?.keySha256 !== 'string') throw new Error(`${this.folder.path(JOB_FILES.sharesGiven)} does not name the collective key's digest`);
      // The key's ceremony attempt (0 unless the coordinator restarted the ceremony) names its transcript.
      const attempt = typeof kept.keyAttempt === 'number' ? kept.keyAttempt : 0;
      const transcript = collectiveTranscript(this.id, shareholders, paramsFingerprint(params), 'vertical', attempt);
      const began = Date.now();
      const keys = verticalKeysFromSums(context, transcript, steps, this.folder.read(JOB_FILES.keySums), this.folder.path(JOB_FILES.keySums));
      if (hex(verticalKeyDigest(keys)) !== kept.keySha256) throw new Error(`the collective keys rebuilt from ${this.folder.path(JOB_FILES.keySums)} are not those of the ceremony`);
      const secret = SecretKeyShare.deserialize(context, this.folder.read(JOB_FILES.keyShare));
      const shareholder = new GradientShareholder(context, this.org, secret, shareholders.length, gradientPeriods(this.spec), memory);
      this.collective = { context, keys, shareholder, keyAttempt: attempt };
      this.log.info({ job: this.id, sharesGiven: kept.issued.length, keysRebuiltMs: Date.now() - began }, 'collective gradient key share restored from the job folder');
    } catch (err) {
      context.dispose();
      throw err;
    }
  }

  sendingGradient(step: number, attempt: number, masked: Uint8Array): void {
    this.collective?.shareholder?.sent(gradientLabel(this.id, step, attempt, this.org), masked);
  }

  /**
   * This party's decryption share of a party's masked gradient (GradientShareholder's rules), under the label it
   * derives itself from the job, the step, the attempt and the party: a share is never given under a label the
   * coordinator made up.
   */
  gradientShare(step: number, request: GradientShareRequest): Uint8Array {
    const holder = this.collective?.shareholder;
    if (!holder)
      throw new FedcreditError(
        ErrorCode.DECRYPTION_REFUSED,
        `${this.org} holds no share of a collective key in job ${this.id}`,
        'the coordinator asked before the key ceremony was over; it deviates from the protocol',
      );
    if (![this.spec.guest, ...this.spec.hosts].includes(request.party))
      throw new FedcreditError(
        ErrorCode.DECRYPTION_REFUSED,
        `${request.party} is not a party of job ${this.id}: ${this.org} gives no share for its "gradient"`,
        'the coordinator deviates from the protocol; tell the federation operator',
      );
    return holder.share({ party: request.party, purpose: gradientLabel(this.id, step, request.attempt, request.party), masked: request.ciphertext });
  }

  beginStep(_step: number, retry: boolean, kind: string): void {
    const aligned = kind !== 'psi' && this.aligned;
    if (aligned) this.loadAlignment();
    this.lr.beginStep(retry);
    // The file already holds the state a new step starts from when the step before saved its end and nothing
    // happened since: a node restarted now rejoins from there, as it would from a save made here.
    if (retry || aligned || !this.savedStepEnd) this.saveProgress(false);
    this.savedStepEnd = false;
    // Only now that the job can rejoin from its own record are the PSI's files no longer needed.
    if (aligned) this.folder.removePsi();
  }

  endStep(): void {
    this.saveProgress(true);
    this.savedStepEnd = true;
  }

  /** The state around the current step (src/vertical/lr/state.ts), saved for a restart. */
  private saveProgress(done: boolean): void {
    const progress = this.lr.progress(this.channel.running, done);
    if (progress) this.folder.write(JOB_FILES.progress, JSON.stringify(progress));
  }

  stateDigest(): Uint8Array {
    return this.lr.digest();
  }

  async execute(step: number, req: StepRequest): Promise<Record<string, unknown>> {
    if (req.step === 'psi') return this.psi(step, req.attempt);
    return this.lr.run(req, this.channel.port(step, req.attempt));
  }

  /** The align step (src/vertical/lr/align.ts): its rows stay in the job folder until the next step begins. */
  private async psi(step: number, attempt: number): Promise<Record<string, unknown>> {
    const report = await alignStep(this.channel, this.folder, this.source, this.spec, this.log, step, attempt);
    this.aligned = true;
    return report;
  }

  /** The aligned rows the align step left in the job folder. */
  private loadAlignment(): void {
    const alignment = readAlignment(this.folder);
    this.aligned = false;
    this.setAlignment(alignment);
  }

  private setAlignment(a: Alignment, record = true): void {
    // The data owner's own record of which of its enterprises the job uses (it stays on this node).
    if (record) writeAlignedIds(this.folder, this.data.ids, a);
    this.lr.setAlignment(a);
  }

  /** The job ended (the channel has cancelled its waits). */
  dispose(): void {
    this.lr.dispose();
    this.engine?.dispose();
    // The key share goes with the job.
    this.collective?.shareholder?.forget();
    this.collective?.context.dispose();
    this.collective = undefined;
  }
}

/**
 * A vertical training job's align step at a party (src/vertical/lr/align.ts), over the channel's port: the aligned
 * rows go to the job folder (readAlignment), with the digest of the party's rows they are valid for.
 */
export async function alignStep(
  channel: PartyChannel,
  folder: JobFolder,
  source: PartyData,
  spec: { alignment: { id_format: 'uscc' | 'any'; min_intersection: number }; training: AlignInputs['split'] },
  log: Logger,
  step: number,
  attempt: number,
): Promise<Record<string, unknown>> {
  const port = channel.port(step, attempt);
  const inputs: AlignInputs = {
    ids: source.ids,
    format: spec.alignment.id_format,
    key: channel.psiKey,
    salt: channel.psiSalt,
    store: folder,
    attempt,
    minIntersection: spec.alignment.min_intersection,
    split: spec.training,
    log,
  };
  const report = channel.role === 'host' ? await hostAlign(port, inputs) : await guestAlign(port, inputs);
  folder.writeAlignedDone({ step, attempt, rowsDigest: source.rowsDigest() });
  return report;
}

/** The aligned rows the align step left in the job folder. */
export function readAlignment(folder: JobFolder): Alignment {
  const [train, validation, test] = ALIGNED_PARTS.map((part) => folder.readAlignedRows(part)) as [Uint32Array, Uint32Array, Uint32Array];
  return { train, validation, test };
}

/** The data owner's own record of which of its enterprises a job uses, by part (it stays on this node). */
export function writeAlignedIds(folder: JobFolder, ids: readonly string[], a: Alignment): void {
  const lines = (['train', 'validation', 'test'] as const).flatMap((part) => Array.from(a[part], (r) => `${ids[r]},${part}`));
  folder.write(JOB_FILES.alignedIds, `id,part\n${lines.join('\n')}\n`);
}

/** What the party's steps keep, as files in its job folder (names in JOB_FILES; each written whole, mode 0600). */
function folderKeeper(folder: JobFolder, spec: VerticalJobSpec, guest: boolean, info: (fields: Record<string, unknown>, message: string) => void): LrKeeper {
  const json = (value: unknown) => JSON.stringify(value, null, 2);
  return {
    statistics: (statistics) => folder.write(JOB_FILES.statistics, json(statistics)),
    binning: (kept) => folder.write(JOB_FILES.binning, json(kept)),
    validationScores: (epoch, z) => folder.write(validationScoresFile(epoch), new Uint8Array(z.buffer, z.byteOffset, z.byteLength)),
    keptValidationScores(epoch) {
      const bytes = folder.read(validationScoresFile(epoch));
      return new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    },
    modelPart(part) {
      folder.write(JOB_FILES.modelPart, json(part));
      // A host's scorecard (its bins' bounds, WOE and points) goes to the guest: the log must not say that nothing does.
      const kept =
        spec.scorecard && !guest
          ? "model part kept (its weights never leave this node; the job's scorecard sends the guest each feature's bin bounds, WOE and points)"
          : 'model part kept (it never leaves this node)';
      info({ epoch: part.epoch, file: folder.path(JOB_FILES.modelPart) }, kept);
    },
    scorecardPart: (part) => folder.write(JOB_FILES.scorecardPart, json(part)),
    scorecard(card, text, hosts) {
      folder.write(JOB_FILES.scorecard, text);
      folder.write(JOB_FILES.scorecardPmml, scorecardToPmml(card, { modelName: spec.name, reasonCodes: spec.scorecard!.reason_codes, notHeldParties: [...hosts] }));
      info({ file: folder.path(JOB_FILES.scorecardPmml) }, 'scorecard written (JSON and PMML)');
    },
    testScores: (csv) => folder.write(JOB_FILES.testScores, csv),
    modelReport: (report) => folder.write(JOB_FILES.modelReport, json(report)),
  };
}
