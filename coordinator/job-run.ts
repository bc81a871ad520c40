/**
 * One horizontal job, driven by the coordinator: offer -> key ceremony -> federated moments (and statistics) ->
 * binning from secure histograms (optional) -> training rounds -> evaluation from a secure PD histogram -> scorecard
 * (optional) -> publish. The coordinator sees only what it needs: counts, CKKS ciphertexts it adds without any key,
 * and the opened aggregates (sums over all contributors), never an individual participant's vector.
 */
import { join } from 'node:path';
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import { ceremonyRestarts, ckksParamsOf, decryptionThreshold, roundMinimum, type HorizontalJobSpec as JobSpec } from '../src/config/schemas.js';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { collectivePublicKey, collectiveTranscript } from '../src/he/key-ceremony.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import { ThresholdVectors, sumLabel } from '../src/he/threshold-vectors.js';
import { PublicKeyShare } from '../src/he/threshold/ckg.js';
import { VectorCodec, float32Bytes, float64Bytes, type SumIntake } from '../src/fl/vector-codec.js';
import {
  SumAttempt,
  afterShortfall,
  agreeOnOpened,
  canonicalOrder,
  contributorsNeeded,
  decryptionSharesDigest,
  foreignPurpose,
  purposeDecision,
  type OpenedReply,
} from '../src/fl/secure-sum-round.js';
import { hex, sha256 } from '../src/bytes.js';
import { encodeMessage } from '../src/wire/proto.js';
import { aggregateLoss, aggregateSamples, applyAggregate, selectRound } from '../src/fl/fedavg.js';
import { loadTf } from '../src/model/tf.js';
import { buildModel, getFlatWeights, setFlatWeights } from '../src/model/network.js';
import { modelToFiles, packArtifact, weightsDigest, writeArtifact, type ModelMetadata } from '../src/model/artifact.js';
import { preprocessingFromMoments, momentsLength, statisticsFromMoments, type Preprocessing } from '../src/model/preprocess.js';
import { binningRecord, binsFromHistogram, declaredLevels, fineGridsOf, histogramLength, preprocessingFromBins, searchLayouts } from '../src/fl/histogram.js';
import { valueBinCount } from '../src/credit/bin-layout.js';
import { QUANTILE_RANK_ERROR, QuantileSearch, preprocessingFromSearch } from '../src/fl/quantile-search.js';
import { EVALUATION_LENGTH, evaluationFromPdHistogram } from '../src/fl/pd-histogram.js';
import { validationAucText, validationSizeWarning } from '../src/evaluation.js';
import { horizontalScorecard, type HorizontalScorecard } from '../src/model/scorecard.js';
import { ParticipantGone } from './mailbox.js';
import { CeremonyPartyLost, JobBase, type CeremonyAsk, type CeremonyPlan, type CeremonyResume, type CeremonyWait, type JobContext } from './job-base.js';
import type { ContributionRequest, DecryptionShares, EncryptedVector, KeyShareEntry, ParticipantMessage, Recipient, RoundProgress, SumPurpose } from '../src/wire/messages.js';

/** Where a job stands in its ledger, for a coordinator that restarts in the middle of it. */
export interface ResumePoint {
  preprocessing: Preprocessing;
  /** The model after the last closed round; absent when no round had closed (training restarts at round 1). */
  weights?: Float32Array;
  roundsDone: number;
  /** Every closed round's validation AUC, and the model of the round selectRound picks among them so far. */
  history: RoundFigure[];
  selected?: Float32Array;
}

/** A closed round's validation AUC, as `round_closed` records it: what selectRound chooses the published model by. */
export interface RoundFigure {
  round: number;
  validationAuc: number | null;
}

interface SumResult {
  values: Float64Array;
  contributors: string[];
  dropped: string[];
  validation: { rows: number; auc: number; loss: number }[];
}

export class JobRun extends JobBase {
  /** The round whose model is published (training.model_selection). */
  private selectedRound = 0;
  private codec!: VectorCodec;
  private engine?: CkksEngine;
  private collective?: ThresholdVectors;

  constructor(
    id: string,
    readonly spec: JobSpec,
    submitter: string,
    ctx: JobContext,
    private readonly resume?: ResumePoint,
    /** Set when the coordinator restarts during the collective key's ceremony: the restart to run. */
    private readonly ceremonyResume?: CeremonyResume,
  ) {
    super(id, submitter, ctx);
  }

  get kind(): string {
    return this.spec.kind;
  }

  get participants(): string[] {
    return this.spec.participants;
  }

  get rounds(): number {
    return this.spec.training.rounds;
  }

  accepts(kind: ParticipantMessage['body']): boolean {
    return ['jobAccepted', 'jobRefused', 'keysPublished', 'contribution', 'aggregateOpened', 'error', 'thresholdCeremony', 'decryptionShares'].includes(kind);
  }

  /**
   * Run the job from the start, or, after a coordinator restart, from the point its ledger records (`resume`): the
   * participants still hold the keys and their data, so training continues from the last closed round.
   */
  async run(): Promise<void> {
    this.state = 'running';
    const resume = this.resume;
    try {
      if (resume) {
        await this.resumeFrom(resume);
        return;
      }
      if (this.ceremonyResume) await this.restartedInCeremony(this.ceremonyResume);
      else await this.startJob();
      const { preprocessing: fromMoments, moments } = await this.moments();
      const search = needsQuantileSearch(this.spec) ? await this.quantiles(fromMoments.features, moments) : undefined;
      const base = search && this.spec.training.winsorize > 0 ? preprocessingFromSearch(fromMoments.features, search, this.spec.training.standardize, this.spec.training.winsorize) : fromMoments;
      const preprocessing = this.spec.binning ? await this.binning(base, search!) : base;
      await this.record('preprocessing_ready', preprocessingRecord(preprocessing));
      await this.finish(preprocessing, await this.train(preprocessing));
    } catch (err) {
      await this.fail(err);
    } finally {
      this.engine?.dispose();
      this.collective?.context.dispose();
      this.endWatchers();
    }
  }

  /** A new job: recorded, offered to its participants, its keys made. */
  private async startJob(): Promise<void> {
    await this.record('job_submitted', {
      name: this.spec.name,
      kind: this.spec.kind,
      purpose: this.spec.purpose,
      submitter: this.submitter,
      participants: this.spec.participants,
      features: this.spec.features ?? null,
      model: this.spec.model,
      training: this.spec.training,
      encryption: this.spec.encryption,
      statistics: this.spec.statistics,
      binning: this.spec.binning,
      scorecard: this.spec.scorecard,
      evaluation: this.spec.evaluation,
    });
    const lead = await this.offer();
    await this.keyCeremony(lead);
  }

  /**
   * After a coordinator restart during the collective key's ceremony: the participants accepted the job (their box
   * keys were kept then), so no offer; the ceremony starts again from commit with fresh shares from every participant.
   */
  private async restartedInCeremony(resume: CeremonyResume): Promise<void> {
    this.boxKeys = this.keptBoxKeys();
    await this.startCkks();
    await this.resumeCeremony(resume, ceremonyRestarts(this.spec), this.ceremonyWait);
    await this.collectiveKeyCeremony(resume.attempt);
  }

  /** How long a restarted key ceremony waits for every participant: the coordinator's offer timeout (no grace period here). */
  private get ceremonyWait(): CeremonyWait {
    const seconds = this.offerTimeoutMs / 1000;
    return { seconds, setting: "the coordinator's offer_timeout_s", field: 'offer_timeout_s', period: `the coordinator's offer_timeout_s of ${seconds}s` };
  }

  private async resumeFrom(resume: ResumePoint): Promise<void> {
    this.emit('training', `resumed after a coordinator restart: ${resume.roundsDone} of ${this.spec.training.rounds} rounds were recorded`);
    this.log.warn({ job: this.id, roundsDone: resume.roundsDone }, 'resuming the job from its ledger');
    await this.record('job_resumed', { rounds_done: resume.roundsDone, model_sha256: resume.weights ? hex(weightsDigest(resume.weights)) : null });
    if (this.spec.encryption.scheme !== 'plaintext') {
      this.boxKeys = this.keptBoxKeys();
      await this.startCkks();
    } else this.codec = VectorCodec.plaintext();
    // Participants reconnect by themselves (back-off with jitter); give them the offer timeout to be back.
    const deadline = Date.now() + this.offerTimeoutMs;
    await Promise.all(this.participants.map((org) => this.sessions.waitConnected(org, deadline)));
    this.roundsDone = resume.roundsDone;
    await this.finish(resume.preprocessing, await this.train(resume.preprocessing, { weights: resume.weights, firstRound: resume.roundsDone + 1, history: resume.history, selected: resume.selected }));
  }

  private async finish(preprocessing: Preprocessing, weights: Float32Array): Promise<void> {
    const evaluation = await this.evaluate(weights, preprocessing);
    if (evaluation) this.warnOnValidationSize(evaluation);
    const scorecard = this.spec.scorecard ? await this.scorecard(weights, preprocessing) : undefined;
    await this.publish(weights, preprocessing, evaluation, scorecard);
    this.state = 'succeeded';
    this.emit('done', `model published (sha256 ${hex(this.modelSha256).slice(0, 16)}…)`);
    await this.recordForAll('job_ended', { state: 'succeeded', model_sha256: hex(this.modelSha256), rounds: this.roundsDone, message: this.message });
    await this.broadcast({ body: 'jobEnded', jobEnded: { state: 'succeeded', message: 'model published', modelSha256: this.modelSha256 } });
  }

  /** Offer the job to every named participant; all must accept, with the same feature schema. */
  private async offer(): Promise<string> {
    const lead = this.participants[0]!;
    const accepted = await this.collectAcceptances(JSON.stringify(this.spec));
    const leadHash = Buffer.from(accepted[0]!.accepted.schemaHash);
    const boxKeys = new Map<string, Recipient>();
    for (const { org, accepted: a } of accepted) {
      if (!Buffer.from(a.schemaHash).equals(leadHash)) {
        throw new FedcreditError(
          ErrorCode.JOB_INVALID,
          `participant ${org}'s feature schema differs from ${lead}'s (declared: ${this.sessions.declaredFeatures(org).join(', ')})`,
          'horizontal participants must declare the same feature columns with the same types; align their data sections or list `features` in the job',
        );
      }
      boxKeys.set(org, { organisation: org, boxPublicKey: a.boxPublicKey, binding: a.boxKeyBinding });
      await this.record('participant_consent', { participant: org, purpose: this.spec.purpose, train_rows: a.trainRows, validation_rows: a.validationRows });
      await this.recordWithReceipt(org, 0, 'data_bound', {
        participant: org,
        schema_sha256: hex(a.schemaHash),
        rows: a.trainRows + a.validationRows,
        id_set_sha256: hex(a.idSetSha256),
        columns: this.spec.features ?? this.sessions.declaredFeatures(org),
        load_report: a.loadReport,
      });
      this.log.info({ job: this.id, participant: org, trainRows: a.trainRows, validationRows: a.validationRows }, 'participant accepted');
      this.emit('offer', `${org} accepted (${a.trainRows} training rows, ${a.validationRows} validation rows)`);
    }
    this.boxKeys = boxKeys;
    // Every masked sum names them (src/fl/pairwise-mask.ts): kept to resume the job after a restart.
    this.keepBoxKeys(boxKeys);
    return lead;
  }

  /** Each participant's per-job box key with its binding, relayed as it came (the coordinator cannot sign one). */
  private boxKeys = new Map<string, Recipient>();

  /** The lead makes the CKKS keys and seals the secret key to every other participant; we only relay. */
  private async keyCeremony(lead: string): Promise<void> {
    if (this.spec.encryption.scheme === 'plaintext') {
      this.log.warn({ job: this.id }, 'PLAINTEXT MODE: updates cross the wire unencrypted; for comparison and debugging only');
      this.emit('keys', 'plaintext mode: updates are NOT encrypted (comparison/debugging only)');
      this.codec = VectorCodec.plaintext();
      return;
    }
    await this.startCkks();
    if (this.threshold) return this.collectiveKeyCeremony();
    this.emit('keys', `${lead} is generating the CKKS keys`);
    const recipients = this.participants.filter((o) => o !== lead).map((o) => this.boxKeys.get(o)!);
    await this.send(lead, 0, { body: 'keygenRequest', keygenRequest: { recipients } });
    let published: ParticipantMessage;
    try {
      published = await this.mailbox.waitFor(lead, 'keysPublished', 0, Date.now() + this.offerTimeoutMs, () => this.sessions.isConnected(lead));
    } catch (err) {
      throw new FedcreditError(ErrorCode.JOB_FAILED, `key generation failed: ${errorMessage(err)}`, "see the lead participant's log");
    }
    if (published.body !== 'keysPublished') throw new Error('unreachable');
    const keys = published.keysPublished;
    this.engine!.requireFingerprint(keys.paramsFingerprint, lead);
    for (const { organisation } of recipients) {
      const box = keys.sealedSecretKeys.find((k) => k.recipient === organisation);
      if (!box) throw new FedcreditError(ErrorCode.JOB_FAILED, `${lead} did not seal a key for ${organisation}`, 'restart the lead participant');
      await this.send(organisation, 0, {
        body: 'keyDelivery',
        keyDelivery: {
          ckksPublicKey: keys.ckksPublicKey,
          sealedSecretKey: box.sealed,
          paramsFingerprint: keys.paramsFingerprint,
          lead: this.boxKeys.get(lead)!,
          publicKeyBinding: keys.publicKeyBinding,
        },
      });
    }
    await this.record('keys_ready', {
      lead,
      params_fingerprint: hex(keys.paramsFingerprint),
      public_key_sha256: hex(sha256(keys.ckksPublicKey)),
      sealed_for: recipients.map((r) => r.organisation),
    });
    this.emit('keys', `CKKS keys in place (N=${this.spec.encryption.poly_modulus_degree}, ${this.engine!.slotCount} slots per ciphertext); the coordinator holds no secret key`);
  }

  /** Under a collective key (encryption.scheme ckks-threshold): contributions are public-key encryptions. */
  private get threshold(): boolean {
    return this.spec.encryption.scheme === 'ckks-threshold';
  }

  private async startCkks(): Promise<void> {
    this.engine = await CkksEngine.create(ckksParamsOf(this.spec));
    const vectors = new HorizontalVectors(this.engine);
    this.codec = this.threshold ? VectorCodec.ckksCollective(vectors) : VectorCodec.ckks(vectors);
  }

  /**
   * The collective key (docs/threshold-ckks.md): every participant commits to a public-key share (signed), then, once
   * all have committed, reveals it; the coordinator checks each share against its commitment and adds them, and so
   * does every participant, who must arrive at the same key. A share that does not match its commitment fails the
   * job naming its sender, and the ledger records it. The coordinator holds no share.
   *
   * A participant lost during the ceremony (gone, or silent past the deadline; t-of-n: up to the end of the
   * re-sharing) restarts it from the beginning, once it is back within the coordinator's offer_timeout_s and at most
   * encryption.ceremony_restarts times: nothing is encrypted under the key before the first sum, so every participant
   * makes a fresh share under the next attempt's transcript and discards the old one (`key_ceremony_restarted`;
   * docs/threshold-ckks.md, "A party lost during the key ceremony").
   */
  private async collectiveKeyCeremony(firstAttempt = 0): Promise<void> {
    const t = decryptionThreshold(this.spec);
    this.emit('keys', `${this.participants.join(', ')} each make a share of the collective CKKS key; nobody will hold the secret key`);
    const fingerprint = this.engine!.fingerprint;
    const bound = ceremonyRestarts(this.spec);
    const context = await ThresholdContext.create(ckksParamsOf(this.spec));
    try {
      for (let attempt = firstAttempt; ; attempt++) {
        const transcript = collectiveTranscript(this.id, this.participants, fingerprint, 'horizontal', attempt);
        const plan: CeremonyPlan = {
          shareholders: this.participants,
          transcript,
          paramsFingerprint: fingerprint,
          checkShare: (_sender, share) => PublicKeyShare.deserialize(context, share),
          keyDigest: (entries) => sha256(collectivePublicKey(context, transcript, entries)),
          recipients: this.participants.map((o) => this.boxKeys.get(o)!),
        };
        let keyDigest: Uint8Array;
        try {
          const ask = this.ceremonyAsk(plan, (fp, org) => this.engine!.requireFingerprint(fp, org), attempt);
          ({ keyDigest } = await this.commitRevealKey(plan, ask));
          if (t < this.participants.length) await this.reshare(ask, (org, why) => this.ceremonyDeviation(org, why));
        } catch (err) {
          if (!(err instanceof CeremonyPartyLost)) throw err;
          await this.restartCeremony(err, attempt, bound, this.ceremonyWait);
          continue;
        }
        await this.record('collective_key_ready', {
          parties: this.participants,
          params_fingerprint: hex(fingerprint),
          transcript_sha256: hex(sha256(transcript)),
          public_key_sha256: hex(keyDigest),
          ...(t < this.participants.length ? { threshold: t } : {}),
          ...(attempt > 0 ? { attempt } : {}),
        });
        break;
      }
    } finally {
      context.dispose();
    }
    this.emit(
      'keys',
      `collective CKKS key in place (N=${this.spec.encryption.poly_modulus_degree}, scale 2^${this.spec.encryption.scale_bits}); each participant holds a share, nobody the secret key${t < this.participants.length ? `; any ${t} of the ${this.participants.length} participants' shares open a sum` : ''}`,
    );
  }

  /**
   * t-of-n: every participant re-shares its key share by Shamir, one point sealed to each other participant's bound
   * box key (the coordinator relays boxes it cannot open), then each adds the points it received. The ledger records
   * each sender's boxes by digest.
   */
  private async reshare(ask: CeremonyAsk, deviates: (org: string, why: string) => FedcreditError): Promise<void> {
    const boxes = new Map<string, KeyShareEntry[]>(this.participants.map((o) => [o, []]));
    for (const { org, reply } of await ask('reshare', [])) {
      const receivers = reply.parties.map((p) => p.organisation);
      const others = this.participants.filter((o) => o !== org);
      if ([...receivers].sort().join('\n') !== [...others].sort().join('\n')) throw deviates(org, `re-shared its key share to [${receivers.join(', ')}], not to every other participant`);
      for (const p of reply.parties) boxes.get(p.organisation)!.push({ organisation: org, commitment: new Uint8Array(), commitmentBinding: null, share: p.share });
      await this.recordWithReceipt(org, 0, 'key_share_reshared', {
        participant: org,
        threshold: decryptionThreshold(this.spec),
        boxes: reply.parties.map((p) => ({ receiver: p.organisation, sealed_sha256: hex(sha256(p.share)) })),
      });
    }
    await ask('reshared', (org) => boxes.get(org)!);
  }

  /**
   * Under a collective key: the decryption shares of the aggregate from every contributor (t-of-n: from its `quorum`),
   * each recorded with a receipt, added here into one combined share per block, which goes to every contributor with
   * each giver's shares digest (as recorded) in place of its shares. A giver that refuses, or shares that do not parse
   * or are for another ciphertext, leave the sum unopened: the job fails naming the giver. Under t-of-n a quorum member
   * lost (gone or silent) before its shares is survived once: the same aggregate is asked again of the contributors
   * left, with a new quorum of t of them (`quorum_replaced`; docs/threshold-ckks.md, "A quorum member lost before its
   * shares"). Returns who opens the sum, who reports its values, and by when (a recovery has a deadline of its own).
   */
  private async collectiveDecryption(
    sum: EncryptedVector,
    quorum: string[],
    contributors: string[],
    purpose: SumPurpose,
    round: number,
    deadline: number,
  ): Promise<{ openers: string[]; reporter: string; deadline: number }> {
    let givers = quorum.length > 0 ? quorum : contributors;
    let openers = contributors;
    let gathered = await this.gatherShares(givers, contributors, purpose, round, deadline);
    if (gathered.lost.length > 0) {
      const lost = gathered.lost.map((l) => l.org);
      openers = contributors.filter((o) => !lost.includes(o));
      const next = canonicalOrder(openers)
        .filter((o) => this.sessions.isConnected(o))
        .slice(0, givers.length);
      if (next.length < givers.length)
        throw this.sharesMissing(gathered.lost[0]!, givers, contributors, purpose, round, `, and only ${next.length} other contributors remain to open it with a new quorum of ${givers.length}`);
      await this.record('quorum_replaced', { round, purpose, lost, previous: givers, quorum: next });
      this.log.warn({ job: this.id, round, purpose, lost, quorum: next }, 'a quorum member was lost before its decryption shares; the aggregate is opened with a new quorum');
      this.emit(this.stage, `round ${round}: ${lost.join(', ')} left before giving decryption shares; ${next.join(', ')} open the same ${purpose} aggregate`);
      await this.sendEach(openers, round, { body: 'aggregateReady', aggregateReady: { purpose, sum, contributors, quorum: next } });
      givers = next;
      deadline = Date.now() + this.spec.training.round_timeout_s * 1000;
      gathered = await this.gatherShares(next, contributors, purpose, round, deadline, true);
    }
    let combined: Uint8Array[];
    try {
      const vectors = await this.thresholdVectors();
      combined = vectors.sumShares(sum.blocks, sumLabel(this.id, round, purpose, sum.blockSha256), gathered.given);
    } catch (err) {
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        `round ${round}: the ${purpose} aggregate cannot be opened: ${errorMessage(err)}`,
        'the participant named deviates from the protocol (see its log); the job stops',
      );
    }
    await this.sendEach(openers, round, { body: 'decryptionShares', decryptionShares: { purpose, parties: gathered.parties, combined } });
    return { openers, reporter: givers[0]!, deadline };
  }

  /**
   * Each giver's decryption shares of the sum, recorded as they come (`decryption_shares`, with a receipt), and each
   * giver that gave none (`decryption_shares_missing`). A refusal, any missing giver of an N-of-N sum, or any of a
   * recovery (`final`) fails the job at once naming it; under t-of-n a giver gone or silent is returned as lost, after
   * the others' shares are taken (they were given, so the ledger records them).
   */
  private async gatherShares(givers: string[], contributors: string[], purpose: SumPurpose, round: number, deadline: number, final = false) {
    const given: { organisation: string; shares: Uint8Array[] }[] = [];
    const parties: DecryptionShares['parties'] = [];
    const lost: { org: string; reason: string }[] = [];
    for (const org of givers) {
      let m: ParticipantMessage;
      try {
        m = await this.nextOf(org, 'decryptionShares', purpose, round, deadline);
      } catch (err) {
        // A refusal (FC_DECRYPTION_REFUSED from the participant) or a silence is recorded beside the shares given.
        const reason = err instanceof ParticipantGone ? err.reason : errorMessage(err);
        await this.record('decryption_shares_missing', { round, purpose, participant: org, reason });
        const answered = !(err instanceof ParticipantGone) || err.answered;
        if (answered || final || givers.length === contributors.length) throw this.sharesMissing({ org, reason }, givers, contributors, purpose, round);
        lost.push({ org, reason });
        continue;
      }
      if (m.body !== 'decryptionShares') throw new Error('unreachable');
      const own = m.decryptionShares.parties;
      if (own.length !== 1 || own[0]!.organisation !== org)
        throw new FedcreditError(ErrorCode.JOB_FAILED, `round ${round}: ${org} sent decryption shares that are not its own`, `${org} deviates from the protocol`);
      const shares = own[0]!.shares;
      const bytes = encodeMessage('PartyDecryptionShares', { organisation: org, shares });
      const sharesSha256 = decryptionSharesDigest(org, shares);
      await this.recordWithReceipt(org, round, 'decryption_shares', { round, purpose, participant: org, shares: shares.length, shares_sha256: hex(sharesSha256) }, [{ name: 'shares', bytes }]);
      given.push({ organisation: org, shares });
      parties.push({ organisation: org, shares: [], sharesSha256 });
    }
    return { given, parties, lost };
  }

  /** The job's failure when `missing` gave no decryption shares of the sum that `givers` open. */
  private sharesMissing(missing: { org: string; reason: string }, givers: string[], contributors: string[], purpose: SumPurpose, round: number, more = ''): FedcreditError {
    return new FedcreditError(
      ErrorCode.JOB_FAILED,
      `round ${round}: ${missing.org} gave no decryption shares of the ${purpose} aggregate (${missing.reason}); under a collective key the sum opens only with ${givers.length < contributors.length ? `the shares of its quorum [${givers.join(', ')}]` : "every contributor's shares"}${more}`,
      `see ${missing.org}'s log`,
    );
  }

  /**
   * t-of-n: the t contributors, in canonical order, whose decryption shares open the sum: the first t still connected
   * (a contributor lost since it contributed is left out). Fewer than t connected fails the job naming the missing.
   * Empty otherwise (every contributor gives shares).
   */
  private quorumOf(contributors: string[], purpose: SumPurpose, round: number): string[] {
    const t = decryptionThreshold(this.spec);
    if (!this.threshold || t >= this.participants.length) return [];
    const connected = canonicalOrder(contributors).filter((o) => this.sessions.isConnected(o));
    if (connected.length < t) {
      const missing = contributors.filter((o) => !connected.includes(o));
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        `round ${round}: the ${purpose} sum opens with the decryption shares of ${t} participants (encryption.threshold), and only ${connected.length} of its contributors are still connected; missing: ${missing.join(', ')}`,
        `bring ${missing.join(', ')} back (see their logs) and re-run the job`,
      );
    }
    return connected.slice(0, t);
  }

  /** The job's threshold context (no secret: it adds decryption shares), made once. */
  private async thresholdVectors(): Promise<ThresholdVectors> {
    this.collective ??= new ThresholdVectors(await ThresholdContext.create(ckksParamsOf(this.spec)), this.participants.length);
    return this.collective;
  }

  /** Federation-wide feature means and scales (and, if asked, statistics) by a secure sum of per-party moments. */
  private async moments(): Promise<{ preprocessing: Preprocessing; moments: Float64Array }> {
    this.emit('moments', 'computing federation-wide feature statistics (secure sum)');
    const features = this.spec.features ?? this.sessions.declaredFeatures(this.participants[0]!);
    const result = await this.secureSum('moments', 0, momentsLength(features.length), () => ({}), { needAll: true });
    const prep = preprocessingFromMoments(features, result.values, this.spec.training.standardize);
    if (this.spec.statistics) {
      this.statistics = statisticsFromMoments(features, result.values, new Set(Object.keys(declaredLevels(this.spec.binning, features)))).map((s) => ({ ...s }));
      await this.record('statistics_completed', { contributors: result.contributors, features: this.statistics });
      this.emit('moments', `federated statistics of ${features.length} features over ${String(this.statistics[0]?.rows ?? 0)} training rows recorded`);
    }
    this.log.info({ job: this.id, features: features.length }, 'feature statistics ready');
    return { preprocessing: prep, moments: result.values };
  }

  private statistics?: Record<string, unknown>[];
  /** Every candidate feature's fine-bin and final IV and the binning warnings, for the artifact (not kept on resume). */
  private binningSummary?: NonNullable<ModelMetadata['binning']>;
  /** Validation rows too few to choose the published round (warnOnValidationSize). */
  private validationWarning?: string;

  /**
   * Federation-wide quantiles of every feature (src/fl/quantile-search.ts): rounds of secure sums of each
   * participant's counts of training rows at or below points that every party derives from the moments and the
   * earlier rounds' aggregates, until every cell holds at most QUANTILE_RANK_ERROR of the rows or a single value.
   */
  private async quantiles(features: string[], moments: Float64Array): Promise<QuantileSearch> {
    const search = new QuantileSearch(moments, features.length, searchLayouts(this.spec.binning, features));
    this.emit('quantiles', `locating federation-wide quantiles of ${features.length} features (secure sums of counts, rank error ≤ ${QUANTILE_RANK_ERROR * 100}%)`);
    let contributors: string[] = [];
    while (!search.done) {
      const length = search.length;
      const result = await this.secureSum('quantiles', 0, length, () => ({}), { needAll: true });
      search.advance(result.values);
      contributors = result.contributors;
      this.emit('quantiles', `quantile search round ${search.rounds}: ${length} counts opened`);
    }
    const rankErrors = search.rankErrors();
    await this.record('quantiles_completed', {
      contributors,
      rounds: search.rounds,
      rank_error_target: QUANTILE_RANK_ERROR,
      features: features.map((feature, j) => ({ feature, points: search.sketches[j]!.points.length, rank_error: rankErrors[j]! })),
    });
    const worst = Math.max(0, ...rankErrors);
    if (worst > QUANTILE_RANK_ERROR) this.emit('quantiles', `after ${search.rounds} rounds a cell of ${features[rankErrors.indexOf(worst)]} still holds ${(worst * 100).toFixed(2)}% of its rows`);
    return search;
  }

  /**
   * Bins from secure histograms: every participant counts its training rows and defaults in fine bins whose edges
   * follow from the quantile search; the coordinator opens only the sum, settles the fine bins (WOE, IV), selects by
   * IV and returns the preprocessing the model trains with.
   */
  private async binning(base: Preprocessing, search: QuantileSearch): Promise<Preprocessing> {
    const spec = this.spec.binning!;
    this.emit('binning', `binning ${base.features.length} features from secure histograms over fine bins at federation-wide quantiles`);
    const grids = fineGridsOf(search, spec, base.features);
    const result = await this.secureSum('histogram', 0, histogramLength(grids), () => ({}), { needAll: true });
    const binned = binsFromHistogram(base.features, grids, result.values, spec);
    const record = binningRecord(binned, spec);
    await this.record('binning_completed', {
      contributors: result.contributors,
      method: spec.method,
      iv_threshold: spec.iv_threshold,
      woe_transform: spec.woe_transform,
      ...record,
    });
    this.binningSummary = {
      iv: binned.map((b) => ({
        feature: b.feature,
        ...(b.categories ? { type: 'category' as const } : {}),
        iv: b.iv,
        fineIv: b.fineIv,
        chanceIv: b.chanceIv,
        bins: valueBinCount(b.woe.length, b.specials?.length),
        selected: b.selected,
      })),
      warnings: record.warnings,
    };
    for (const warning of record.warnings) this.emit('binning', `warning: ${warning}`);
    const prep = preprocessingFromBins(base, binned, spec.woe_transform);
    const strongest = [...binned]
      .sort((a, b) => b.iv - a.iv)
      .slice(0, 3)
      .map((b) => `${b.feature} ${b.iv.toFixed(3)}`);
    this.emit(
      'binning',
      `${prep.features.length} of ${binned.length} features have IV ≥ ${spec.iv_threshold} (strongest: ${strongest.join(', ')})${spec.woe_transform ? '; the model trains on their WOE' : ''}`,
    );
    return prep;
  }

  /**
   * The final model's figures on every participant's validation rows, from a secure sum of PD histograms. The model
   * is published without them (and the record says why) if too few participants contribute or the rows hold one class.
   */
  private async evaluate(weights: Float32Array, preprocessing: Preprocessing): Promise<Record<string, unknown> | null> {
    const cutoff = this.spec.evaluation.decline_cutoff;
    this.emit('evaluation', "evaluating the model on the participants' validation rows (secure histogram of predicted PD)");
    const globalWeights = float32Bytes(weights);
    const result = await this.secureSum(
      'evaluation',
      this.spec.training.rounds + 1,
      EVALUATION_LENGTH,
      (deadline) => ({ globalWeights, globalWeightsSha256: weightsDigest(weights), preprocessing, deadlineUnixMs: deadline }),
      { optional: true },
    );
    const figures = result ? evaluationFromPdHistogram(result.values, cutoff) : { reason: 'too few participants contributed to the evaluation sum' };
    if ('reason' in figures) {
      await this.record('evaluation_completed', { evaluation: null, reason: figures.reason });
      this.emit('evaluation', `no evaluation: ${figures.reason}`);
      return null;
    }
    // Non-finite figures (e.g. the default rate among the approved when nobody is approved) are recorded as null.
    const evaluation = JSON.parse(JSON.stringify({ contributors: result!.contributors, ...figures })) as Record<string, unknown>;
    await this.record('evaluation_completed', { evaluation });
    this.emit(
      'evaluation',
      `validation ${validationAucText(figures)}, KS ${figures.ks.toFixed(4)}, Gini ${figures.gini.toFixed(4)} on ${figures.n} rows of ${result!.contributors.length} participants`,
    );
    return evaluation;
  }

  /**
   * Under best_validation_auc, a warning (job events, log, the artifact's report) when the validation rows were too few
   * for their AUC to choose among the rounds. It reads the validation rows, defaults and AUC of the evaluation sum,
   * which the coordinator opens anyway: no participant's own counts. The published round stands.
   */
  private warnOnValidationSize(evaluation: Record<string, unknown>): void {
    const t = this.spec.training;
    if (t.model_selection !== 'best_validation_auc' || this.roundsDone < 2) return;
    const warning = validationSizeWarning(
      { rows: Number(evaluation.n), defaults: Number(evaluation.defaults), auc: Number(evaluation.auc) },
      `the round to publish (round ${this.selectedRound} of ${this.roundsDone})`,
      `raise training.validation_fraction (now ${t.validation_fraction}), or set training.model_selection: last_round`,
    );
    if (!warning) return;
    this.validationWarning = warning;
    this.log.warn({ job: this.id, warning }, 'the validation rows are too few to choose the round');
    this.emit('evaluation', `warning: ${warning}`);
  }

  private async scorecard(weights: Float32Array, preprocessing: Preprocessing): Promise<HorizontalScorecard> {
    this.emit('scorecard', 'turning the model into points');
    const card = horizontalScorecard(weights, preprocessing, this.spec.scorecard!, this.spec.name);
    await this.record('scorecard_built', {
      scorecard_sha256: hex(sha256(Buffer.from(card.json))),
      pmml_sha256: hex(sha256(Buffer.from(card.pmml))),
      base_points: card.card.basePoints,
      score_range: card.range,
      features: card.card.features.length,
    });
    this.emit('scorecard', `scorecard of ${card.card.features.length} features, scores from ${card.range[0]} to ${card.range[1]}`);
    return card;
  }

  /**
   * The training rounds, from round 1 or from where a restarted coordinator resumes; returns the model of the round
   * `training.model_selection` picks (recorded as `model_selected`).
   */
  private async train(
    preprocessing: Preprocessing,
    from: { weights?: Float32Array; firstRound: number; history: RoundFigure[]; selected?: Float32Array } = { firstRound: 1, history: [] },
  ): Promise<Float32Array> {
    const { tf, backend } = await loadTf();
    this.log.info({ job: this.id, backend }, 'TensorFlow.js backend');
    const t = this.spec.training;
    const model = buildModel(tf, this.spec.model, preprocessing.features.length, t.seed);
    let weights = from.weights ?? getFlatWeights(model);
    model.dispose();
    const history = [...from.history];
    let selected = from.selected ?? weights;
    const params = weights.length;
    this.emit('training', `training a ${this.spec.model.type} model with ${params} parameters for ${t.rounds} rounds`);
    for (let round = from.firstRound; round <= t.rounds; round++) {
      const started = Date.now();
      const globalWeights = float32Bytes(weights);
      const result = await this.secureSum('update', round, params + 2, (deadline) => ({
        globalWeights,
        globalWeightsSha256: weightsDigest(weights),
        preprocessing,
        deadlineUnixMs: deadline,
      }));
      const v = result.values;
      if (!(aggregateSamples(weights, v) > 0)) throw new FedcreditError(ErrorCode.JOB_FAILED, `round ${round}: the aggregate holds no samples`, "check the participants' data");
      const trainLoss = aggregateLoss(weights, v);
      weights = applyAggregate(weights, v);
      const validRows = result.validation.reduce((n, m) => n + m.rows, 0);
      const validationAuc = validRows > 0 ? result.validation.reduce((s, m) => s + m.auc * m.rows, 0) / validRows : Number.NaN;
      this.roundsDone = round;
      const progress: RoundProgress = {
        round,
        rounds: t.rounds,
        participants: result.contributors,
        trainLoss,
        validationAuc,
        seconds: (Date.now() - started) / 1000,
        dropped: result.dropped,
        unit: 'round',
      };
      await this.recordForAll(
        'round_closed',
        {
          round,
          participants: progress.participants,
          dropped: progress.dropped,
          train_loss: Number.isFinite(progress.trainLoss) ? progress.trainLoss : null,
          validation_auc: Number.isNaN(progress.validationAuc) ? null : progress.validationAuc,
          model_sha256: hex(weightsDigest(weights)),
        },
        round,
        [{ name: 'model', bytes: float32Bytes(weights) }],
      );
      this.log.info({ job: this.id, ...progress }, 'round complete');
      this.emit('training', `round ${round}/${t.rounds} complete`, progress);
      history.push({ round, validationAuc: Number.isNaN(validationAuc) ? null : validationAuc });
      if (selectRound(history, t.model_selection) === round) selected = weights;
    }
    const chosen = selectRound(history, t.model_selection);
    const figure = history.find((h) => h.round === chosen);
    this.selectedRound = chosen;
    await this.record('model_selected', {
      rule: t.model_selection,
      round: chosen,
      validation_auc: figure?.validationAuc ?? null,
      model_sha256: hex(weightsDigest(selected)),
    });
    if (chosen !== this.roundsDone) {
      this.emit('training', `publishing round ${chosen}'s model: its validation AUC ${figure!.validationAuc!.toFixed(4)} is the best of the ${history.length} rounds`);
    }
    return selected;
  }

  /**
   * One secure sum: ask the active participants for their vectors, check and add what arrives by the deadline
   * (at least min_participants, else retry the round), return the opened aggregate. A participant that errors,
   * times out or disconnects is dropped from the round and named in the progress.
   */
  private secureSum(purpose: SumPurpose, round: number, length: number, request: (deadline: number) => Partial<ContributionRequest>, opts?: { needAll?: boolean }): Promise<SumResult>;
  private secureSum(
    purpose: SumPurpose,
    round: number,
    length: number,
    request: (deadline: number) => Partial<ContributionRequest>,
    opts: { needAll?: boolean; optional: true },
  ): Promise<SumResult | undefined>;
  /**
   * `needAll`: the sum needs every participant (moments, quantiles, histograms), whatever min_participants says. `optional`:
   * too few contributions after the retries return undefined instead of failing the job.
   */
  private async secureSum(
    purpose: SumPurpose,
    round: number,
    length: number,
    request: (deadline: number) => Partial<ContributionRequest>,
    opts: { needAll?: boolean; optional?: boolean } = {},
  ): Promise<SumResult | undefined> {
    const t = this.spec.training;
    // Under an N-of-N collective key every sum needs every participant (roundMinimum); under t-of-n at least t.
    const needed = contributorsNeeded(this.participants.length, { needAll: opts.needAll, minParticipants: roundMinimum(this.spec) });
    const isConnected = (org: string) => this.sessions.isConnected(org);
    const masked = this.spec.encryption.scheme !== 'plaintext';
    // A participant whose contribution was refused is not asked again for this sum: under masks every asked
    // participant must contribute, so asking it again would only fail the retry too.
    const refused = new Map<string, string>();
    for (let attemptNo = 0; ; attemptNo++) {
      const deadline = Date.now() + t.round_timeout_s * 1000;
      const attempt = new SumAttempt(round, this.participants, isConnected, needed, masked, masked ? refused : undefined);
      // Each contribution is masked pairwise with the others of exactly this set and attempt (src/fl/pairwise-mask.ts).
      const maskSet = masked ? attempt.asked.map((o) => this.boxKeys.get(o)!) : [];
      const contributionRequest = { purpose, ...request(deadline), contributors: maskSet, attempt: attemptNo } as ContributionRequest;
      const global = contributionRequest.globalWeights;
      await this.record(
        'round_opened',
        { round, purpose, attempt: attemptNo, asked: attempt.asked, not_connected: attempt.notConnected, global_weights_sha256: global ? hex(sha256(global)) : null },
        global ? [{ name: 'global_weights', bytes: global }] : [],
      );
      await this.sendEach(attempt.asked, round, { body: 'contributionRequest', contributionRequest });
      const waitingSince = Date.now();
      // Watchers see stragglers while the round waits, not only after it: every sixth of the deadline.
      const straggling = setInterval(
        () => {
          const late = attempt.late();
          if (late.length === 0) return;
          const waited = Math.round((Date.now() - waitingSince) / 1000);
          const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
          this.emit(this.stage, `round ${round}: waiting for ${late.join(', ')} (late: ${waited}s so far, deadline in ${left}s)`);
        },
        Math.max(1000, (t.round_timeout_s * 1000) / 6),
      );
      // Each contribution is checked and added as it arrives, while the others are still training.
      const intake = this.codec.startSum(length, purpose);
      let outcome: ReturnType<SumAttempt['outcome']>;
      let sum: EncryptedVector;
      try {
        await Promise.all(attempt.asked.map((org) => this.intakeOf(org, purpose, round, deadline, attempt, intake, refused)));
        outcome = attempt.outcome();
        if (!outcome.ok) {
          const next = afterShortfall(attemptNo, { maxRetries: t.max_round_retries, optional: opts.optional, needed }, this.participants, isConnected);
          if (next.action === 'retry') {
            const waiting = next.waitFor.length > 0 ? ` once ${needed} are connected (waiting up to ${t.round_timeout_s}s for ${next.waitFor.join(', ')})` : '';
            this.log.warn({ job: this.id, round, attempt: attemptNo }, `${outcome.why} — retrying${waiting}`);
            this.emit(this.stage, `${outcome.why} — retrying${waiting}`);
            if (waiting) await this.untilConnected(needed, Date.now() + t.round_timeout_s * 1000);
            continue;
          }
          if (next.action === 'skip') {
            this.log.warn({ job: this.id, round, purpose }, outcome.why + ' — going on without this sum');
            return undefined;
          }
          throw new FedcreditError(
            ErrorCode.JOB_FAILED,
            outcome.why,
            this.threshold
              ? `bring the dropped participants back (see their logs): under encryption.scheme ckks-threshold a sum needs ${needed} contributors (encryption.threshold, or every participant without it)`
              : 'bring the dropped participants back (see their logs) or lower training.min_participants',
          );
        }
        sum = intake.result(outcome.contributors);
      } finally {
        clearInterval(straggling);
        intake.dispose();
      }
      const { contributors, reporter } = outcome;
      const quorum = this.quorumOf(contributors, purpose, round);
      await this.record('aggregate_produced', { round, purpose, contributors, ...(quorum.length > 0 ? { quorum } : {}) }, [{ name: 'aggregate', bytes: encodeMessage('EncryptedVector', sum) }]);
      await this.sendEach(contributors, round, { body: 'aggregateReady', aggregateReady: { purpose, sum, contributors, quorum } });
      const opening = this.threshold ? await this.collectiveDecryption(sum, quorum, contributors, purpose, round, deadline) : { openers: contributors, reporter, deadline };
      const opened = await this.collectOpened(opening.openers, purpose, round, opening.deadline, opening.reporter);
      return { values: opened.values, contributors, dropped: attempt.dropped, validation: opened.validation };
    }
  }

  /**
   * Wait for `org`'s contribution to the sum, check it and take it in, with its receipt; a participant that errors,
   * times out, disconnects or sends what does not fit is dropped from the attempt (and told why, unless it is gone).
   */
  private async intakeOf(org: string, purpose: SumPurpose, round: number, deadline: number, attempt: SumAttempt, intake: SumIntake, refused: Map<string, string>): Promise<void> {
    try {
      const m = await this.nextOf(org, 'contribution', purpose, round, deadline).finally(() => attempt.answer(org));
      if (m.body !== 'contribution') return;
      attempt.take(org);
      intake.add(m.contribution.vector, org);
      try {
        const bytes = encodeMessage('EncryptedVector', m.contribution.vector);
        await this.recordWithReceipt(org, round, 'update_received', { round, purpose, participant: org, bytes: bytes.length, scheme: m.contribution.vector.scheme }, [{ name: 'update', bytes }]);
      } catch (err) {
        intake.remove(org);
        throw err;
      }
    } catch (err) {
      const reason = err instanceof ParticipantGone ? err.reason : errorMessage(err);
      this.log.warn({ job: this.id, round, participant: org, reason }, 'participant dropped from round');
      await this.record('update_rejected', { round, purpose, participant: org, reason });
      if (!(err instanceof ParticipantGone)) {
        refused.set(org, reason);
        await this.send(org, round, { body: 'error', error: { code: (err as FedcreditError).code ?? ErrorCode.PROTOCOL, message: reason, hint: '' } }).catch(() => undefined);
      }
      attempt.drop(org, reason);
    }
  }

  /** Resolves once at least `needed` participants are connected, or at the deadline. */
  private untilConnected(needed: number, deadline: number): Promise<void> {
    const connected = () => this.participants.filter((o) => this.sessions.isConnected(o)).length;
    const away = this.participants.filter((o) => !this.sessions.isConnected(o));
    if (connected() >= needed || away.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      for (const org of away) {
        void this.sessions.waitConnected(org, deadline).then(() => {
          if (connected() >= needed || Date.now() >= deadline) resolve();
        });
      }
    });
  }

  /**
   * The next contribution or decryption report of `purpose` for `round` from `org`, past stale messages of an earlier
   * sum of round 0 (see purposeDecision); a foreign purpose is a protocol error that drops the participant from the sum.
   */
  private async nextOf(org: string, kind: 'contribution' | 'aggregateOpened' | 'decryptionShares', purpose: SumPurpose, round: number, deadline: number): Promise<ParticipantMessage> {
    for (;;) {
      const m = await this.mailbox.waitFor(org, kind, round, deadline, () => this.sessions.isConnected(org));
      const of = m.body === 'contribution' ? m.contribution.purpose : m.body === 'aggregateOpened' ? m.aggregateOpened.purpose : m.body === 'decryptionShares' ? m.decryptionShares.purpose : purpose;
      const decision = purposeDecision(purpose, of);
      if (decision === 'take') return m;
      if (decision === 'stale') {
        this.log.warn({ job: this.id, round, participant: org }, 'a late message of the moments sum was discarded');
        continue;
      }
      throw foreignPurpose(purpose, of, kind === 'contribution' ? 'contribution' : kind === 'decryptionShares' ? 'decryption shares' : 'decryption report');
    }
  }

  /** Every contributor decrypts the aggregate; the reporter sends the values, the others their digest. All must agree. */
  private async collectOpened(orgs: string[], purpose: SumPurpose, round: number, deadline: number, reporter: string) {
    const replies = await Promise.all(
      orgs.map(async (org): Promise<OpenedReply | undefined> => {
        try {
          const m = await this.nextOf(org, 'aggregateOpened', purpose, round, deadline);
          return m.body === 'aggregateOpened' ? { org, opened: m.aggregateOpened } : undefined;
        } catch (err) {
          this.log.warn({ job: this.id, round, participant: org, reason: errorMessage(err) }, 'no decryption report');
          return undefined;
        }
      }),
    );
    const agreed = agreeOnOpened(round, reporter, replies);
    // Metrics come from participants: anything non-finite is recorded as null, never allowed to fail the record.
    const finite = (x: number) => (Number.isFinite(x) ? x : null);
    await this.record(
      'aggregate_opened',
      {
        round,
        reporter,
        values_sha256: agreed.digest,
        agreeing: agreed.agreeing,
        validation: agreed.validation.map(({ org, metrics: v }) => ({ participant: org, rows: v.rows, auc: finite(v.auc), loss: finite(v.loss) })),
      },
      [{ name: 'values', bytes: float64Bytes(agreed.values) }],
    );
    return { values: agreed.values, validation: agreed.validation.map((v) => v.metrics).filter((v) => v.rows > 0) };
  }

  private async publish(weights: Float32Array, preprocessing: Preprocessing, evaluation: Record<string, unknown> | null, scorecard?: HorizontalScorecard): Promise<void> {
    this.emit('publish', 'publishing the model');
    const { tf } = await loadTf();
    const model = buildModel(tf, this.spec.model, preprocessing.features.length, this.spec.training.seed);
    setFlatWeights(tf, model, weights);
    this.modelSha256 = weightsDigest(weights);
    const files = await modelToFiles(tf, model, {
      format: 'fedcredit-model/1',
      jobId: this.id,
      name: this.spec.name,
      purpose: this.spec.purpose,
      submitter: this.submitter,
      modelType: this.spec.model.type,
      preprocessing,
      weightsSha256: hex(this.modelSha256),
      rounds: this.roundsDone,
      selectedRound: this.selectedRound,
      participants: this.participants,
      createdAt: new Date().toISOString(),
      evaluation,
      ...(this.statistics ? { statistics: this.statistics } : {}),
      ...(this.binningSummary ? { binning: this.binningSummary } : {}),
      ...(this.validationWarning ? { validationWarning: this.validationWarning } : {}),
      ...(scorecard
        ? {
            scorecard: {
              json: 'scorecard.json',
              pmml: 'scorecard.pmml',
              sha256: hex(sha256(Buffer.from(scorecard.json))),
              basePoints: scorecard.card.basePoints,
              scoreRange: scorecard.range,
              reasonCodes: this.spec.scorecard!.reason_codes,
            },
          }
        : {}),
    });
    model.dispose();
    if (scorecard) {
      files['scorecard.json'] = Buffer.from(scorecard.json);
      files['scorecard.pmml'] = Buffer.from(scorecard.pmml);
    }
    const dir = join(this.stateDir, 'jobs', this.id, 'model');
    await writeArtifact(dir, files);
    const summary = evaluation ? { rows: evaluation.n, auc: evaluation.auc, auc_max_error: evaluation.aucMaxError, ks: evaluation.ks, gini: evaluation.gini } : null;
    await this.record(
      'model_published',
      {
        model_sha256: hex(this.modelSha256),
        rounds: this.roundsDone,
        selected_round: this.selectedRound,
        preprocessing,
        evaluation: summary,
        ...(scorecard ? { scorecard_sha256: hex(sha256(Buffer.from(scorecard.json))) } : {}),
      },
      Object.entries(files).map(([name, bytes]) => ({ name, bytes })),
    );
    this.artifact = packArtifact(files);
    this.log.info({ job: this.id, dir, sha256: hex(this.modelSha256) }, 'model published');
  }
}

/** The quantile search runs for binning, and for winsorising a model that reads features as numbers. */
export function needsQuantileSearch(spec: JobSpec): boolean {
  return !!spec.binning || spec.training.winsorize > 0;
}

/** The `preprocessing_ready` record of a preprocessing (the auditor's replay derives the same). */
export function preprocessingRecord(p: Preprocessing): Record<string, unknown> {
  return { features: p.features, mean: p.mean, scale: p.scale, bins: p.bins ?? [], clip_low: p.clipLow ?? [], clip_high: p.clipHigh ?? [] };
}
