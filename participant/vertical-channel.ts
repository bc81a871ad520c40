/**
 * What a participant's side of any vertical job (training or scoring) is built on: payloads sealed end to end to
 * a peer's per-job X25519 key and relayed by the coordinator, one step at a time with retries that supersede a
 * running attempt, the two halves of ECDH PSI, and the pairwise-masked secure sum of the hosts' partial scores.
 */
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { generateBoxKeyPair, open, seal, sharedSecret, type BoxKeyPair } from '../src/crypto/sealed-box.js';
import { signBinding, verifyBinding, type JobBinding, type KeyBinding } from '../src/crypto/key-binding.js';
import { toFloat64 } from '../src/fl/vector-codec.js';
import { PsiKey } from '../src/psi/ecdh.js';
import type { PsiLink } from '../src/psi/stream.js';
import { guestScoreSum, hostScoreShare } from '../src/vertical/secure-sum.js';
import type { GradientShareRequest, StepDone, StepRequest, ThresholdCeremony, VerticalSetup } from '../src/wire/messages.js';
import { encodeMessage } from '../src/wire/proto.js';
import { Superseded, type PeerPort } from '../src/vertical/lr/port.js';
import { Inbox } from '../src/vertical/lr/inbox.js';
import { decodePayload, encodePayload, type ShareKind } from '../src/vertical/lr/payloads.js';

/** How a vertical job talks to its peers and the arbiter (through the coordinator). */
export interface PartyIo {
  relay(to: string, kind: string, step: number, attempt: number, sealed: Uint8Array): Promise<void>;
  decrypt(step: number, attempt: number, ciphertext: Uint8Array, count: number): Promise<void>;
}

const key = (kind: string, from: string, step: number, attempt: number) => `${kind}|${from}|${step}|${attempt}`;

/** What a vertical job does with the steps its PartyChannel runs for it, one at a time. */
export interface StepHandler {
  /** Run one step of the job; the result is the step's report (counts and metrics only). */
  execute(step: number, req: StepRequest): Promise<Record<string, unknown>>;
  /** Commitment to the party's model state after a step (empty when it has none). */
  stateDigest(): Uint8Array;
  /** Called before a step (of kind `kind`) runs; `retry` when it is a new attempt of the step that ran last. */
  beginStep(step: number, retry: boolean, kind: string): void;
  /** Called when a step has run, before it is reported done. */
  endStep?(): void;
  /** Called with the job's keys once the channel has checked them. */
  install?(setup: VerticalSetup): Promise<void>;
  /** One step of the collective key ceremony (encryption.scheme ckks-threshold), this party's answer. */
  ceremony?(m: ThresholdCeremony): Promise<ThresholdCeremony>;
  /** Under a collective key: this party's masked gradient of a step's attempt, about to be sent for opening. */
  sendingGradient?(step: number, attempt: number, masked: Uint8Array): void;
  /** Under a collective key: this party's decryption share of `party`'s masked gradient, or FC_DECRYPTION_REFUSED. */
  gradientShare?(step: number, request: GradientShareRequest): Uint8Array;
  /** Called when the job ends, after every wait of the channel has been cancelled. */
  dispose?(): void;
}

/**
 * A vertical job's step runner and messaging on a participant, composed into the job (training: VerticalParty,
 * scoring: ScoringParty), which handles the steps (StepHandler).
 */
export class PartyChannel {
  readonly box: BoxKeyPair;
  readonly role: 'guest' | 'host';
  private setup?: VerticalSetup;
  private readonly inbox = new Inbox();
  /** This party's PSI key for the job (training; scoring keeps one per model). */
  readonly psiKey = PsiKey.generate();
  private queue: Promise<void> = Promise.resolve();
  private current = { step: 0, attempt: -1 };
  /** The newest step attempt asked for: work of an older one still running is superseded (dispose: everything is). */
  private latest = { step: 0, attempt: -1 };
  /** Set by the node before the job is accepted (src/crypto/key-binding.ts); absent with --insecure. */
  binding?: JobBinding;

  constructor(
    readonly id: string,
    readonly org: string,
    guest: string,
    private readonly io: PartyIo,
    private readonly log: Logger,
    private readonly stepTimeoutMs: number,
    private readonly handler: StepHandler,
    /** The per-job X25519 key of a job restored after a restart; a fresh one otherwise. */
    box?: BoxKeyPair,
  ) {
    this.role = guest === org ? 'guest' : 'host';
    this.box = box ?? generateBoxKeyPair();
  }

  /** The step and attempt running (or last run). */
  get running(): { step: number; attempt: number } {
    return { ...this.current };
  }

  /** A job restored after a restart goes on from the step (and attempt) it had reached. */
  resumeAt(step: number, attempt: number): void {
    this.current = { step, attempt };
  }

  /** This party's signed statement that its per-job box key is its own, for its JobAccepted. */
  boxKeyBinding(): KeyBinding | null {
    const b = this.binding;
    return b ? signBinding(b.signer, { purpose: 'box-key', jobId: this.id, specSha256: b.specSha256, organisation: this.org, key: this.box.publicKey }) : null;
  }

  async install(setup: VerticalSetup): Promise<void> {
    if (this.setup) {
      // The coordinator sends the setup again to a party it lost before the first step (it cannot tell whether the
      // first one arrived): the same setup is a no-op, any other a deviation (keys swapped after the checks below).
      if (Buffer.from(encodeMessage('VerticalSetup', setup)).equals(Buffer.from(encodeMessage('VerticalSetup', this.setup)))) return;
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `the coordinator sent ${this.org} a second setup of job ${this.id}, other than the first`,
        'the coordinator deviates from the protocol; this node takes no further part in the job. Tell the federation operator',
      );
    }
    // A job restored after a restart installs the setup it kept in its own folder, checked when it first came.
    if (this.binding) this.checkSetup(setup, this.binding);
    this.setup = setup;
    await this.handler.install?.(setup);
  }

  /** One step of the job's collective key ceremony: refused by a job that has none. */
  ceremony(m: ThresholdCeremony): Promise<ThresholdCeremony> {
    if (!this.handler.ceremony)
      return Promise.reject(new FedcreditError(ErrorCode.PROTOCOL, `job ${this.id} has no collective key ceremony`, 'the coordinator sent a message of another protocol; restart it'));
    return this.handler.ceremony(m);
  }

  /**
   * This party's decryption share for the arbiter's request (a job without a collective key refuses), only for the
   * step attempt this party was last asked to run: a gradient is opened in the step that makes it, so a request for
   * any other step is a coordinator gathering openings beyond the job's schedule (docs/threshold-ckks.md, "A with G").
   */
  gradientShare(step: number, request: GradientShareRequest): Uint8Array {
    if (!this.handler.gradientShare)
      throw new FedcreditError(
        ErrorCode.DECRYPTION_REFUSED,
        `job ${this.id} has no collective key: ${this.org} holds no decryption share`,
        'the coordinator sent a message of another protocol; restart it',
      );
    const { step: running, attempt } = this.latest;
    if (step !== running || request.attempt !== attempt)
      throw new FedcreditError(
        ErrorCode.DECRYPTION_REFUSED,
        `a decryption share for step ${step} attempt ${request.attempt} asked of ${this.org}, which runs ${attempt < 0 ? 'no step' : `step ${running} attempt ${attempt}`}; a gradient is opened only in the step that makes it`,
        'the coordinator asked for an opening outside the running step: it deviates from the protocol',
      );
    return this.handler.gradientShare(step, request);
  }

  /**
   * Before anything is sealed to a peer: the job's parties are exactly those of the spec this party accepted, its
   * own key is the one it sent, and every other party's key carries that party's signature (a coordinator that
   * swapped a key for its own is caught here, and the job stops naming the party).
   */
  private checkSetup(setup: VerticalSetup, b: JobBinding): void {
    const named = setup.parties.map((p) => p.organisation);
    const expected = [...b.parties].sort();
    if (setup.guest !== b.parties[0] || [...named].sort().join() !== expected.join() || [setup.guest, ...setup.hosts].sort().join() !== expected.join()) {
      throw new FedcreditError(
        ErrorCode.KEY_BINDING,
        `the job's keys name the parties ${named.join(', ')} (guest ${setup.guest}), but the job this node accepted names ${b.parties.join(', ')} (guest ${b.parties[0]})`,
        "the coordinator changed the job's parties after the offer; stop using it for this job and tell the federation operator",
      );
    }
    for (const party of setup.parties) {
      if (party.organisation === this.org) {
        if (!Buffer.from(party.boxPublicKey).equals(Buffer.from(this.box.publicKey))) {
          throw new FedcreditError(
            ErrorCode.KEY_BINDING,
            `the job's keys give ${this.org} a box key it did not send`,
            "the coordinator swapped this node's key; stop using it for this job and tell the federation operator",
          );
        }
        continue;
      }
      verifyBinding(party.binding, { purpose: 'box-key', jobId: this.id, specSha256: b.specSha256, organisation: party.organisation, key: party.boxPublicKey }, b.trust);
    }
  }

  get guest(): string {
    return this.installed.guest;
  }

  get hosts(): string[] {
    return this.installed.hosts;
  }

  /** The job's PSI salt, from the arbiter's setup. */
  get psiSalt(): Uint8Array {
    return this.installed.psiSalt;
  }

  private get installed(): VerticalSetup {
    if (!this.setup)
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `${this.org} was asked for a step of job ${this.id} before the job's setup reached it`,
        'the setup was lost on the way (a link down as it was sent); resubmit the job, and see the coordinator log',
      );
    return this.setup;
  }

  private boxKeyOf(org: string): Uint8Array {
    const party = this.setup?.parties.find((p) => p.organisation === org);
    if (!party) throw new FedcreditError(ErrorCode.PROTOCOL, `no key for party ${org} in job ${this.id}`, 'restart the job');
    return party.boxPublicKey;
  }

  private aad(from: string, to: string, kind: string, step: number, attempt: number): string {
    return `${this.id}|${from}|${to}|${kind}|${step}|${attempt}`;
  }

  /** A sealed payload from a peer, relayed by the coordinator. */
  onRelay(from: string, kind: string, step: number, attempt: number, sealed: Uint8Array): void {
    if (attempt < this.current.attempt && step === this.current.step) return;
    try {
      this.inbox.put(key(kind, from, step, attempt), open(sealed, this.box, this.aad(from, this.org, kind, step, attempt), this.boxKeyOf(from)));
    } catch (err) {
      this.log.warn({ job: this.id, from, kind, step, err: errorMessage(err) }, 'a relayed payload did not open; ignored');
    }
  }

  onDecryptReply(step: number, attempt: number, values: Uint8Array): void {
    this.inbox.put(key('arbiter.reply', 'coordinator', step, attempt), values);
  }

  /** Throws Superseded when a newer attempt has been asked for (or the job has ended): long work checks it as it goes. */
  requireCurrent(step: number, attempt: number): void {
    if (step < this.latest.step || (step === this.latest.step && attempt < this.latest.attempt)) throw new Superseded('superseded by a newer attempt');
  }

  async send(to: string, kind: string, step: number, attempt: number, payload: Uint8Array): Promise<void> {
    this.requireCurrent(step, attempt);
    await this.io.relay(to, kind, step, attempt, seal(payload, this.boxKeyOf(to), this.aad(this.org, to, kind, step, attempt), this.box));
  }

  receive(from: string, kind: string, step: number, attempt: number): Promise<Uint8Array> {
    // A superseded attempt's work still running (a stream, say) must not wait out the step deadline.
    try {
      this.requireCurrent(step, attempt);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.inbox.take(
      key(kind, from, step, attempt),
      this.stepTimeoutMs,
      `${kind} from ${from} (step ${step})`,
      'the peer is slow or gone; see its log (the coordinator pauses the job while a party is away)',
    );
  }

  /**
   * Run one step; resolves with its StepDone, or undefined when a newer attempt superseded it. Steps run one at
   * a time; a newer attempt of the same step cancels the waits of the running one.
   */
  runStep(step: number, req: StepRequest): Promise<StepDone | undefined> {
    if (step > this.latest.step || (step === this.latest.step && req.attempt > this.latest.attempt)) this.latest = { step, attempt: req.attempt };
    if (step === this.current.step && req.attempt > this.current.attempt) this.inbox.supersede();
    const run = this.queue.then(async (): Promise<StepDone | undefined> => {
      if (step < this.current.step || (step === this.current.step && req.attempt <= this.current.attempt)) return undefined;
      const retry = step === this.current.step;
      this.current = { step, attempt: req.attempt };
      this.handler.beginStep(step, retry, req.step);
      try {
        const report = await this.handler.execute(step, req);
        this.handler.endStep?.();
        return { step: req.step, attempt: req.attempt, stateSha256: this.handler.stateDigest(), reportJson: JSON.stringify(report) };
      } catch (err) {
        if (err instanceof Superseded) return undefined;
        throw err;
      }
    });
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * The PeerPort of one attempt of a step: payloads encoded by kind, sealed to the recipient and relayed by the
   * coordinator; the arbiter reached through the coordinator.
   */
  port(step: number, attempt: number): PeerPort {
    return {
      self: this.org,
      guest: this.guest,
      hosts: this.hosts,
      send: (to, kind, value) => this.send(to, kind, step, attempt, encodePayload(kind, value)),
      receive: async (from, kind) => decodePayload(kind, await this.receive(from, kind, step, attempt)),
      openGradient: async (masked, count) => {
        // Under a collective key the party records what it sends before it asks: it gives a share under its own
        // name only for this ciphertext.
        this.handler.sendingGradient?.(step, attempt, masked);
        await this.io.decrypt(step, attempt, masked, count);
        return toFloat64(await this.receiveDecrypted(step, attempt));
      },
      sendScoreShare: (scores, purpose, kind = 'score.share') => this.sendScoreShare(scores, step, attempt, purpose, kind),
      receiveScoreSum: (rows, kind = 'score.share') => this.receiveScoreSum(rows, step, attempt, kind),
      psiLink: (peer) => this.psiLink(peer, step, attempt),
      checkpoint: () => this.requireCurrent(step, attempt),
      current: () => this.current.step === step && this.current.attempt === attempt,
    };
  }

  // ---------------------------------------------------------------------------------------------------------
  // ECDH PSI (docs/protocol-vertical.md §2; src/psi/stream.ts)

  /** This party's PSI traffic with `peer` in a step's attempt. */
  psiLink(peer: string, step: number, attempt: number): PsiLink {
    return {
      send: (kind, bytes) => this.send(peer, kind, step, attempt, bytes),
      receive: (kind) => this.receive(peer, kind, step, attempt),
      checkpoint: () => this.requireCurrent(step, attempt),
    };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Secure sum of the hosts' partial scores (docs/protocol-vertical.md §4)

  /** A host's masked share of its partial scores (or scorecard points), sent to the guest. */
  private async sendScoreShare(scores: Float64Array, step: number, attempt: number, purpose: string, kind: ShareKind): Promise<void> {
    const share = hostScoreShare(scores, this.org, this.hosts, (h) => sharedSecret(this.box.privateKey, this.boxKeyOf(h)), `${this.id}|${step}|${attempt}|${purpose}`);
    await this.send(this.guest, kind, step, attempt, encodePayload(kind, share));
  }

  /** The guest's sum of the hosts' partial scores (no single host's share is visible). */
  private async receiveScoreSum(rows: number, step: number, attempt: number, kind: ShareKind): Promise<Float64Array> {
    const shares = await Promise.all(this.hosts.map(async (h) => decodePayload(kind, await this.receive(h, kind, step, attempt))));
    return guestScoreSum(shares, rows);
  }

  /** The arbiter's reply to this party's decryption request of the step. */
  private receiveDecrypted(step: number, attempt: number): Promise<Uint8Array> {
    return this.receive('coordinator', 'arbiter.reply', step, attempt);
  }

  dispose(): void {
    this.latest = { step: Infinity, attempt: Infinity };
    this.inbox.supersede();
    this.handler.dispose?.();
  }
}
