/**
 * Replay of a vertical job's record. The model parts never leave their owners, so an auditor cannot recompute the
 * weights; what the record does prove, and this checks:
 *  - the protocol ran as designed, step by step: in every mini-batch each host sent the guest exactly one encrypted
 *    partial-score vector, the guest sent each host exactly one encrypted fore-gradient, and each party had exactly
 *    one masked gradient decrypted (so the arbiter decrypted nothing else);
 *  - the steps are contiguous and each epoch closed with every party's commitment to its weights;
 *  - the published manifest commits, for every party, to the part it kept at the end (`finalize`), and the
 *    manifest blob is the one the record names;
 *  - under a collective gradient key (encryption.scheme ckks-threshold): every revealed key share matches its
 *    party's commitment and the shares add up to the recorded keys; each shareholder gave at most one decryption
 *    share per ciphertext and per label, and every gradient decrypted was opened with a share of every shareholder.
 */
import type { readLedger } from '../ledger/read.js';
import { hex, sha256Hex } from '../bytes.js';
import { startReplay, type ReplayJob, type ReplayRound } from './replay-job.js';
import { ceremonyRestart } from './replay-threshold.js';
import { errorMessage } from '../errors.js';
import { ceremonyRestarts } from '../config/schemas.js';
import { stepReport, TRAINING_STEP_REPORTS } from '../vertical/step-reports.js';
import { bundleRotationSteps, collectiveTranscript, verticalCollectiveKeys, verticalKeyDigest } from '../he/key-ceremony.js';
import { shareCommitment } from '../he/threshold/commitment.js';
import { ThresholdContext } from '../he/threshold/context.js';
import { paramsFingerprint, VERTICAL_THRESHOLD_CKKS_PARAMS } from '../he/params.js';

type Entry = ReturnType<typeof readLedger>['entries'][number];
interface BlobRef {
  name: string;
  sha256: Uint8Array;
  size: number;
}

interface Relay {
  from: string;
  to: string;
  kind: string;
}

export async function replayVerticalJob(jobId: string, entries: Entry[], blob: (ref: BlobRef) => Promise<Uint8Array>): Promise<ReplayJob> {
  const { job, fail } = startReplay(jobId);
  let guest = '';
  let hosts: string[] = [];
  let lastStep = 0;
  let epochOk = true;
  const epochParts = new Map<number, Record<string, string>>();
  let finalized: { epoch: number; parts: Record<string, string> } | undefined;
  const collective = new CollectiveRecord();
  const bound = new Set<string>();
  let keysReady = 0;
  for (const { seq, entry, body } of entries) {
    const b = body as Record<string, any>;
    const blobOf = async (name: string) => {
      const ref = (entry.blobs as BlobRef[] | undefined)?.find((r) => r.name === name);
      return ref ? blob(ref) : undefined;
    };
    switch (entry.kind) {
      case 'key_share_committed':
      case 'key_share_revealed':
      case 'key_ceremony_restarted':
      case 'collective_key_ready':
      case 'decryption_shares':
        await collective.entry(jobId, entry.kind, b, blobOf, (message) => fail(seq, message));
        break;
      case 'job_submitted':
        job.name = b.name;
        job.purpose = b.purpose;
        job.submitter = b.submitter;
        guest = b.guest;
        hosts = b.hosts;
        collective.restartBound = ceremonyRestarts({ encryption: b.encryption ?? {} });
        break;
      case 'data_bound':
        bound.add(b.participant);
        break;
      case 'keys_ready':
        // One set of keys per job: a coordinator restarted before keys_ready resumes with the keys it made (job_resumed).
        if (++keysReady > 1) fail(seq, "a second keys_ready: the job's keys were put in place twice");
        break;
      case 'job_resumed':
        if (b.before === 'keys_ready') {
          const unbound = [guest, ...hosts].filter((o) => !bound.has(o));
          if (unbound.length > 0 || keysReady > 0 || lastStep > 0 || b.steps_done !== 0 || typeof b.setup_sent_again !== 'boolean') {
            fail(
              seq,
              `a resumption before keys_ready that does not follow every party's acceptance and precede the keys and every step${unbound.length > 0 ? ` (${unbound.join(', ')} not bound)` : ''}`,
            );
          }
        }
        break;
      case 'step_completed': {
        if (keysReady === 0) fail(seq, `step ${b.step} completed before the job's keys were in place (no keys_ready)`);
        if (b.step !== lastStep + 1 && b.step !== lastStep) fail(seq, `step ${b.step} follows step ${lastStep}`);
        lastStep = b.step;
        if (b.name === 'batch') {
          const problem = checkBatch(b.relayed as Relay[], b.decrypted as { party: string }[], guest, hosts) ?? collective.checkOpened(b.decrypted as { party: string; sha256: string }[]);
          if (problem) {
            epochOk = false;
            fail(seq, `epoch ${b.epoch} batch ${b.batch}: ${problem}`);
          }
        }
        if (b.name === 'finalize') {
          let reports: [string, { epoch: number; part_sha256: string }][];
          try {
            reports = Object.entries(b.reports as Record<string, unknown>).map(([org, r]) => [org, stepReport(TRAINING_STEP_REPORTS, 'finalize', r, org)]);
          } catch (err) {
            fail(seq, errorMessage(err));
            break;
          }
          finalized = { epoch: reports[0]![1].epoch, parts: Object.fromEntries(reports.map(([org, r]) => [org, r.part_sha256])) };
          const committed = epochParts.get(finalized.epoch);
          const weights = b.parts_sha256 as Record<string, string>;
          if (!committed || [guest, ...hosts].some((o) => committed[o] !== weights[o])) {
            fail(seq, `the parts kept at the end are not the weights every party committed to at the close of epoch ${finalized.epoch}`);
          }
        }
        break;
      }
      case 'epoch_closed': {
        epochParts.set(b.epoch, b.parts_sha256);
        const round: ReplayRound = {
          round: b.epoch,
          purpose: 'epoch',
          contributors: [guest, ...hosts],
          rowsByParty: {},
          trainLoss: null,
          validationAuc: b.validation_auc ?? null,
          validationKs: b.validation_ks ?? null,
          roleByParty: Object.fromEntries([[guest, 'guest'], ...hosts.map((h) => [h, 'host'])]),
          sumOk: epochOk,
          modelOk: [guest, ...hosts].every((o) => typeof b.parts_sha256?.[o] === 'string'),
        };
        job.rounds.push(round);
        epochOk = true;
        break;
      }
      case 'model_published': {
        job.publishedModel = b.model_sha256;
        const ref = (entry.blobs as BlobRef[]).find((r) => r.name === 'manifest.json');
        const manifest = ref ? await blob(ref) : undefined;
        const manifestOk = manifest !== undefined && sha256Hex(manifest) === b.model_sha256 && hex(ref!.sha256) === b.model_sha256;
        const parts = manifest ? (JSON.parse(Buffer.from(manifest).toString('utf8')).parts as Record<string, { sha256: string }>) : {};
        const partsOk = finalized !== undefined && [guest, ...hosts].every((o) => parts[o]?.sha256 === finalized!.parts[o]);
        job.publishedModelOk = manifestOk && partsOk;
        if (!job.publishedModelOk) fail(seq, 'the published manifest does not commit to the parts every party kept at the end of training');
        break;
      }
      case 'job_ended':
        job.state = b.state;
        break;
    }
  }
  if (job.state === 'succeeded' && job.publishedModel === null) job.failures.push('the job ended as succeeded but no model_published entry exists');
  return job;
}

/** What one mini-batch must show: the messages of docs/protocol-vertical.md §3, each exactly once. */
function checkBatch(relayed: Relay[], decrypted: { party: string }[], guest: string, hosts: string[]): string | undefined {
  const count = (from: string, to: string, kind: string) => relayed.filter((r) => r.from === from && r.to === to && r.kind === kind).length;
  for (const h of hosts) {
    if (count(h, guest, 'train.partial') !== 1) return `${h} sent ${count(h, guest, 'train.partial')} encrypted partial-score vectors to ${guest}, not 1`;
    if (count(guest, h, 'train.fore_gradient') !== 1) return `${guest} sent ${count(guest, h, 'train.fore_gradient')} fore-gradients to ${h}, not 1`;
  }
  const expected = relayed.length === 2 * hosts.length;
  if (!expected) return `${relayed.length} payloads were relayed where the protocol sends ${2 * hosts.length}`;
  for (const party of [guest, ...hosts]) {
    const n = decrypted.filter((d) => d.party === party).length;
    if (n !== 1) return `the arbiter decrypted ${n} gradients for ${party}, not 1`;
  }
  if (decrypted.length !== hosts.length + 1) return `the arbiter decrypted ${decrypted.length} ciphertexts where the protocol decrypts ${hosts.length + 1}`;
  return undefined;
}

/**
 * What a vertical job under a collective gradient key adds to its record: the ceremony (as for a horizontal one,
 * with the arbiter among the shareholders; restarted at most encryption.ceremony_restarts times, each restart before
 * any key is in place) and the decryption shares of each masked gradient, all under the one key of the last attempt.
 */
class CollectiveRecord {
  private readonly commitments = new Map<string, Uint8Array>();
  private readonly revealed = new Map<string, Uint8Array>();
  private shareholders: string[] = [];
  /** The job's bound on ceremony restarts (from its job_submitted), and how many the record holds. */
  restartBound = 0;
  private restarts = 0;
  private keyReady = false;
  /** `giver|ciphertext|digest` and `giver|label|purpose` of every share given: one each. */
  private readonly given = new Set<string>();
  /** The givers of the shares recorded for each ciphertext (by the digest the step records). */
  private readonly givers = new Map<string, Set<string>>();

  async entry(jobId: string, kind: string, b: Record<string, any>, blob: (name: string) => Promise<Uint8Array | undefined>, fail: (message: string) => void): Promise<void> {
    if (kind === 'key_ceremony_restarted') {
      // A restart after the key (or a share under it) would let a coordinator gather two keys' shares for one ciphertext.
      this.restarts = ceremonyRestart(b.attempt, { keyReady: this.keyReady, sharesGiven: this.given.size, restarts: this.restarts, bound: this.restartBound }, fail);
      // The next attempt's shares are fresh: nothing of the abandoned attempt counts.
      this.commitments.clear();
      this.revealed.clear();
    } else if (kind === 'key_share_committed') this.commitments.set(b.participant, Buffer.from(b.commitment, 'hex'));
    else if (kind === 'key_share_revealed') {
      const share = await blob('share');
      if (share) this.revealed.set(b.participant, share);
      else fail(`the key share revealed by ${b.participant} is not in the record`);
    } else if (kind === 'collective_key_ready') await this.checkKeys(jobId, b, fail);
    else if (kind === 'decryption_shares') {
      if (!this.keyReady) fail(`a decryption share from ${b.participant} before the collective key was in place`);
      for (const [key, what] of [
        [`${b.participant}|ciphertext|${b.ciphertext_sha256}`, `ciphertext ${String(b.ciphertext_sha256).slice(0, 16)}…`],
        [`${b.participant}|label|${b.purpose}`, `"${b.purpose}"`],
      ] as const) {
        if (this.given.has(key)) fail(`${b.participant} gave a second decryption share for ${what}`);
        this.given.add(key);
      }
      if (!this.shareholders.includes(b.participant)) fail(`a decryption share from ${b.participant}, who holds no share of the job's collective key`);
      const givers = this.givers.get(b.ciphertext_sha256) ?? new Set<string>();
      this.givers.set(b.ciphertext_sha256, givers.add(b.participant));
    }
  }

  /** Every revealed share matches its commitment, and they add up to the recorded keys (recomputed here). */
  private async checkKeys(jobId: string, b: Record<string, any>, fail: (message: string) => void): Promise<void> {
    if (this.keyReady) fail('a second collective key: every ciphertext of a job is under the one key of its ceremony');
    if ((b.attempt ?? 0) !== this.restarts) fail(`the collective key is recorded for attempt ${b.attempt ?? 0} of the ceremony; the record restarted it ${this.restarts} times`);
    this.keyReady = true;
    this.shareholders = b.parties as string[];
    const context = await ThresholdContext.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
    try {
      const fingerprint = paramsFingerprint(VERTICAL_THRESHOLD_CKKS_PARAMS);
      if (b.params_fingerprint !== hex(fingerprint)) fail('the collective key was made under other CKKS parameters than a vertical job uses');
      const transcript = collectiveTranscript(jobId, this.shareholders, fingerprint, 'vertical', this.restarts);
      if (sha256Hex(transcript) !== b.transcript_sha256) fail("the collective key's transcript is not the job's");
      const parties = this.shareholders.map((organisation) => ({
        organisation,
        commitment: this.commitments.get(organisation) ?? new Uint8Array(32),
        share: this.revealed.get(organisation) ?? new Uint8Array(),
      }));
      for (const p of parties)
        if (!Buffer.from(shareCommitment(transcript, p.organisation, p.share)).equals(Buffer.from(p.commitment)))
          fail(`the key share recorded for ${p.organisation} does not match the commitment it made`);
      // The shares say which rotations the key was made for: a ledger from before the class sums moved into the
      // decryption (2026-12-07) holds keys for them too.
      const first = parties[0]!;
      const steps = bundleRotationSteps(context.degree / 2, first.organisation, first.share);
      if (!steps) fail(`the key shares recorded for ${first.organisation} hold Galois-key shares for no rotation set fedcredit made`);
      else if (hex(verticalKeyDigest(verticalCollectiveKeys(context, transcript, steps, parties))) !== b.public_key_sha256)
        fail('the recorded collective keys are not the sum of the recorded key shares');
    } catch (err) {
      fail(`the collective keys do not follow from the recorded key shares (${errorMessage(err)})`);
    } finally {
      context.dispose();
    }
  }

  /** Under a collective key, each gradient a batch decrypted was opened with one share of every shareholder. */
  checkOpened(decrypted: { party: string; sha256: string }[]): string | undefined {
    if (this.shareholders.length === 0) return undefined;
    for (const d of decrypted) {
      const givers = this.givers.get(d.sha256) ?? new Set<string>();
      const missing = this.shareholders.filter((o) => !givers.has(o));
      if (missing.length > 0) return `${d.party}'s gradient was opened without a decryption share of ${missing.join(', ')}`;
    }
    return undefined;
  }
}
