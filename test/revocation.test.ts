/**
 * Revocation cuts live sessions: a participant whose certificate is revoked in the middle of a horizontal job is
 * cut off (its control stream and its job watch) as soon as the coordinator reloads the revocation list, contributes
 * to no later round, cannot connect again, and the ledger records the revocation; the job goes on with the others.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { revokeCertificate } from '../src/pki/ca.js';
import { readLedger } from '../src/ledger/read.js';
import { uciHomoFile } from '../src/data/public-datasets.js';
import type { EphemeralFederation } from '../src/federation/ephemeral.js';
import type { JobEvent } from '../src/wire/messages.js';
import { DATASETS, horizontalJob, HOMO_PARTIES, TestFederation, uciHomoSpec } from './helpers/federation.js';

describe('revocation of a participant in the middle of a job', () => {
  let fed: EphemeralFederation | undefined;
  afterAll(async () => {
    await fed?.stop();
  });

  it('closes its stream and its job watch within seconds (the watch with FC_PERMISSION_DENIED and the fix); later rounds go on without it; the ledger records it', async () => {
    const names = ['bank-a', 'bank-b', 'bank-c'];
    fed = await TestFederation.start(names.map((name, i) => ({ name, data: uciHomoSpec(uciHomoFile(DATASETS, HOMO_PARTIES[i]!)) })));
    const client = await fed.client();
    const jobId = await client.submitJob(
      JSON.stringify(horizontalJob({ participants: names, training: { rounds: 60, min_participants: 2, round_timeout_s: 20, max_round_retries: 5 }, encryption: { scheme: 'plaintext' } })),
      'test-bank',
    );
    // bank-c follows the job too (`fedcredit job watch` with its participant certificate): revoked, it is cut as well.
    const cClient = await fed.client('bank-c', 'participant');
    const cWatch = cClient
      .watchJob(jobId, () => undefined)
      .then(
        (last) => ({ last, at: Date.now() }),
        (err: unknown) => ({ err, at: Date.now() }),
      );
    const events: JobEvent[] = [];
    let revokedAt = 0;
    let revokedAfterRound = 0;
    const last = await client.watchJob(jobId, (e) => {
      events.push(e);
      if (!revokedAt && e.progress && e.progress.round >= 3) {
        revokedAt = Date.now();
        revokedAfterRound = e.progress.round;
        void revokeCertificate(join(fed!.dir, 'pki'), { organisation: 'bank-c', role: 'participant' });
      }
    });
    expect(last.state, last.message).toBe('succeeded');
    expect(revokedAt).toBeGreaterThan(0);

    const coordinatorLog = readFileSync(join(fed.dir, 'logs', 'coordinator.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg: string; participant?: string; time: string });
    const cut = coordinatorLog.find((l) => l.msg.includes('its certificate was revoked') && l.participant === 'bank-c');
    expect(cut, "the coordinator closed bank-c's stream").toBeDefined();
    // The CRL file is polled every second; signing and writing it takes a moment more.
    expect(Date.parse(cut!.time) - revokedAt).toBeLessThan(10_000);

    // bank-c's watch was cut as its stream was, long before the job ended, with the cause and a fix.
    const watched = await cWatch;
    expect(watched).toMatchObject({
      err: {
        code: 'FC_PERMISSION_DENIED',
        message: 'certificate no longer valid (revoked)',
        hint: expect.stringMatching(/no longer accepts this identity's certificate \(revoked or expired\).*fedcredit pki request/),
      },
    });
    expect(watched.at - revokedAt).toBeLessThan(10_000);
    cClient.close();

    // Rounds that closed well after the cut (a round takes a fraction of a second here) went on without bank-c.
    const cutAt = Date.parse(cut!.time);
    const later = events.filter((e) => e.progress && e.progress.unit === 'round' && e.unixMs > cutAt + 1500);
    expect(later.length).toBeGreaterThan(5);
    for (const e of later) expect(e.progress!.participants, `round ${e.progress!.round}`).not.toContain('bank-c');
    expect(events.filter((e) => e.progress && e.progress.round <= revokedAfterRound).every((e) => e.progress!.participants.includes('bank-c'))).toBe(true);

    const ledger = readLedger(fed.ledgerDir);
    const revoked = ledger.entries.filter((e) => e.entry.kind === 'participant_revoked' && e.entry.jobId === jobId);
    expect(revoked.map((e) => e.body.participant)).toEqual(['bank-c']);
    expect(String(revoked[0]!.body.reason)).toMatch(/revoked/);
    // The participant is told why, and cannot come back: the coordinator refuses its certificate at the handshake.
    const participantLog = readFileSync(join(fed.dir, 'logs', 'bank-c.log'), 'utf8');
    expect(participantLog).toMatch(/UNAUTHENTICATED: certificate no longer valid \(revoked/);
    const refusedAgain = readFileSync(join(fed.dir, 'logs', 'coordinator.log'), 'utf8')
      .split('\n')
      .filter((l) => /certificate revoked/.test(l) && /handshake|refused/i.test(l));
    expect(refusedAgain.length).toBeGreaterThan(0);
  });
});
