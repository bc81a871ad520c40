/** Where a vertical job (training or scoring) stands in its ledger, for a restarted coordinator to continue it. */
import { existsSync, readFileSync } from 'node:fs';
import type { LedgerReadEntry } from '../../src/ledger/read.js';
import { sharesGivenFile } from '../../src/he/threshold/shares-given-file.js';
import type { IssuedShareRecord } from '../../src/he/threshold/decrypt.js';
import { errorMessage } from '../../src/errors.js';
import { hex, sha256 } from '../../src/bytes.js';
import { decodeMessage } from '../../src/wire/proto.js';
import type { VerticalSetup } from '../../src/wire/messages.js';
import { arbiterKeyFile, arbiterSetupFile, arbiterShareFiles, type ArbiterShare, type KeysResume, type VerticalResumePoint } from '../vertical-run.js';
import { acceptanceProblem, ceremonyResumePoint } from './ceremony-resume.js';

/** A recorded job file without the sections it left out (recorded as null). */
export const present = (file: Record<string, unknown>) => Object.fromEntries(Object.entries(file).filter(([, v]) => v !== null && v !== undefined));

/**
 * Every step completed (with the parties' reports and state digests, which the job's flow reads again instead of
 * running the step), the attempt to run the interrupted step with, and the arbiter's CKKS secret key (or its share
 * of a collective key, with the shares it gave) from the coordinator's state folder. The parties keep their state
 * in memory, or in their job folders if they restarted too, so the interrupted step runs again from its start at
 * every party.
 */
export function verticalResumePoint(jobId: string, scheme: 'ckks' | 'ckks-threshold' | 'plaintext' | 'none', list: LedgerReadEntry[], stateDir: string): VerticalResumePoint | { reason: string } {
  if (!list.some((e) => e.entry.kind === 'keys_ready')) return { reason: "the coordinator restarted before the job's keys were in place; resubmit the job" };
  let secretKey: Uint8Array | undefined;
  let arbiterShare: VerticalResumePoint['arbiterShare'];
  if (scheme === 'ckks') {
    const file = arbiterKeyFile(stateDir, jobId);
    if (!existsSync(file)) return { reason: `the arbiter's CKKS secret key of the job is not in ${file}; resubmit the job` };
    secretKey = readFileSync(file);
  } else if (scheme === 'ckks-threshold') {
    const kept = keptArbiterShare(jobId, list, stateDir);
    if ('reason' in kept) return kept;
    arbiterShare = kept;
  }
  const steps: VerticalResumePoint['steps'] = new Map();
  for (const e of list) {
    if (e.entry.kind !== 'step_completed') continue;
    const b = e.body as { step: number; name: string; epoch: number; batch: number; parts_sha256?: Record<string, string>; reports?: Record<string, Record<string, unknown>> };
    steps.set(b.step, { name: b.name, epoch: b.epoch, batch: b.batch, parts: b.parts_sha256 ?? {}, reports: b.reports ?? {} });
  }
  const interrupted = Math.max(0, ...steps.keys()) + 1;
  // Kept until every party ran a step with it: a party may have lost it as the coordinator stopped.
  const setup = steps.size === 0 ? keptSetup(stateDir, jobId) : undefined;
  if (setup && 'reason' in setup) return setup;
  const differs = setup ? setupDiffersFromRecord(setup, list.find((e) => e.entry.kind === 'keys_ready')!.body as Record<string, unknown>) : undefined;
  if (differs) return { reason: `the job's setup kept in ${arbiterSetupFile(stateDir, jobId)} is not the one keys_ready records (${differs}); resubmit the job` };
  // Above every attempt of the interrupted step the parties may have been asked for (pauses and resumptions).
  const attempts = list.filter((e) => (e.entry.kind === 'job_paused' || e.entry.kind === 'job_resumed') && e.body.step === interrupted).map((e) => Number(e.body.attempt) || 0);
  const recorded = new Map<string, number>();
  for (const e of list) recorded.set(e.entry.kind, (recorded.get(e.entry.kind) ?? 0) + 1);
  return { steps, nextAttempt: Math.max(0, ...attempts) + 1, recorded, secretKey, arbiterShare, setup };
}

/** What of a kept setup differs from the keys keys_ready recorded (PSI salt, box keys, the arbiter's key digests), if anything. */
function setupDiffersFromRecord(setup: VerticalSetup, ready: Record<string, unknown>): string | undefined {
  if (hex(setup.psiSalt) !== ready.psi_salt) return 'its PSI salt';
  const boxKeys = (ready.box_keys ?? {}) as Record<string, string>;
  if (setup.parties.some((p) => boxKeys[p.organisation] !== hex(p.boxPublicKey))) return 'its box keys';
  if (ready.public_key_sha256 !== undefined && ready.public_key_sha256 !== hex(sha256(setup.ckksPublicKey))) return 'its CKKS public key';
  if (ready.galois_keys_sha256 !== undefined && ready.galois_keys_sha256 !== hex(sha256(setup.galoisKeys))) return 'its Galois keys';
  return undefined;
}

/** The setup the arbiter first sent, if it kept it (arbiterSetupFile). */
function keptSetup(stateDir: string, jobId: string): VerticalSetup | { reason: string } | undefined {
  const file = arbiterSetupFile(stateDir, jobId);
  if (!existsSync(file)) return undefined;
  try {
    return decodeMessage<VerticalSetup>('VerticalSetup', readFileSync(file));
  } catch (err) {
    return { reason: `the job's setup kept in ${file} does not read (${errorMessage(err)}); resubmit the job` };
  }
}

/**
 * The arbiter's share of the job's collective key, the keys' sums and the decryption shares it gave, from the state
 * folder, with the digest and the ceremony's attempt collective_key_ready records.
 */
function keptArbiterShare(jobId: string, list: LedgerReadEntry[], stateDir: string): ArbiterShare | { reason: string } {
  const files = arbiterShareFiles(stateDir, jobId);
  const missing = Object.values(files).find((file) => !existsSync(file));
  if (missing) return { reason: `the arbiter's share of the job's collective key is not in ${missing}; resubmit the job` };
  const ready = list.find((e) => e.entry.kind === 'collective_key_ready')?.body;
  const keySha256 = ready?.public_key_sha256;
  if (typeof keySha256 !== 'string') return { reason: 'the ledger records no collective key of the job (collective_key_ready); resubmit the job' };
  // The ceremony's attempt that made the key (restarts after a lost party), which its transcript names.
  const keyAttempt = typeof ready?.attempt === 'number' ? ready.attempt : 0;
  let issued: IssuedShareRecord[];
  try {
    issued = sharesGivenFile(files.sharesGiven).given?.issued ?? [];
  } catch (err) {
    return { reason: `the arbiter's record of the decryption shares it gave is unreadable (${errorMessage(err)}); resubmit the job` };
  }
  return { secretKey: readFileSync(files.keyShare), keySums: readFileSync(files.keySums), keySha256, keyAttempt, issued };
}

/**
 * A training job the coordinator stopped before `keys_ready`, once every party accepted it (their box keys kept then):
 * during its collective key's ceremony it restarts the ceremony (ceremonyResumePoint); with its keys made (the
 * arbiter's CKKS key written, or collective_key_ready recorded) it restores them, with the setup the arbiter first
 * sent if it kept one (arbiterSetupFile); a ckks job without a kept setup sent none and makes its keys again.
 */
export function keysResumePoint(
  job: { id: string; parties: string[]; scheme: 'ckks' | 'ckks-threshold' | 'plaintext'; bound: number },
  list: LedgerReadEntry[],
  stateDir: string,
): KeysResume | { reason: string } {
  if (job.scheme === 'ckks-threshold' && !list.some((e) => e.entry.kind === 'collective_key_ready')) {
    const ceremony = ceremonyResumePoint({ ...job, shareholders: job.parties.length + 1 }, list, stateDir);
    return 'reason' in ceremony ? ceremony : { ceremony };
  }
  const accepted = acceptanceProblem(job, list, stateDir);
  if (accepted) return accepted;
  const setup = keptSetup(stateDir, job.id);
  if (setup && 'reason' in setup) return setup;
  if (job.scheme === 'ckks-threshold') {
    const arbiterShare = keptArbiterShare(job.id, list, stateDir);
    return 'reason' in arbiterShare ? arbiterShare : { keys: { setup, arbiterShare } };
  }
  if (job.scheme === 'ckks' && setup) {
    const file = arbiterKeyFile(stateDir, job.id);
    if (!existsSync(file)) return { reason: `the arbiter's CKKS secret key of the job, whose setup was sent, is not in ${file}; resubmit the job` };
    return { keys: { setup, secretKey: readFileSync(file) } };
  }
  return { keys: { setup } };
}
