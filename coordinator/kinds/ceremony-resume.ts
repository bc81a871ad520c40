/**
 * Where a job's collective key ceremony (encryption.scheme ckks-threshold) stood when the coordinator stopped, for a
 * restarted coordinator to start it again rather than fail the job: nothing is encrypted under a key before it is in
 * place, so a new attempt with fresh shares from every shareholder loses nothing (docs/threshold-ckks.md, "A party
 * lost during the key ceremony"; the parties take it as after a lost party).
 */
import { existsSync } from 'node:fs';
import type { LedgerReadEntry } from '../../src/ledger/read.js';
import { boxKeysFile, type CeremonyResume } from '../job-base.js';

/**
 * The restart to run, or why the job cannot be resumed: once the ledger records the collective key, a new ceremony
 * would make a second key (the parties and `audit replay` refuse it); before every party's acceptance is recorded, or
 * without the box keys kept at acceptance, there is no ceremony to restart; beyond encryption.ceremony_restarts the
 * parties refuse it.
 */
export function ceremonyResumePoint(job: { id: string; parties: string[]; shareholders: number; bound: number }, list: LedgerReadEntry[], stateDir: string): CeremonyResume | { reason: string } {
  if (list.some((e) => e.entry.kind === 'collective_key_ready'))
    return { reason: "the coordinator restarted after the job's collective key was made but before its first use was recorded; a new key ceremony would make a second key; resubmit the job" };
  const accepted = acceptanceProblem(job, list, stateDir);
  if (accepted) return accepted;
  const restarts = list.filter((e) => e.entry.kind === 'key_ceremony_restarted');
  if (restarts.length >= job.bound)
    return {
      reason: `the coordinator restarted during the key ceremony, which was restarted ${restarts.length} times already, the job's bound (encryption.ceremony_restarts ${job.bound}); resubmit the job`,
    };
  // The step the stop interrupted, from what the current attempt recorded (for the record and the watchers).
  const last = restarts.at(-1);
  const current = last ? list.slice(list.indexOf(last) + 1) : list;
  const count = (kind: string) => current.filter((e) => e.entry.kind === kind).length;
  const revealed = count('key_share_revealed') >= job.shareholders;
  const step = count('key_share_reshared') > 0 ? 'reshare' : revealed ? 'key' : count('key_share_committed') >= job.shareholders ? 'reveal' : 'commit';
  return { attempt: restarts.length + 1, step };
}

/** Why a job the coordinator stopped cannot go on from every party's acceptance: one that is not recorded, or the box keys not kept. */
export function acceptanceProblem(job: { id: string; parties: string[] }, list: LedgerReadEntry[], stateDir: string): { reason: string } | undefined {
  const accepted = new Set(list.filter((e) => e.entry.kind === 'data_bound').map((e) => e.body.participant));
  const pending = job.parties.filter((org) => !accepted.has(org));
  if (pending.length > 0) return { reason: `the coordinator restarted before ${pending.join(', ')} accepted the job; resubmit the job` };
  const file = boxKeysFile(stateDir, job.id);
  if (!existsSync(file)) return { reason: `the parties' box keys of the job are not in ${file}; resubmit the job` };
  return undefined;
}
