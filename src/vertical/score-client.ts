/**
 * The guest's side of `fedcredit score`: put the ids in the guest node's score-requests folder, submit a
 * vertical-score job that names only that file, wait for it, and read the scores the guest node wrote.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CoordinatorClient } from '../client.js';
import { ErrorCode, FedcreditError, errorMessage, isFedcreditError } from '../errors.js';
import type { JobEvent } from '../wire/messages.js';
import type { Transport } from '../wire/transport.js';

export interface ScoreRequest {
  coordinator: string;
  /** Where the address came from, named if the coordinator cannot be reached. */
  coordinatorSource?: string;
  /** The bank's submitter identity (or plaintext in tests). */
  transport: Transport;
  /** The guest's organisation and state folder (its participant config's). */
  organisation: string;
  stateDir: string;
  modelJob: string;
  ids: string[];
  /** Absent: the model job's (each party refuses a format that differs from the one its model was trained with). */
  idFormat?: 'uscc' | 'any';
  purpose: string;
  /** Told the scoring job's id as soon as the coordinator gives it. */
  onSubmitted?: (jobId: string) => void;
}

export interface ScoreResult {
  jobId: string;
  message: string;
  /** scores.csv as the guest wrote it: enterprise_id, pd, score, hosts_missing. */
  csv: string;
}

export async function requestScores(r: ScoreRequest): Promise<ScoreResult> {
  const client = new CoordinatorClient(r.coordinator, r.transport, r.coordinatorSource);
  try {
    const model = await client.getJob(r.modelJob);
    const [guest, ...hosts] = model.participants;
    if (guest !== r.organisation) {
      throw new FedcreditError(
        ErrorCode.JOB_INVALID,
        `${r.organisation} is not the guest of ${r.modelJob} (the guest is ${guest})`,
        "run `fedcredit score` with the guest's config: the scores are computed on, and stay with, the guest",
      );
    }
    const requests = join(r.stateDir, 'score-requests');
    await mkdir(requests, { recursive: true, mode: 0o700 });
    const idsFile = `request-${Date.now()}-${randomBytes(4).toString('hex')}.csv`;
    await writeFile(join(requests, idsFile), r.ids.join('\n') + '\n', { mode: 0o600 });
    const spec = { name: `score-${r.modelJob}`, kind: 'vertical-score', purpose: r.purpose, model_job: r.modelJob, guest, hosts, ids_file: idsFile, ...(r.idFormat ? { id_format: r.idFormat } : {}) };
    const jobId = await client.submitJob(stringify(spec), r.organisation);
    r.onSubmitted?.(jobId);
    const last = await followThroughRestarts(client, jobId);
    if (last.state !== 'succeeded') {
      // A failure that names its fix needs no second, vaguer one.
      const named = last.message.includes('\n  fix: ');
      throw new FedcreditError(ErrorCode.JOB_FAILED, `scoring job ${jobId} ${last.state}: ${last.message}`, named ? '' : "see the participants' logs");
    }
    return { jobId, message: last.message, csv: await readFile(join(r.stateDir, 'jobs', jobId, 'scores.csv'), 'utf8') };
  } finally {
    client.close();
  }
}

/** How long a scoring request waits for a coordinator that went away to be back (it then resumes the job). */
const COORDINATOR_RETURN_MS = 120_000;

/** The job's last event, watched again when the coordinator restarts in the middle of it. */
async function followThroughRestarts(client: CoordinatorClient, jobId: string): Promise<JobEvent> {
  let contact = Date.now();
  for (;;) {
    try {
      const last = await client.watchJob(jobId, () => (contact = Date.now()));
      if (last.state === 'succeeded' || last.state === 'failed') return last;
    } catch (err) {
      const fatal = isFedcreditError(err) && (err.code === ErrorCode.NOT_FOUND || err.code === ErrorCode.PERMISSION_DENIED);
      if (fatal || Date.now() - contact > COORDINATOR_RETURN_MS) {
        throw new FedcreditError(
          isFedcreditError(err) ? err.code : ErrorCode.UNAVAILABLE,
          `scoring job ${jobId}: ${errorMessage(err)}`,
          isFedcreditError(err) && err.hint ? err.hint : "see the coordinator's log; run `fedcredit score` again once it is back",
        );
      }
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
