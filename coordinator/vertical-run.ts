/**
 * One vertical job, driven by the coordinator (docs/protocol-vertical.md): offer -> arbiter keys -> PSI ->
 * epochs of mini-batches with validation and early stopping -> the best epoch kept by every party -> evaluation
 * on held-out enterprises -> publish a manifest of the parts.
 *
 * The coordinator is the arbiter: it holds the CKKS secret key and decrypts only masked gradients (ciphertexts at
 * the post-gradient level; VerticalGradient.decryptGradient refuses anything fresher). Party-to-party payloads are
 * sealed to the recipient and relayed unread. Every step is recorded in the ledger with the digest and size of
 * each payload relayed and each gradient decrypted, and each party's commitment to its model part.
 *
 * A party that leaves pauses the job; if it is back within the grace period the step is run again (attempt + 1,
 * every party rolled back to where the step began), otherwise the job fails and no model is published.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ceremonyRestarts, type VerticalBoostSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import { CkksEngine } from '../src/he/engine.js';
import { collectiveTranscript, generateKeys, verticalCollectiveKeyShare, verticalCollectiveKeys, verticalKeyDigest, verticalKeysFromSums, verticalKeyShareParts } from '../src/he/key-ceremony.js';
import { paramsFingerprint, VERTICAL_CKKS_PARAMS, VERTICAL_THRESHOLD_CKKS_PARAMS } from '../src/he/params.js';
import { verticalCollectiveRotationSteps } from '../src/he/packing.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import type { IssuedShareRecord } from '../src/he/threshold/decrypt.js';
import { sharesGivenFile } from '../src/he/threshold/shares-given-file.js';
import { SecretKeyShare } from '../src/he/threshold/secret-key.js';
import { writeFileAtomic } from '../src/paths.js';
import {
  ARBITER_SHAREHOLDER,
  askedCiphertext,
  GradientShareholder,
  gradientPeriods,
  requireGradientsFitPeriods,
  thresholdOpener,
  type ClassSumPeriods,
  type ShareRequest,
} from '../src/vertical/lr/threshold-opener.js';
import { float64Bytes } from '../src/fl/vector-codec.js';
import { sha256, hex } from '../src/bytes.js';
import { stepReport, TRAINING_STEP_REPORTS, type StepReportOf, type StepReportSchemas } from '../src/vertical/step-reports.js';
import { ckksOpener, plaintextOpener, type Opener } from '../src/vertical/lr/opener.js';
import { gradientLabel } from '../src/he/vertical-threshold.js';
import { keptEpochLine, runTraining, trainingPlan, type EpochFigures } from '../src/vertical/lr/schedule.js';
import { packArtifact, writeArtifact } from '../src/model/artifact.js';
import { CeremonyPartyLost, JobBase, type CeremonyPlan, type CeremonyResume, type CeremonyWait, type JobContext } from './job-base.js';
import { encodeMessage } from '../src/wire/proto.js';
import { ParticipantGone } from './mailbox.js';
import type { ParticipantMessage, Recipient, RoundProgress, StepRequest, VerticalSetup, VerticalStep } from '../src/wire/messages.js';

interface Traffic {
  from: string;
  to: string;
  kind: string;
  /** The attempt of the step the sender sent it in (a superseded attempt's payloads may still arrive). */
  attempt: number;
  bytes: number;
  sha256: string;
}

type StepReports<R = Record<string, unknown>> = Map<string, { report: R; stateSha256: string }>;

/**
 * Where a vertical job stood when the coordinator stopped, as its ledger and state folder keep it (recovery.ts):
 * the job's flow runs again from the start, reading each completed step's reports from here instead of running it,
 * and runs the interrupted step again at every party with an attempt above any it was sent.
 */
export interface VerticalResumePoint {
  steps: Map<number, { name: string; epoch: number; batch: number; reports: Record<string, Record<string, unknown>>; parts: Record<string, string> }>;
  nextAttempt: number;
  /** Entries of the job by kind: the flow's records (psi_completed, epoch_closed, ...) already there are not repeated. */
  recorded: Map<string, number>;
  /** The arbiter's CKKS secret key (ckks jobs). */
  secretKey?: Uint8Array;
  /** The setup as first sent, kept until every party ran a step with it (arbiterSetupFile): sent to every party again. */
  setup?: VerticalSetup;
  /**
   * The arbiter's share of the collective key, the sums that rebuild the collective keys with the digest the ledger
   * records of them (collective_key_ready), and every decryption share it gave (ckks-threshold jobs).
   */
  arbiterShare?: ArbiterShare;
}

/** The arbiter's share of a job's collective key as its state folder keeps it, with the digest collective_key_ready records. */
export interface ArbiterShare {
  secretKey: Uint8Array;
  keySums: Uint8Array;
  keySha256: string;
  keyAttempt: number;
  issued: IssuedShareRecord[];
}

/**
 * Where a training job stood when the coordinator stopped after every party accepted and before `keys_ready`
 * (kinds/vertical-resume.ts `keysResumePoint`): during its collective key's ceremony (`ceremony`: restarted), or with
 * its keys made (`keys`): the arbiter's CKKS secret key or its share of the collective key from the state folder, and
 * the setup as it was first sent, if it was. That setup is sent again unchanged (a party that installed it takes it
 * as a no-op, and refuses any other: no key is swapped); without it no party got a setup, and a new one is made.
 */
export type KeysResume = { ceremony: CeremonyResume } | { keys: { setup?: VerticalSetup; secretKey?: Uint8Array; arbiterShare?: ArbiterShare } };

/**
 * The arbiter's CKKS secret key of a running job, kept so that the job survives a restart of the coordinator: mode
 * 0600 in a 0700 folder of the coordinator's state folder, never logged, deleted when the job ends.
 */
export function arbiterKeyFile(stateDir: string, jobId: string): string {
  return join(stateDir, 'jobs', jobId, 'arbiter', 'ckks-secret.key');
}

/**
 * Under a collective gradient key: the arbiter's share of the key and its record of every decryption share it gave
 * (rewritten whole before each new share), in the folder of arbiterKeyFile and deleted with it, so that a restarted
 * coordinator resumes the job and never gives a second share for a ciphertext or a label.
 */
export function arbiterShareFiles(stateDir: string, jobId: string): { keyShare: string; keySums: string; sharesGiven: string } {
  const dir = dirname(arbiterKeyFile(stateDir, jobId));
  return { keyShare: join(dir, 'collective-key-share.fcth'), keySums: join(dir, 'collective-key-sums.fcth'), sharesGiven: join(dir, 'collective-shares-given.json') };
}

/**
 * The setup of a training job as the arbiter first sent it (public: box keys with their bindings, the arbiter's CKKS
 * public keys, the PSI salt), written whole before it is sent: a coordinator restarted before every party ran a step
 * with it (before `keys_ready`, or before the first `step_completed`) sends the same one again. In the arbiter's
 * folder, deleted once the first step completes, or with the folder.
 */
export function arbiterSetupFile(stateDir: string, jobId: string): string {
  return join(dirname(arbiterKeyFile(stateDir, jobId)), 'setup.bin');
}

/** A setup under a collective key carries no CKKS key (each party encrypts under the keys it computed), only the parameters. */
const collectiveKeySetup = (): Pick<VerticalSetup, 'ckksPublicKey' | 'galoisKeys' | 'paramsFingerprint'> => ({
  ckksPublicKey: new Uint8Array(),
  galoisKeys: new Uint8Array(),
  paramsFingerprint: paramsFingerprint(VERTICAL_THRESHOLD_CKKS_PARAMS),
});

/** Attempts beyond the first for a step that connected parties did not finish in time. */
const SILENT_RETRIES = 1;

/**
 * What the vertical jobs (training and scoring) share on the coordinator: steps that every party runs and reports
 * done, payloads relayed between parties (sealed end to end, recorded by digest and size), masked gradients
 * decrypted for the party that asked (training only), and the pause-and-retry when a party leaves.
 */
/** What every vertical job's spec names: its kind and its parties. */
interface VerticalParties {
  kind: string;
  purpose: string;
  guest: string;
  hosts: string[];
  /** A training job's: ceremony_restarts bounds the restarts of a collective key's ceremony (ceremonyRestarts). */
  encryption?: { ceremony_restarts?: number };
}

export abstract class VerticalBase<S extends StepReportSchemas, Spec extends VerticalParties> extends JobBase {
  /** What each party reports at the end of each step of this kind of job. */
  protected abstract readonly stepReports: S;

  protected engine?: CkksEngine;
  protected secretKey?: Uint8Array;
  /** What decrypts the parties' masked gradients (training only): the arbiter's single CKKS key today. */
  protected opener?: Opener;
  protected step = 0;
  protected attempt = 0;
  /**
   * How many gradient values each party may have decrypted: its number of columns (+1, the intercept, for the
   * guest). The arbiter sums the decrypted slots into that many residue classes, so a larger count would hand the
   * party finer sums than its own gradient (down to single slots); it is pinned, never taken from the request.
   */
  protected gradientLength = new Map<string, number>();
  /** Set when the job resumes after a coordinator restart . */
  protected replay?: VerticalResumePoint;
  /** Payloads relayed and gradients decrypted in the current step, recorded with it. */
  private traffic: Traffic[] = [];
  private decrypted: { party: string; count: number; sha256: string }[] = [];
  /** Decryptions being opened, by step, attempt and party: a second request arriving meanwhile is refused too. */
  private readonly decrypting = new Set<string>();
  /**
   * When the current step's attempt last made progress: its start, a payload relayed, a gradient decrypted, a
   * party's report. The step fails only after step_timeout_s without any, however long it runs (a PSI of millions).
   */
  private progressAt = 0;

  /** `none`: a job without encrypted quantities (scoring: only sealed payloads and masked shares travel). */
  constructor(
    id: string,
    readonly spec: Spec,
    submitter: string,
    ctx: JobContext,
    resume?: VerticalResumePoint,
  ) {
    super(id, submitter, ctx);
    this.replay = resume;
  }

  get kind(): string {
    return this.spec.kind;
  }

  get participants(): string[] {
    return [this.spec.guest, ...this.spec.hosts];
  }

  protected abstract get scheme(): 'ckks' | 'ckks-threshold' | 'plaintext' | 'none';
  /**
   * Under a collective gradient key (ckks-threshold): the SEAL context of its parameters, every shareholder in the
   * transcript's order, and the arbiter's own share with its rules (in memory only, wiped when the job ends).
   */
  protected collective?: { context: ThresholdContext; shareholders: string[]; periods: ClassSumPeriods; arbiter: GradientShareholder };
  /**
   * The setup as sent, until every party has run a step with it: a party lost before then (its stream closed, so the
   * setup may not have reached it) or not connected when it was sent is in `withoutSetup` and gets it again when it
   * is next asked for a step; a party installs the same setup once (participant/vertical-channel.ts).
   */
  private setup?: VerticalSetup;
  private readonly withoutSetup = new Set<string>();

  override participantLost(org: string, reason: string): void {
    if (this.setup) this.withoutSetup.add(org);
    super.participantLost(org, reason);
  }

  /**
   * After a coordinator restart before the job's first step completed: the setup first sent (kept) goes to every party
   * again before its first step, as to a party lost before it; one that installed it takes it as a no-op.
   */
  protected sendSetupAgain(setup: VerticalSetup): void {
    this.setup = setup;
    for (const org of this.participants) this.withoutSetup.add(org);
  }

  /** The setup again to every connected party that may have lost it, before it is asked for a step. */
  private async resendSetup(): Promise<void> {
    for (const org of [...this.withoutSetup].filter((o) => this.sessions.isConnected(o))) {
      try {
        await this.send(org, 0, { body: 'verticalSetup', verticalSetup: this.setup! });
      } catch {
        continue; // lost again: the step pauses for it, and the next attempt sends it again
      }
      this.withoutSetup.delete(org);
      this.log.info({ job: this.id, participant: org }, "the job's setup sent again to a party lost before its first step");
    }
  }

  /** Share requests in flight (ckks-threshold), by `party asked|step|attempt|whose gradient`. */
  private readonly shareWaits = new Map<string, { resolve: (share: Uint8Array) => void; reject: (err: Error) => void }>();

  accepts(kind: ParticipantMessage['body']): boolean {
    return ['jobAccepted', 'jobRefused', 'error', 'stepDone', 'relay', 'decryptRequest', 'thresholdCeremony', 'gradientShare'].includes(kind);
  }

  protected get purpose(): string {
    return this.spec.purpose;
  }

  /** The columns each party brings as the job file lists them (undefined: all it declares); null when the job reads another job's (scoring). */
  protected abstract get partyFeatures(): Record<string, string[]> | undefined | null;

  /** The columns a party brings to the job, for the record. */
  protected columnsOf(org: string): string[] | null {
    const listed = this.partyFeatures;
    return listed === null ? null : (listed?.[org] ?? this.sessions.declaredFeatures(org));
  }

  protected abstract get timing(): { step_timeout_s: number; grace_period_s: number };

  /** How long a restarted key ceremony waits for every party: the grace period. */
  protected get ceremonyWait(): CeremonyWait {
    const seconds = this.timing.grace_period_s;
    return { seconds, setting: 'training.grace_period_s', field: 'grace_period_s', period: `the grace period of ${seconds}s` };
  }

  /** A training job's job_submitted entry: its parties, columns, alignment and training, then what its kind adds. */
  protected async recordSubmission(spec: VerticalJobSpec | VerticalBoostSpec, extra: Record<string, unknown>): Promise<void> {
    await this.record('job_submitted', {
      name: spec.name,
      kind: spec.kind,
      purpose: spec.purpose,
      submitter: this.submitter,
      guest: spec.guest,
      hosts: spec.hosts,
      features: spec.features ?? null,
      alignment: spec.alignment,
      training: spec.training,
      ...extra,
    });
  }

  /** Relays and decryption requests are served at once; everything else waits in the mailbox for the runner. */
  override deliver(org: string, message: ParticipantMessage): void {
    if (message.body === 'relay') return void this.relay(org, message).catch((err) => this.log.warn({ job: this.id, from: org, err: errorMessage(err) }, 'relay failed'));
    if (message.body === 'decryptRequest') return void this.decrypt(org, message).catch((err) => this.log.warn({ job: this.id, from: org, err: errorMessage(err) }, 'decryption refused'));
    if (message.body === 'gradientShare') {
      const { attempt, party, share } = message.gradientShare;
      const wait = this.shareWaits.get(`${org}|${message.round}|${attempt}|${party}`);
      if (wait) wait.resolve(share);
      else this.log.warn({ job: this.id, from: org, step: message.round, party }, 'a decryption share nobody asked for; ignored');
      return;
    }
    // A party that refuses a share request answers with an error: its request fails at once (and its step with it).
    if (message.body === 'error')
      for (const [key, wait] of this.shareWaits)
        if (key.startsWith(`${org}|`)) wait.reject(new FedcreditError(ErrorCode.DECRYPTION_REFUSED, `${message.error.code}: ${message.error.message}`, message.error.hint));
    super.deliver(org, message);
  }

  private async relay(from: string, m: ParticipantMessage & { body: 'relay' }): Promise<void> {
    const { peer, kind, attempt, sealed } = m.relay;
    if (!this.participants.includes(peer) || peer === from) {
      throw new FedcreditError(ErrorCode.PROTOCOL, `${from} addressed a payload to ${peer}, who is not another party of the job`);
    }
    if (m.round !== this.step) throw new FedcreditError(ErrorCode.PROTOCOL, `${from} sent a ${kind} payload for step ${m.round}; the job is at step ${this.step}`);
    this.traffic.push({ from, to: peer, kind, attempt, bytes: sealed.length, sha256: hex(sha256(sealed)) });
    if (attempt === this.attempt) this.progressAt = Date.now();
    await this.send(peer, m.round, { body: 'relay', relay: { peer: from, kind, attempt, sealed } });
  }

  private async decrypt(from: string, m: ParticipantMessage & { body: 'decryptRequest' }): Promise<void> {
    const { attempt, ciphertext, count } = m.decryptRequest;
    try {
      if (m.round !== this.step) throw new FedcreditError(ErrorCode.PROTOCOL, `decryption asked for step ${m.round}; the job is at step ${this.step}`);
      // A request left over from an attempt that was superseded must not use up the party's one decryption.
      if (attempt !== this.attempt) throw new FedcreditError(ErrorCode.PROTOCOL, `decryption asked for attempt ${attempt} of step ${this.step}; the step is at attempt ${this.attempt}`);
      const opening = `${this.step}|${attempt}|${from}`;
      if (this.decrypted.some((d) => d.party === from) || this.decrypting.has(opening)) throw new FedcreditError(ErrorCode.PROTOCOL, `${from} already had a gradient decrypted in step ${this.step}`);
      const expected = this.gradientLength.get(from);
      if (count !== expected) throw new FedcreditError(ErrorCode.PROTOCOL, `${from} asked for ${count} gradient values; its ${expected ?? 0} columns give ${expected ?? 0}`);
      const request = { party: from, purpose: gradientLabel(this.id, this.step, attempt, from) };
      let values: Float64Array;
      this.decrypting.add(opening);
      try {
        if (this.collective) values = await this.openCollectively(this.collective, { ...request, masked: ciphertext }, count, this.step, attempt);
        else if (this.opener) values = this.opener.openGradient(ciphertext, count, request);
        else throw new FedcreditError(ErrorCode.PROTOCOL, 'this job decrypts nothing');
      } finally {
        this.decrypting.delete(opening);
      }
      // Opened after the step moved on (the collective opening awaits the parties' shares): its attempt is over, and
      // this attempt's own request must not be refused as a second one.
      if (m.round !== this.step || attempt !== this.attempt)
        throw new FedcreditError(ErrorCode.PROTOCOL, `the gradient of step ${m.round} attempt ${attempt} was opened after the job moved to step ${this.step} attempt ${this.attempt}; it is not sent`);
      this.decrypted.push({ party: from, count, sha256: hex(sha256(ciphertext)) });
      this.progressAt = Date.now();
      await this.send(from, m.round, { body: 'decryptReply', decryptReply: { attempt, values: float64Bytes(values) } });
    } catch (err) {
      this.log.warn({ job: this.id, participant: from, err: errorMessage(err) }, 'decryption refused');
      const e = err instanceof FedcreditError ? err : new FedcreditError(ErrorCode.CIPHERTEXT_INVALID, errorMessage(err));
      await this.send(from, m.round, { body: 'error', error: { code: e.code, message: e.message, hint: e.hint } }).catch(() => undefined);
    }
  }

  /**
   * Ask every party to run a step and wait until all report it done. A party that disconnects pauses the job for
   * the grace period; if it returns, the step runs again from its start.
   */
  /** Offer the job; every party answers with its per-job X25519 key, to which its peers seal what they send it. */
  protected async offer(specJson: string): Promise<Map<string, Recipient>> {
    const accepted = await this.collectAcceptances(specJson);
    const boxKeys = new Map<string, Recipient>(accepted.map(({ org, accepted: a }) => [org, { organisation: org, boxPublicKey: a.boxPublicKey, binding: a.boxKeyBinding }]));
    // Kept before any acceptance is recorded: a coordinator restarted before keys_ready makes or sends the keys with them.
    if (this.scheme === 'ckks-threshold' || this.keepSetup) this.keepBoxKeys(boxKeys);
    for (const { org, accepted: a } of accepted) {
      await this.record('participant_consent', { participant: org, role: org === this.participants[0] ? 'guest' : 'host', purpose: this.purpose, rows: a.trainRows });
      await this.recordWithReceipt(org, 0, 'data_bound', {
        participant: org,
        schema_sha256: hex(a.schemaHash),
        rows: a.trainRows,
        id_set_sha256: hex(a.idSetSha256),
        load_report: a.loadReport,
        columns: this.columnsOf(org),
      });
      this.emit('offer', `${org} accepted (${a.trainRows} rows)`);
    }
    return boxKeys;
  }

  /**
   * A job that resumes before keys_ready (training): keeps the setup, whole, before any party is sent it
   * (arbiterSetupFile), so that a restarted coordinator sends the same one again.
   */
  protected keepSetup?(setup: VerticalSetup): void;
  /** Every party ran a step with the setup: the kept one serves no restart any more. */
  protected setupDelivered?(): Promise<void>;

  /**
   * Send every party the keys of the job: the arbiter's CKKS public and Galois keys (training) and each party's box
   * key; `kept`, the setup a coordinator restarted before keys_ready first sent, goes again unchanged (its keys are
   * in place: the arbiter's secret key or its share of the collective key restored).
   */
  protected async keys(boxKeys: Map<string, Recipient>, made: { firstCeremonyAttempt?: number; kept?: VerticalSetup } = {}): Promise<void> {
    let setup: VerticalSetup;
    // Each key with its owner's binding, as it came: every party checks them before it seals anything to a peer.
    const parties = this.participants.map((o) => boxKeys.get(o)!);
    const common = { parties, guest: this.participants[0]!, hosts: this.participants.slice(1), psiSalt: randomBytes(32) };
    if (this.scheme === 'plaintext') {
      this.opener = plaintextOpener;
      this.log.warn({ job: this.id }, 'PLAINTEXT MODE: partial scores and gradients cross the wire unencrypted; for comparison and debugging only');
      this.emit('keys', 'plaintext mode: nothing is encrypted (comparison/debugging only)');
    }
    if (made.kept) {
      setup = made.kept;
    } else if (this.scheme === 'ckks') {
      this.emit('keys', 'the arbiter (this coordinator) is generating the CKKS keys');
      this.engine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
      const keys = generateKeys(this.engine, 'arbiter');
      this.secretKey = keys.secretKey;
      this.opener = ckksOpener(this.engine, keys.secretKey);
      const file = arbiterKeyFile(this.stateDir, this.id);
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      await writeFile(file, keys.secretKey, { mode: 0o600 });
      setup = { ckksPublicKey: keys.publicKey, galoisKeys: keys.galoisKeys, paramsFingerprint: this.engine.fingerprint, ...common };
    } else if (this.scheme === 'ckks-threshold') {
      // Restored after a restart that followed collective_key_ready: the key in place, no second ceremony.
      const key = this.collective ? collectiveKeySetup() : await this.collectiveGradientKey(made.firstCeremonyAttempt ?? 0);
      setup = { ...key, ...common };
    } else {
      setup = { ckksPublicKey: new Uint8Array(), galoisKeys: new Uint8Array(), paramsFingerprint: new Uint8Array(), ...common };
    }
    this.keepSetup?.(setup);
    // A party not connected now gets it before its first step, once it is back (withoutSetup; runStep pauses for it).
    this.setup = setup;
    await Promise.all(this.participants.map((o) => this.send(o, 0, { body: 'verticalSetup', verticalSetup: setup }).catch(() => void this.withoutSetup.add(o))));
    await this.record('keys_ready', {
      arbiter: 'coordinator',
      ...(this.scheme === 'ckks-threshold' ? { shareholders: [ARBITER_SHAREHOLDER, ...this.participants] } : {}),
      scheme: this.scheme,
      params_fingerprint: hex(setup.paramsFingerprint),
      // Under a collective key the setup carries no CKKS key: collective_key_ready records the keys' digest.
      ...(this.collective ? {} : { public_key_sha256: hex(sha256(setup.ckksPublicKey)), galois_keys_sha256: hex(sha256(setup.galoisKeys)) }),
      // Not a secret: it makes this job's id hashes unlinkable to any other job's.
      psi_salt: hex(setup.psiSalt),
      box_keys: Object.fromEntries(parties.map((p) => [p.organisation, hex(p.boxPublicKey)])),
    });
    if (this.engine) this.emit('keys', `CKKS keys in place (N=${VERTICAL_CKKS_PARAMS.polyModulusDegree}, ${this.engine.slotCount} records per ciphertext)`);
  }

  /**
   * The collective gradient key (encryption.scheme ckks-threshold; docs/threshold-ckks.md, "Vertical jobs under a
   * collective key"): the arbiter (this coordinator), the guest and every host each make a secret share and one
   * bundle of a public-key share and Galois-key shares, commit, reveal once every one has committed, and add the
   * bundles into the keys themselves; every party reports the keys' digest and a mismatch fails the job. The
   * setup carries no CKKS key: each party encrypts and rotates under the keys it computed.
   *
   * A party lost during the ceremony (gone, or silent past the deadline) restarts it from the beginning, once it is
   * back within training.grace_period_s and at most encryption.ceremony_restarts times: nothing is encrypted under
   * the key before the setup, so every shareholder, the arbiter included, makes a fresh share under the next
   * attempt's transcript and discards the old one (`key_ceremony_restarted`; "A party lost during the key ceremony").
   */
  private async collectiveGradientKey(firstAttempt: number): Promise<Pick<VerticalSetup, 'ckksPublicKey' | 'galoisKeys' | 'paramsFingerprint'>> {
    const shareholders = [ARBITER_SHAREHOLDER, ...this.participants];
    this.emit('keys', `the arbiter (this coordinator), ${this.participants.join(', ')} each make a share of the collective gradient key; nobody will hold the secret key`);
    const context = await ThresholdContext.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
    const fingerprint = paramsFingerprint(VERTICAL_THRESHOLD_CKKS_PARAMS);
    const steps = verticalCollectiveRotationSteps(context.degree / 2);
    const requireFingerprint = (fp: Uint8Array, org: string) => {
      if (!Buffer.from(fp).equals(Buffer.from(fingerprint)))
        throw new FedcreditError(
          ErrorCode.CKKS_PARAMS,
          `${org} uses CKKS parameters that differ from the job's`,
          'all parties must run the job with the same `encryption` section; restart that participant with the current fedcredit version',
        );
    };
    const bound = ceremonyRestarts({ encryption: this.spec.encryption ?? {} });
    let abandoned: SecretKeyShare | undefined;
    for (let attempt = firstAttempt; ; attempt++) {
      const transcript = collectiveTranscript(this.id, shareholders, fingerprint, 'vertical', attempt);
      const own = verticalCollectiveKeyShare(context, transcript, ARBITER_SHAREHOLDER, steps);
      const files = arbiterShareFiles(this.stateDir, this.id);
      mkdirSync(dirname(files.keyShare), { recursive: true, mode: 0o700 });
      // A restarted attempt's share replaces the abandoned one's, which is wiped from memory too.
      abandoned?.poly.fill(0n);
      abandoned = own.secret;
      writeFileAtomic(files.keyShare, own.secret.serialize());
      const memory = sharesGivenFile(files.sharesGiven, {});
      memory.keep!({ issued: [] });
      let made: ReturnType<typeof verticalCollectiveKeys> | undefined;
      const plan: CeremonyPlan = {
        shareholders,
        transcript,
        paramsFingerprint: fingerprint,
        checkShare: (sender, share) => void verticalKeyShareParts(context, steps, sender, share),
        keyDigest: (entries) => {
          made = verticalCollectiveKeys(context, transcript, steps, entries);
          return verticalKeyDigest(made);
        },
        local: { organisation: ARBITER_SHAREHOLDER, commitment: own.commitment, share: own.share },
      };
      let keyDigest: Uint8Array;
      try {
        ({ keyDigest } = await this.commitRevealKey(plan, this.ceremonyAsk(plan, requireFingerprint, attempt)));
      } catch (err) {
        if (!(err instanceof CeremonyPartyLost)) throw err;
        await this.restartCeremony(err, attempt, bound, this.ceremonyWait);
        continue;
      }
      // The keys' sums rebuild the keys after a restart, checked against the digest recorded here before another share.
      writeFileAtomic(files.keySums, made!.sums);
      const periods = gradientPeriods(this.spec);
      this.collective = { context, shareholders, periods, arbiter: new GradientShareholder(context, ARBITER_SHAREHOLDER, own.secret, shareholders.length, periods, { keep: memory.keep }) };
      await this.record('collective_key_ready', {
        parties: shareholders,
        params_fingerprint: hex(fingerprint),
        transcript_sha256: hex(sha256(transcript)),
        public_key_sha256: hex(keyDigest),
        ...(attempt > 0 ? { attempt } : {}),
      });
      this.emit('keys', `collective gradient key in place (N=${VERTICAL_THRESHOLD_CKKS_PARAMS.polyModulusDegree}); the arbiter, the guest and each host hold a share, nobody the secret key`);
      return collectiveKeySetup();
    }
  }

  /**
   * A masked gradient opened under the collective key: the arbiter's own share, then every party's (the one whose
   * gradient it is included), each asked over its stream and recorded in the ledger as it comes (a refusal or a
   * silence too, before the opening fails naming the party); then the shares are added and the slots opened.
   */
  private async openCollectively(collective: NonNullable<VerticalBase<S, Spec>['collective']>, request: ShareRequest, count: number, step: number, attempt: number): Promise<Float64Array> {
    const shares = new Map<string, Uint8Array>();
    const ciphertextSha256 = hex(sha256(request.masked));
    const given = { step, attempt, purpose: request.purpose, party: request.party, ciphertext_sha256: ciphertextSha256 };
    const own = collective.arbiter.share(request);
    shares.set(ARBITER_SHAREHOLDER, own);
    await this.record('decryption_shares', { ...given, participant: ARBITER_SHAREHOLDER, share_sha256: hex(sha256(own)) });
    const timeoutMs = this.timing.step_timeout_s * 1000;
    await Promise.all(
      this.participants.map(async (org) => {
        const key = `${org}|${step}|${attempt}|${request.party}`;
        let share: Uint8Array;
        try {
          share = await new Promise<Uint8Array>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no answer within step_timeout_s (${this.timing.step_timeout_s}s)`)), timeoutMs);
            const settle =
              <T>(fn: (v: T) => void) =>
              (v: T) => {
                clearTimeout(timer);
                this.shareWaits.delete(key);
                fn(v);
              };
            this.shareWaits.set(key, { resolve: settle(resolve), reject: settle(reject) });
            this.send(org, step, { body: 'gradientShareRequest', gradientShareRequest: { attempt, party: request.party, ciphertext: askedCiphertext(org, request) } }).catch(settle(reject));
          });
        } catch (err) {
          await this.record('decryption_shares_missing', { ...given, participant: org, reason: errorMessage(err) });
          throw new FedcreditError(
            ErrorCode.JOB_FAILED,
            `${org} gave no decryption share of ${request.party}'s masked gradient (step ${step}, attempt ${attempt}): ${errorMessage(err)}; under a collective key it opens only with every party's share`,
            `see ${org}'s log`,
          );
        }
        shares.set(org, share);
        await this.recordWithReceipt(org, step, 'decryption_shares', { ...given, participant: org, share_sha256: hex(sha256(share)) });
      }),
    );
    return thresholdOpener(collective.context, collective.shareholders, collective.periods, () => shares).openGradient(request.masked, count, request);
  }

  protected async runStep<N extends keyof S & VerticalStep>(name: N, epoch: number, batch: number, args: Record<string, unknown> = {}): Promise<StepReports<StepReportOf<S, N>>> {
    this.step++;
    const done = this.replay?.steps.get(this.step);
    if (done) {
      if (done.name !== name || done.epoch !== epoch || done.batch !== batch) {
        throw new FedcreditError(
          ErrorCode.JOB_FAILED,
          `the ledger's step ${this.step} is ${done.name} (epoch ${done.epoch}, batch ${done.batch}) where the resumed job is at ${name} (epoch ${epoch}, batch ${batch})`,
          'the job file or the coordinator changed since the job started; resubmit the job',
        );
      }
      return new Map(this.participants.map((org) => [org, { report: stepReport(this.stepReports, name, done.reports[org] ?? {}, org), stateSha256: done.parts[org] ?? '' }]));
    }
    // The step a restart interrupted runs again at an attempt above any it was sent: every party starts it over.
    const firstAttempt = this.replay?.steps && this.step === Math.max(0, ...this.replay.steps.keys()) + 1 ? this.replay.nextAttempt : 0;
    const t = this.timing;
    for (this.attempt = firstAttempt; ; this.attempt++) {
      this.traffic = [];
      this.decrypted = [];
      const request: StepRequest = { step: name, attempt: this.attempt, epoch, batch, argsJson: JSON.stringify(args) };
      if (this.setup) await this.resendSetup();
      this.progressAt = Date.now();
      const deadline = () => this.progressAt + t.step_timeout_s * 1000;
      await Promise.all(this.participants.map((o) => this.send(o, this.step, { body: 'stepRequest', stepRequest: request }).catch(() => undefined)));
      const { reports, failures } = await this.collectStepDone(name, deadline);
      if (failures.length === 0) {
        await this.record('step_completed', {
          step: this.step,
          name,
          epoch,
          batch,
          attempt: this.attempt,
          relayed: this.traffic,
          decrypted: this.decrypted,
          parts_sha256: Object.fromEntries([...reports].map(([org, r]) => [org, r.stateSha256])),
          ...(name === 'batch' ? {} : { reports: Object.fromEntries([...reports].map(([org, r]) => [org, r.report])) }),
        });
        // Every party ran a step with the setup: none needs it again.
        if (this.setup) await this.setupDelivered?.();
        this.setup = undefined;
        this.withoutSetup.clear();
        return reports;
      }
      // A party that is still connected and failed has reported an error: the job cannot go on.
      const gone = failures.filter((f) => !this.sessions.isConnected(f.org));
      const broken = failures.find((f) => this.sessions.isConnected(f.org) && !(f.err instanceof ParticipantGone && /within the deadline/.test(f.err.reason)));
      if (broken) {
        const hint = broken.err instanceof ParticipantGone && broken.err.hint ? broken.err.hint : `see ${broken.org}'s log`;
        throw new FedcreditError(ErrorCode.JOB_FAILED, `${name} step failed at ${broken.org}: ${errorMessage(broken.err)}`, hint);
      }
      // Connected but silent past the deadline: worth one more attempt (a reconnect may have lost the request), not an endless loop.
      if (gone.length === 0 && this.attempt >= SILENT_RETRIES) {
        const silent = failures.map((f) => f.org).join(', ');
        throw new FedcreditError(
          ErrorCode.JOB_FAILED,
          `${silent} stayed connected but made no progress in the ${name} step (step ${this.step}) for step_timeout_s (${t.step_timeout_s}s), in ${this.attempt + 1} attempts; no model is published`,
          `see ${silent}'s log: the node may be stuck or starved of CPU; on slow or busy machines raise training.step_timeout_s`,
        );
      }
      const missing = gone.length > 0 ? gone.map((f) => f.org) : failures.map((f) => f.org);
      // Share requests of the abandoned attempt (ckks-threshold) fail now, recorded as missing, not at their deadline.
      for (const wait of this.shareWaits.values()) wait.reject(new Error(`the step was paused, waiting for ${missing.join(', ')}`));
      await this.record('job_paused', { step: this.step, name, attempt: this.attempt, waiting_for: missing, grace_period_s: t.grace_period_s });
      this.emit(this.stage, `paused at ${name} (step ${this.step}): waiting up to ${t.grace_period_s}s for ${missing.join(', ')} to return`);
      this.log.warn({ job: this.id, step: this.step, waitingFor: missing }, 'vertical job paused');
      const graceEnd = Date.now() + t.grace_period_s * 1000;
      const back = await Promise.all(missing.map((o) => this.sessions.waitConnected(o, graceEnd)));
      if (back.some((b) => !b) || Date.now() > graceEnd) {
        throw new FedcreditError(
          ErrorCode.JOB_FAILED,
          `${missing.join(', ')} left during the ${name} step and did not return within the grace period of ${t.grace_period_s}s; no model is published`,
          'restart the missing participant and resubmit the job, or raise training.grace_period_s',
        );
      }
      // Give a reconnected participant a moment to restore its state, then run the step again.
      await this.record('job_resumed', { step: this.step, name, attempt: this.attempt + 1, returned: missing });
      this.emit(this.stage, `${missing.join(', ')} back; running ${name} (step ${this.step}) again`);
    }
  }

  /** After a coordinator restart: every party back (they reconnect by themselves) within the offer timeout. */
  protected async awaitParties(progress?: string): Promise<void> {
    const done = Math.max(0, ...(this.replay?.steps.keys() ?? []));
    this.emit('recovery', `resumed after a coordinator restart: ${progress ?? `${done} steps were recorded`}; waiting for ${this.participants.join(', ')} to reconnect`);
    this.log.warn({ job: this.id, stepsDone: done, attempt: this.replay?.nextAttempt ?? 0 }, 'resuming the vertical job from its ledger');
    const deadline = Date.now() + this.offerTimeoutMs;
    const back = await Promise.all(this.participants.map((org) => this.sessions.waitConnected(org, deadline)));
    const missing = this.participants.filter((_, i) => !back[i]);
    if (missing.length > 0) {
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        `${missing.join(', ')} did not reconnect within ${this.offerTimeoutMs / 1000}s of the coordinator's restart`,
        'restart those participants (they rejoin from their job folders) and resubmit the job',
      );
    }
  }

  protected async recordResumption(): Promise<void> {
    const done = Math.max(0, ...this.replay!.steps.keys());
    await this.record('job_resumed', { coordinator_restart: true, steps_done: done, step: done + 1, attempt: this.replay!.nextAttempt });
  }

  /**
   * A record of the job's flow, unless the ledger already holds it from before a coordinator restart (the flow
   * runs again in the same order, so the first n of a kind are those).
   */
  protected async recordOnce(kind: string, body: Record<string, unknown>, receiptRound?: number): Promise<void> {
    const left = this.replay?.recorded.get(kind) ?? 0;
    if (left > 0) {
      this.replay!.recorded.set(kind, left - 1);
      return;
    }
    // With a round: every party gets the signed tree head after the entry (an epoch's end), as its receipt.
    if (receiptRound === undefined) await this.record(kind, body);
    else await this.recordForAll(kind, body, receiptRound);
  }

  /** The align step (PSI): every party's id counts and the guest's split of the shared enterprises, recorded. */
  protected async align(): Promise<Record<string, unknown>> {
    this.emit('psi', `aligning enterprises by ECDH PSI between ${this.participants[0]!} and ${this.participants.slice(1).join(', ')}`);
    const reports = await this.runStep('psi', 0, 0);
    const guest = reports.get(this.participants[0]!)!.report;
    const counts = {
      guest_ids: guest.ids,
      host_ids: guest.host_ids,
      shared_with_guest: guest.shared_with_guest,
      intersection: guest.intersection,
      train: guest.train,
      validation: guest.validation,
      test: guest.test,
      invalid_ids: Object.fromEntries([...reports].map(([org, r]) => [org, r.report.invalid_ids])),
      duplicate_ids: Object.fromEntries([...reports].map(([org, r]) => [org, r.report.duplicate_ids])),
      id_reports: Object.fromEntries([...reports].map(([org, r]) => [org, r.report.id_report])),
    };
    for (const h of this.participants.slice(1)) {
      if (reports.get(h)!.report.intersection !== guest.intersection) {
        throw new FedcreditError(ErrorCode.PROTOCOL, `${h} aligned ${String(reports.get(h)!.report.intersection)} enterprises, the guest ${String(guest.intersection)}`, 'restart the job');
      }
    }
    await this.recordOnce('psi_completed', counts);
    this.emit('psi', `${String(guest.intersection)} enterprises shared by all parties (train ${String(guest.train)}, validation ${String(guest.validation)}, test ${String(guest.test)})`);
    return counts;
  }

  /**
   * Every party's StepDone for the current step and attempt; stops at the first failure, so a party that vanished
   * pauses the job at once instead of after the others time out waiting for it.
   */
  private collectStepDone<N extends keyof S & VerticalStep>(name: N, deadline: () => number): Promise<{ reports: StepReports<StepReportOf<S, N>>; failures: { org: string; err: unknown }[] }> {
    const reports: StepReports<StepReportOf<S, N>> = new Map();
    return new Promise((resolve) => {
      let settled = false;
      const finish = (failures: { org: string; err: unknown }[]) => {
        if (settled) return;
        if (failures.length > 0 || reports.size === this.participants.length) {
          settled = true;
          resolve({ reports, failures });
        }
      };
      for (const org of this.participants) {
        const attempt = this.attempt;
        const wait = async (): Promise<void> => {
          for (;;) {
            const m = await this.mailbox.waitFor(org, 'stepDone', this.step, deadline, () => this.sessions.isConnected(org));
            if (m.body === 'stepDone' && m.stepDone.attempt === attempt) {
              this.progressAt = Date.now();
              reports.set(org, { report: stepReport(this.stepReports, name, JSON.parse(m.stepDone.reportJson || '{}'), org), stateSha256: hex(m.stepDone.stateSha256) });
              return;
            }
          }
        };
        wait().then(
          () => finish([]),
          (err: unknown) => finish([{ org, err }]),
        );
      }
    });
  }
}

export class VerticalRun extends VerticalBase<typeof TRAINING_STEP_REPORTS, VerticalJobSpec> {
  protected readonly stepReports = TRAINING_STEP_REPORTS;

  constructor(
    id: string,
    spec: VerticalJobSpec,
    submitter: string,
    ctx: JobContext,
    resume?: VerticalResumePoint,
    /** Set when the coordinator restarted after every party accepted and before keys_ready: how the keys are put in place. */
    private readonly keysResume?: KeysResume,
  ) {
    super(id, spec, submitter, ctx, resume);
  }

  get rounds(): number {
    return this.spec.training.epochs;
  }

  protected get scheme(): 'ckks' | 'ckks-threshold' | 'plaintext' {
    return this.spec.encryption.scheme;
  }

  protected get timing() {
    return this.spec.training;
  }

  protected get partyFeatures() {
    return this.spec.features;
  }

  async run(): Promise<void> {
    this.state = 'running';
    try {
      if (this.replay) await this.rejoin();
      else if (this.keysResume) await this.restartedBeforeKeys(this.keysResume);
      else await this.start();
      const psi = await this.align();
      const binning = this.spec.binning ? await this.bin() : undefined;
      const best = await this.train(psi);
      const finalParts = await this.runStep('finalize', 0, 0, { epoch: best.epoch });
      const calibrationWarning = finalParts.get(this.spec.guest)!.report.calibration_warning;
      if (calibrationWarning) {
        this.log.warn({ job: this.id, warning: calibrationWarning }, 'the PDs are not calibrated as asked');
        this.emit('finalize', `warning: ${calibrationWarning}`);
      }
      const validationWarning = finalParts.get(this.spec.guest)!.report.validation_warning;
      if (validationWarning) {
        this.log.warn({ job: this.id, warning: validationWarning }, 'the validation rows are too few to choose the epoch');
        this.emit('finalize', `warning: ${validationWarning}`);
      }
      const scorecard = this.spec.scorecard ? await this.makeScorecard() : undefined;
      const evaluation = (await this.runStep('evaluate', 0, 0)).get(this.spec.guest)!.report;
      await this.publish(best, finalParts, evaluation, psi, { binning, scorecard, calibrationWarning, validationWarning });
    } catch (err) {
      await this.fail(err);
    } finally {
      this.engine?.dispose();
      this.engine = undefined;
      this.secretKey = undefined;
      // The arbiter's key share goes with the job (its files with the arbiter's folder, below).
      this.collective?.arbiter.forget();
      this.collective?.context.dispose();
      this.collective = undefined;
      this.opener = undefined;
      // The job is over: the arbiter's key goes (a crash skips this, and the restarted coordinator resumes with it).
      await this.forgetArbiterKey();
      this.endWatchers();
    }
  }

  /**
   * After a coordinator restart: the parties accepted the job and hold its keys, so no offer and no new keys. The
   * arbiter's secret key comes back from the state folder; the columns each party declares are those it declared.
   */
  private async rejoin(): Promise<void> {
    await this.awaitParties();
    this.pinGradientLengths();
    if (this.scheme === 'ckks') await this.restoreArbiterKey(this.replay!.secretKey!);
    else if (this.scheme === 'ckks-threshold') await this.restoreCollective(this.replay!.arbiterShare!);
    else if (this.scheme === 'plaintext') this.opener = plaintextOpener;
    if (this.replay!.setup) this.sendSetupAgain(this.replay!.setup);
    await this.recordResumption();
  }

  private async restoreArbiterKey(secretKey: Uint8Array): Promise<void> {
    this.engine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
    this.secretKey = secretKey;
    this.opener = ckksOpener(this.engine, secretKey);
  }

  /** The arbiter's share of the collective key from the state folder, its keys rebuilt and checked against the ledger's digest. */
  private async restoreCollective(kept: ArbiterShare): Promise<void> {
    const context = await ThresholdContext.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
    const shareholders = [ARBITER_SHAREHOLDER, ...this.participants];
    const secret = SecretKeyShare.deserialize(context, kept.secretKey);
    const files = arbiterShareFiles(this.stateDir, this.id);
    const transcript = collectiveTranscript(this.id, shareholders, paramsFingerprint(VERTICAL_THRESHOLD_CKKS_PARAMS), 'vertical', kept.keyAttempt);
    const keys = verticalKeysFromSums(context, transcript, verticalCollectiveRotationSteps(context.degree / 2), kept.keySums, files.keySums);
    if (hex(verticalKeyDigest(keys)) !== kept.keySha256)
      throw new FedcreditError(ErrorCode.JOB_FAILED, `the collective keys rebuilt from ${files.keySums} are not those the ledger records`, 'the state folder was changed; resubmit the job');
    const memory = sharesGivenFile(files.sharesGiven);
    const periods = gradientPeriods(this.spec);
    this.collective = { context, shareholders, periods, arbiter: new GradientShareholder(context, ARBITER_SHAREHOLDER, secret, shareholders.length, periods, memory) };
    this.log.info({ job: this.id, sharesGiven: kept.issued.length }, "the arbiter's share of the collective key restored from the state folder");
  }

  /**
   * After a coordinator restart between the parties' acceptances and keys_ready: no offer (their box keys were kept
   * then). During the collective key's ceremony, it starts again from commit with fresh shares from every shareholder,
   * the arbiter included. With the keys made, they are restored, not made again (a party may hold the setup already,
   * and takes no other), and the setup goes to every party: the one first sent if it was kept, else a new one.
   */
  private async restartedBeforeKeys(resume: KeysResume): Promise<void> {
    const boxKeys = this.keptBoxKeys();
    if ('ceremony' in resume) {
      await this.resumeCeremony(resume.ceremony, ceremonyRestarts({ encryption: this.spec.encryption }), this.ceremonyWait);
      this.pinGradientLengths();
      await this.keys(boxKeys, { firstCeremonyAttempt: resume.ceremony.attempt });
      return;
    }
    const { setup, secretKey, arbiterShare } = resume.keys;
    await this.awaitParties(setup ? "the job's setup was being sent" : 'every party had accepted the job, whose setup was not sent yet');
    this.pinGradientLengths();
    if (secretKey) await this.restoreArbiterKey(secretKey);
    if (arbiterShare) await this.restoreCollective(arbiterShare);
    await this.record('job_resumed', { coordinator_restart: true, steps_done: 0, before: 'keys_ready', setup_sent_again: setup !== undefined });
    await this.keys(boxKeys, { kept: setup });
  }

  protected override keepSetup(setup: VerticalSetup): void {
    const file = arbiterSetupFile(this.stateDir, this.id);
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(file, encodeMessage('VerticalSetup', setup));
  }

  protected override async setupDelivered(): Promise<void> {
    await rm(arbiterSetupFile(this.stateDir, this.id), { force: true });
  }

  private async forgetArbiterKey(): Promise<void> {
    this.secretKey = undefined;
    this.opener = undefined;
    await rm(dirname(arbiterKeyFile(this.stateDir, this.id)), { recursive: true, force: true }).catch((err: unknown) =>
      this.log.error({ job: this.id, err: errorMessage(err) }, "the arbiter's secret key of an ended job could not be deleted; delete it by hand"),
    );
  }

  /** Each party's gradient length: its columns (+1, the intercept, for the guest). */
  private pinGradientLengths(): void {
    const columns = new Map(this.participants.map((org) => [org, this.spec.features?.[org] ?? this.sessions.declaredFeatures(org)]));
    if (this.spec.binning) this.requireDistinctFeatureNames(columns);
    for (const [org, names] of columns) this.gradientLength.set(org, names.length + (org === this.spec.guest ? 1 : 0));
    if (this.scheme !== 'ckks-threshold') return;
    // The shareholders sum each gradient's classes modulo a period they take from the job file: it must hold the count.
    requireGradientsFitPeriods(this.spec, this.gradientLength);
  }

  /** A new job: recorded, offered to its parties, keys made and sent. */
  private async start(): Promise<void> {
    await this.recordSubmission(this.spec, {
      encryption: this.spec.encryption,
      evaluation: this.spec.evaluation,
      // What each data owner consents to share beyond the model: bins and IV, a scorecard, groups for fairness.
      statistics: this.spec.statistics,
      binning: this.spec.binning ?? null,
      scorecard: this.spec.scorecard ?? null,
      fairness: this.spec.fairness ?? null,
    });
    const boxKeys = await this.offer(JSON.stringify(this.spec));
    this.pinGradientLengths();
    await this.keys(boxKeys);
  }

  /** The IV table, the scorecard and its PMML name features without their party: two parties may not share a name. */
  private requireDistinctFeatureNames(columns: Map<string, string[]>): void {
    const owner = new Map<string, string>();
    for (const [org, names] of columns) {
      for (const name of names) {
        const other = owner.get(name);
        if (other) {
          throw new FedcreditError(
            ErrorCode.JOB_INVALID,
            `both ${other} and ${org} offer a column named ${name}; a job with binning names features across parties`,
            `list each party's columns in the job's features section without the clash, or rename the column at one party`,
          );
        }
        owner.set(name, org);
      }
    }
  }

  /**
   * Every party bins its features; the guest learns each feature's IV (hosts' through per-bin label sums under its
   * own key) and features below the threshold leave the model, so each party's gradient gets shorter.
   */
  private async bin(): Promise<Record<string, unknown>> {
    const b = this.spec.binning!;
    this.emit('binning', `binning every party's features (${b.method}, at most ${b.max_bins} bins), WOE and IV`);
    const reports = await this.runStep('bin', 0, 0);
    for (const [org, r] of reports) {
      const kept = Number(r.report.model_features);
      const pinned = this.gradientLength.get(org)! - (org === this.spec.guest ? 1 : 0);
      if (!Number.isInteger(kept) || kept < 0 || kept > pinned)
        throw new FedcreditError(ErrorCode.PROTOCOL, `${org} reports ${String(r.report.model_features)} model features after binning, of ${pinned}`, 'restart the job');
      this.gradientLength.set(org, kept + (org === this.spec.guest ? 1 : 0));
    }
    const iv = (reports.get(this.spec.guest)!.report.iv ?? []) as { feature: string; party: string; iv: number; selected: boolean }[];
    const statistics = Object.fromEntries([...reports].map(([org, r]) => [org, r.report.statistics]));
    const warnings = (reports.get(this.spec.guest)!.report.warnings ?? []) as string[];
    const summary = { iv, warnings, model_features: Object.fromEntries([...reports].map(([org, r]) => [org, r.report.model_features])), statistics };
    await this.recordOnce('binning_completed', summary);
    for (const warning of warnings) {
      this.log.warn({ job: this.id, warning }, 'binning lost the information of a feature');
      this.emit('binning', `warning: ${warning}`);
    }
    const kept = iv.filter((r) => r.selected).length;
    this.emit(
      'binning',
      `${kept} of ${iv.length} features reach IV ${b.iv_threshold}; strongest: ${[...iv]
        .sort((x, y) => y.iv - x.iv)
        .slice(0, 3)
        .map((r) => `${r.party}/${r.feature} ${r.iv.toFixed(3)}`)
        .join(', ')}`,
    );
    return summary;
  }

  private async makeScorecard(): Promise<Record<string, unknown>> {
    this.emit('scorecard', 'turning the model into points: each party scores its own bins');
    const guest = (await this.runStep('scorecard', 0, 0)).get(this.spec.guest)!.report;
    await this.recordOnce('scorecard_built', guest);
    return guest;
  }

  /** The epoch kept (validation's best, the model published) and the last epoch run, each with its validation figures. */
  private async train(psi: Record<string, unknown>): Promise<{ epoch: number; kept: EpochFigures; last: EpochFigures }> {
    const t = this.spec.training;
    const plan = trainingPlan(t, Number(psi.train));
    this.emit('training', `training for up to ${t.epochs} epochs of ${plan.batches} mini-batches (${this.spec.encryption.scheme})`);
    const figures = new Map<number, EpochFigures>();
    let started = 0;
    let digests: Record<string, string> = {};
    const trained = await runTraining(plan, {
      beginEpoch: () => {
        started = Date.now();
        digests = {};
      },
      batch: async (epoch, b) => {
        const reports = await this.runStep('batch', epoch, b);
        for (const [org, r] of reports) digests[org] = r.stateSha256;
      },
      validate: async (epoch) => {
        const v = (await this.runStep('validate', epoch, 0)).get(this.spec.guest)!.report;
        this.roundsDone = epoch;
        figures.set(epoch, { epoch, auc: Number(v.validation_auc), ks: Number(v.validation_ks) });
        const progress: RoundProgress = {
          round: epoch,
          rounds: t.epochs,
          participants: this.participants,
          trainLoss: Number.NaN,
          validationAuc: Number(v.validation_auc),
          seconds: (Date.now() - started) / 1000,
          dropped: [],
          unit: 'epoch',
        };
        await this.recordOnce(
          'epoch_closed',
          { epoch, batches: plan.batches, validation_auc: v.validation_auc, validation_ks: v.validation_ks, best_epoch: v.best_epoch, parts_sha256: digests },
          epoch,
        );
        this.emit('training', `epoch ${epoch}/${t.epochs}: validation AUC ${Number(v.validation_auc).toFixed(4)}`, progress);
        return v;
      },
    });
    if (trained.stoppedEarly) this.emit('training', `early stop: no better validation AUC for ${t.patience} epochs; keeping epoch ${trained.best}`);
    const unknown = (epoch: number): EpochFigures => ({ epoch, auc: Number.NaN, ks: Number.NaN });
    return { epoch: trained.best, kept: figures.get(trained.best) ?? unknown(trained.best), last: figures.get(trained.epochs) ?? unknown(trained.epochs) };
  }

  private async publish(
    best: { epoch: number; kept: EpochFigures; last: EpochFigures },
    parts: StepReports<StepReportOf<typeof TRAINING_STEP_REPORTS, 'finalize'>>,
    evaluation: Record<string, unknown>,
    psi: Record<string, unknown>,
    credit: { binning?: Record<string, unknown>; scorecard?: Record<string, unknown>; calibrationWarning?: string; validationWarning?: string },
  ): Promise<void> {
    this.emit('publish', 'publishing the model manifest (each party keeps its own part)');
    const { calibrationWarning } = credit;
    const manifest = {
      format: 'fedcredit-vertical-model/1',
      jobId: this.id,
      kind: this.spec.kind,
      guest: this.spec.guest,
      hosts: this.spec.hosts,
      epoch: best.epoch,
      // Each party's commitment to its part: the parts themselves never leave their owners.
      parts: Object.fromEntries([...parts].map(([org, r]) => [org, { sha256: r.report.part_sha256 }])),
      intersection: psi.intersection,
      test: { rows: evaluation.rows, auc: evaluation.test_auc, ks: evaluation.test_ks, evaluation: evaluation.evaluation ?? null },
      // Why the PDs are not a maximum-likelihood Platt calibration, when they are not (they still rank as the scores do).
      ...(calibrationWarning ? { calibration_warning: calibrationWarning } : {}),
      // Validation rows too few for their AUC to choose the kept epoch (the epoch is kept all the same).
      ...(credit.validationWarning ? { validation_warning: credit.validationWarning } : {}),
      // Every candidate feature's fine-bin and final IV, and the features binning lost (named, not silently gone).
      ...(credit.binning ? { iv: credit.binning.iv, binning_warnings: credit.binning.warnings ?? [] } : {}),
      // The guest's commitment to the scorecard it exported (the points stay with the parties and the guest).
      ...(credit.scorecard ? { scorecard: { sha256: credit.scorecard.scorecard_sha256, base_points: credit.scorecard.base_points, score_range: credit.scorecard.score_range } } : {}),
      ...(evaluation.fairness ? { fairness: evaluation.fairness } : {}),
      createdAt: new Date().toISOString(),
    };
    const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
    this.modelSha256 = sha256(bytes);
    await writeArtifact(join(this.stateDir, 'jobs', this.id, 'model'), { 'manifest.json': bytes });
    await this.record('model_published', { model_sha256: hex(this.modelSha256), epoch: best.epoch, parts: manifest.parts, test: manifest.test }, [{ name: 'manifest.json', bytes }]);
    this.artifact = packArtifact({ 'manifest.json': bytes });
    // The model is published: the arbiter's key has nothing left to decrypt (a restart now only records the end).
    await this.forgetArbiterKey();
    this.state = 'succeeded';
    this.emit(
      'done',
      `model published: test AUC ${Number(evaluation.test_auc).toFixed(4)}, KS ${Number(evaluation.test_ks).toFixed(4)} on ${String(evaluation.rows)} held-out enterprises; ${keptEpochLine(best.kept, best.last)}${[calibrationWarning, credit.validationWarning].map((w) => (w ? `; warning: ${w}` : '')).join('')}`,
    );
    await this.recordForAll('job_ended', { state: 'succeeded', model_sha256: hex(this.modelSha256), epochs: this.roundsDone, message: this.message });
    await this.broadcast({ body: 'jobEnded', jobEnded: { state: 'succeeded', message: 'model published', modelSha256: this.modelSha256 } });
  }
}
