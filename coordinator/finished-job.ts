/**
 * Jobs that ended before this coordinator started, rebuilt from its ledger: `job status`, `job watch`, `job model`
 * and scoring against a published model work on them as they did before the restart. The ledger holds all of it:
 * the job file (`job_submitted`), the rounds or epochs (`round_closed`, `epoch_closed`), the model's files as blobs
 * (`model_published`), a scoring job's summary (`scores_produced`) and the outcome (`job_ended`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hex, sha256 } from '../src/bytes.js';
import { BLOBS_DIR } from '../src/ledger/records.js';
import type { LedgerReadEntry } from '../src/ledger/read.js';
import { packArtifact } from '../src/model/artifact.js';
import type { JobEvent, JobState, ParticipantMessage, RoundProgress } from '../src/wire/messages.js';
import { JobBase, type JobContext } from './job-base.js';
import { jobKind } from '../src/jobs/registry.js';

/** A job's ledger entries, in ledger order. */
export type JobEntries = LedgerReadEntry[];

/** The job's files in `model_published`, read from the ledger's blob store and checked against their digests. */
function publishedFiles(ledgerDir: string, published: LedgerReadEntry): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  for (const blob of published.entry.blobs) {
    const digest = hex(blob.sha256);
    const bytes = readFileSync(join(ledgerDir, BLOBS_DIR, digest));
    if (hex(sha256(bytes)) !== digest) throw new Error(`blob ${digest} (${blob.name} of entry ${published.seq}) does not match its SHA-256`);
    files[blob.name] = bytes;
  }
  return files;
}

const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : Number.NaN);

export class FinishedJob extends JobBase {
  readonly kind: string;
  private readonly parties: string[];
  private readonly planned: number;
  private readonly history: JobEvent[] = [];
  private readonly published?: LedgerReadEntry;

  /**
   * `list` holds a `job_submitted` and a `job_ended` entry, or `ending` is the body of the `job_ended` entry about
   * to be recorded (so that the job is served while the append waits for the participants' receipts).
   */
  constructor(
    id: string,
    list: JobEntries,
    private readonly ledgerDir: string,
    ctx: JobContext,
    ending?: Record<string, unknown>,
  ) {
    const submitted = list.find((e) => e.entry.kind === 'job_submitted')!;
    const last = list.at(-1)!;
    const ended = ending ? { ...last, entry: { ...last.entry, kind: 'job_ended', unixMs: Date.now() }, body: ending } : list.findLast((e) => e.entry.kind === 'job_ended')!;
    const job = submitted.body;
    super(id, str(job.submitter, 'anonymous'), ctx);
    this.kind = str(job.kind, 'unknown');
    this.parties = Array.isArray(job.participants) ? job.participants.map(String) : [str(job.guest), ...(Array.isArray(job.hosts) ? job.hosts.map(String) : [])].filter(Boolean);
    // A kind this version does not know is served as a one-round job that published a model.
    const finished = jobKind(this.kind)?.finished ?? { plannedUnits: () => 1, producesModel: true };
    this.planned = finished.plannedUnits(job);
    const end = ended.body;
    const state: JobState = end.state === 'succeeded' ? 'succeeded' : 'failed';
    this.state = state;

    // The progress lines a watcher saw while the job ran, then its end.
    let since = submitted.entry.unixMs;
    for (const e of list) {
      const unit = e.entry.kind === 'round_closed' ? 'round' : e.entry.kind === 'epoch_closed' ? 'epoch' : undefined;
      if (!unit) continue;
      const b = e.body;
      const progress: RoundProgress = {
        round: num(b[unit]),
        rounds: this.planned,
        participants: Array.isArray(b.participants) ? b.participants.map(String) : this.parties,
        trainLoss: typeof b.train_loss === 'number' ? b.train_loss : Number.NaN,
        validationAuc: typeof b.validation_auc === 'number' ? b.validation_auc : Number.NaN,
        seconds: (e.entry.unixMs - since) / 1000,
        dropped: Array.isArray(b.dropped) ? b.dropped.map(String) : [],
        unit,
      };
      since = e.entry.unixMs;
      this.roundsDone = progress.round;
      this.history.push({
        jobId: id,
        unixMs: e.entry.unixMs,
        state: 'running',
        stage: 'training',
        message: unit === 'epoch' ? `epoch ${progress.round}/${this.planned}: validation AUC ${progress.validationAuc.toFixed(4)}` : `round ${progress.round}/${this.planned} complete`,
        progress,
      });
    }
    if (typeof end.rounds === 'number') this.roundsDone = end.rounds;
    if (typeof end.epochs === 'number') this.roundsDone = end.epochs;
    if (!finished.producesModel && state === 'succeeded') this.roundsDone = this.planned;
    this.stage = state === 'succeeded' ? 'done' : str(end.stage, 'unknown');
    this.message = str(end.message, state === 'succeeded' ? (finished.producesModel ? 'model published' : 'scores produced') : 'failed');

    if (state === 'succeeded') {
      if (!finished.producesModel) {
        // The scoring job's summary is its `scores_produced` body with the job's id in front (ScoreRun).
        const produced = list.find((e) => e.entry.kind === 'scores_produced');
        if (produced) {
          const summary = Buffer.from(JSON.stringify({ jobId: id, ...produced.body }, null, 2));
          this.modelSha256 = sha256(summary);
          this.artifact = summary;
        }
      } else {
        this.published = list.findLast((e) => e.entry.kind === 'model_published');
        if (this.published) this.modelSha256 = Buffer.from(str(end.model_sha256 ?? this.published.body.model_sha256), 'hex');
      }
    }
    this.history.push({ jobId: id, unixMs: ended.entry.unixMs, state, stage: this.stage, message: this.message, progress: null });
  }

  /** Read from the ledger's blob store when asked, not kept in memory for every job the ledger holds. */
  override modelArtifact(): Uint8Array | undefined {
    return this.published ? packArtifact(publishedFiles(this.ledgerDir, this.published)) : this.artifact;
  }

  get participants(): string[] {
    return this.parties;
  }

  get rounds(): number {
    return this.planned;
  }

  override subscribe(listener: (e: JobEvent) => void): () => void {
    for (const e of this.history) listener(e);
    return () => undefined;
  }

  accepts(_kind: ParticipantMessage['body']): boolean {
    return false;
  }

  async run(): Promise<void> {}
}
