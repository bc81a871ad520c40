/**
 * Where a collective key's ceremony stood when the coordinator stopped (coordinator/kinds/ceremony-resume.ts), and a
 * vertical training job stopped before keys_ready (kinds/vertical-resume.ts `keysResumePoint`): the restart to run,
 * or why the job cannot be resumed. The process tests (test/vertical-ceremony-rejoin.test.ts,
 * test/horizontal-ceremony-rejoin.test.ts) run the restart; here, every refusal, from ledger entries made up.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import type { LedgerReadEntry } from '../src/ledger/read.js';
import { ceremonyResumePoint } from '../coordinator/kinds/ceremony-resume.js';
import { boxKeysFile } from '../coordinator/job-base.js';
import { keysResumePoint, verticalResumePoint } from '../coordinator/kinds/vertical-resume.js';
import { arbiterKeyFile, arbiterSetupFile, arbiterShareFiles } from '../coordinator/vertical-run.js';
import { encodeMessage } from '../src/wire/proto.js';
import type { VerticalSetup } from '../src/wire/messages.js';
import { hex, sha256 } from '../src/bytes.js';
import { bankTaxSetup } from './helpers/vertical.js';

const entry = (kind: string, body: Record<string, unknown> = {}) => ({ entry: { kind }, body }) as unknown as LedgerReadEntry;
const parties = ['bank', 'tax-bureau'];
const job = { id: 'job-1', parties, shareholders: 3, bound: 2 };
const accepted = [entry('job_submitted'), ...parties.map((participant) => entry('data_bound', { participant }))];
const committed = (participant: string) => entry('key_share_committed', { participant });
const revealed = (participant: string) => entry('key_share_revealed', { participant });

describe('a ceremony stopped by a coordinator restart', () => {
  const dir = mkdtempSync(`${tmpdir()}/fc-ceremony-resume-`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const withBoxKeys = () => {
    mkdirSync(dirname(boxKeysFile(dir, job.id)), { recursive: true });
    writeFileSync(boxKeysFile(dir, job.id), new Uint8Array());
  };

  it('is restarted at the attempt after the recorded ones, naming the step the stop interrupted', () => {
    withBoxKeys();
    expect(ceremonyResumePoint(job, accepted, dir)).toEqual({ attempt: 1, step: 'commit' });
    const shareholders = ['arbiter', ...parties];
    expect(ceremonyResumePoint(job, [...accepted, ...shareholders.map(committed)], dir)).toEqual({ attempt: 1, step: 'reveal' });
    expect(ceremonyResumePoint(job, [...accepted, ...shareholders.map(committed), ...shareholders.map(revealed)], dir)).toEqual({ attempt: 1, step: 'key' });
    // Only the current attempt's records count: attempt 1 had begun its commit step.
    const restarted = [...accepted, ...shareholders.map(committed), ...shareholders.map(revealed), entry('key_ceremony_restarted', { attempt: 1 }), committed('arbiter')];
    expect(ceremonyResumePoint(job, restarted, dir)).toEqual({ attempt: 2, step: 'commit' });
  });

  it('is not restarted once the key is recorded, before every acceptance, without the box keys, or past encryption.ceremony_restarts', () => {
    withBoxKeys();
    expect(ceremonyResumePoint(job, [...accepted, entry('collective_key_ready')], dir)).toEqual({ reason: expect.stringMatching(/a new key ceremony would make a second key; resubmit the job/) });
    expect(ceremonyResumePoint(job, accepted.slice(0, 2), dir)).toEqual({ reason: 'the coordinator restarted before tax-bureau accepted the job; resubmit the job' });
    const restarts = [1, 2].map((attempt) => entry('key_ceremony_restarted', { attempt }));
    expect(ceremonyResumePoint(job, [...accepted, ...restarts], dir)).toEqual({ reason: expect.stringMatching(/restarted 2 times already, the job's bound \(encryption.ceremony_restarts 2\)/) });
    rmSync(boxKeysFile(dir, job.id));
    expect(ceremonyResumePoint(job, accepted, dir)).toEqual({ reason: expect.stringMatching(/the parties' box keys of the job are not in .*box-keys.bin; resubmit the job/) });
  });
});

describe('a vertical training job stopped by a coordinator restart before keys_ready, every party having accepted it', () => {
  const dir = mkdtempSync(`${tmpdir()}/fc-keys-resume-`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const ckks = { id: 'job-ckks', parties, scheme: 'ckks' as const, bound: 0 };
  const threshold = { id: 'job-threshold', parties, scheme: 'ckks-threshold' as const, bound: 2 };
  const keep = (file: string, bytes: Uint8Array) => {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, bytes);
  };
  const setup = { ...bankTaxSetup(new Uint8Array([1, 2]), new Uint8Array(32).fill(7)), ckksPublicKey: new Uint8Array([9, 9, 9]) };

  it('ckks: makes the keys again when no setup was kept (none was sent), else sends the kept setup with the kept secret key, or fails naming the missing key', () => {
    keep(boxKeysFile(dir, ckks.id), new Uint8Array());
    expect(keysResumePoint(ckks, accepted, dir)).toEqual({ keys: { setup: undefined } });
    keep(arbiterSetupFile(dir, ckks.id), encodeMessage('VerticalSetup', setup));
    expect(keysResumePoint(ckks, accepted, dir)).toEqual({
      reason: expect.stringMatching(/the arbiter's CKKS secret key of the job, whose setup was sent, is not in .*ckks-secret.key; resubmit the job/),
    });
    keep(arbiterKeyFile(dir, ckks.id), new Uint8Array([5]));
    const resumed = keysResumePoint(ckks, accepted, dir) as { keys: { setup: VerticalSetup; secretKey: Uint8Array } };
    expect(hex(resumed.keys.secretKey)).toBe('05');
    expect([resumed.keys.setup.ckksPublicKey, resumed.keys.setup.psiSalt, resumed.keys.setup.paramsFingerprint].map(hex)).toEqual(
      [setup.ckksPublicKey, setup.psiSalt, setup.paramsFingerprint].map(hex),
    );
    expect(keysResumePoint(ckks, accepted.slice(0, 2), dir)).toEqual({ reason: 'the coordinator restarted before tax-bureau accepted the job; resubmit the job' });
    keep(arbiterSetupFile(dir, ckks.id), new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    expect(keysResumePoint(ckks, accepted, dir)).toEqual({ reason: expect.stringMatching(/the job's setup kept in .*setup.bin does not read \(.+\); resubmit the job/) });
  });

  it("ckks-threshold: restarts the ceremony before collective_key_ready; after it, restores the arbiter's share or fails naming the missing file", () => {
    keep(boxKeysFile(dir, threshold.id), new Uint8Array());
    expect(keysResumePoint(threshold, accepted, dir)).toEqual({ ceremony: { attempt: 1, step: 'commit' } });
    const ready = [...accepted, entry('collective_key_ready', { public_key_sha256: 'ab', attempt: 1 })];
    expect(keysResumePoint(threshold, ready, dir)).toEqual({
      reason: expect.stringMatching(/the arbiter's share of the job's collective key is not in .*collective-key-share.fcth; resubmit the job/),
    });
    const files = arbiterShareFiles(dir, threshold.id);
    keep(files.keyShare, new Uint8Array([1]));
    keep(files.keySums, new Uint8Array([2]));
    keep(files.sharesGiven, new TextEncoder().encode(JSON.stringify({ issued: [] })));
    expect(keysResumePoint(threshold, ready, dir)).toEqual({
      keys: { setup: undefined, arbiterShare: { secretKey: Buffer.from([1]), keySums: Buffer.from([2]), keySha256: 'ab', keyAttempt: 1, issued: [] } },
    });
  });

  it('after keys_ready, resends a kept setup only if it is the one keys_ready records, else fails naming what differs', () => {
    const job = { ...ckks, id: 'job-ckks-ready' };
    keep(arbiterKeyFile(dir, job.id), new Uint8Array([5]));
    keep(arbiterSetupFile(dir, job.id), encodeMessage('VerticalSetup', setup));
    const ready = (body: Record<string, unknown>) => [...accepted, entry('keys_ready', { psi_salt: hex(setup.psiSalt), box_keys: {}, public_key_sha256: hex(sha256(setup.ckksPublicKey)), ...body })];
    const point = verticalResumePoint(job.id, 'ckks', ready({}), dir) as { setup: VerticalSetup };
    expect(hex(point.setup.ckksPublicKey)).toBe(hex(setup.ckksPublicKey));
    expect(verticalResumePoint(job.id, 'ckks', ready({ public_key_sha256: 'ab' }), dir)).toEqual({
      reason: expect.stringMatching(/the job's setup kept in .*setup.bin is not the one keys_ready records \(its CKKS public key\); resubmit the job/),
    });
    expect(verticalResumePoint(job.id, 'ckks', ready({ psi_salt: '00' }), dir)).toEqual({ reason: expect.stringMatching(/\(its PSI salt\)/) });
  });
});
