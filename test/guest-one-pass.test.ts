/**
 * A guest's start reads its data once: the rows it trains on and its applicants with no outcome yet (an empty or NA
 * label, kept apart for scoring only) are written in one pass over the source, into the same two stores two passes
 * wrote. The source here is a named pipe, which can be read only once: a second pass would wait on it for ever.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestWithUnlabelled } from '../src/data/source.js';
import { GUEST_APPLICANT_BLOCK_BYTES, guestApplicantsSpec, storeSummary, TWO_PASS_STORES, writeGuestApplicants } from './helpers/guest-applicants.js';

const dir = mkdtempSync(join(tmpdir(), 'fedcredit-one-pass-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a guest's rows and its applicants without an outcome", () => {
  it('are stored from one read of the file, as two reads stored them', async () => {
    writeGuestApplicants(join(dir, 'bank.csv'));
    execFileSync('mkfifo', [join(dir, 'bank.pipe')]);
    // The pipe is fed once; a second read of it would find no writer and never end (the test's timeout).
    const writer = createWriteStream(join(dir, 'bank.pipe'));
    writer.end(readFileSync(join(dir, 'bank.csv')));
    const opts = { baseDir: dir, dir: join(dir, 'state', 'rows'), scatter: true, blockBytes: GUEST_APPLICANT_BLOCK_BYTES };
    const stored = await ingestWithUnlabelled(guestApplicantsSpec('bank.pipe'), opts, { dir: join(dir, 'state', 'rows-unlabelled'), keep: true });
    await finished(writer);
    expect(storeSummary(stored.rows)).toEqual(TWO_PASS_STORES.rows);
    expect(storeSummary(stored.unlabelled!)).toEqual(TWO_PASS_STORES.unlabelled);
  }, 20_000);
});
