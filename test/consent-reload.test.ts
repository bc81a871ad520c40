/**
 * A data owner edits its participant config while its node runs: a revoked job kind or submitter holds from the next
 * offer (participant/consent-reload.ts, read by the node at each offer); a change to what the rows were loaded under
 * refuses offers until the node restarts. Found by a new user who removed vertical-boost from consent.job_kinds and
 * saw the running node accept the next vertical-boost job and the next scoring request.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { consentNow } from '../participant/consent-reload.js';
import { loadYamlConfig } from '../src/config/load.js';
import { ParticipantConfig } from '../src/config/schemas.js';

const dir = mkdtempSync(join(tmpdir(), 'fedcredit-consent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const example = readFileSync(new URL('../examples/vertical/tax-bureau.yaml', import.meta.url), 'utf8').replace('job_kinds: [vertical-lr]', 'job_kinds: [vertical-lr, vertical-boost]');

describe('consent read again at each offer', () => {
  const file = join(dir, 'tax-bureau.yaml');
  writeFileSync(file, example);
  const started = loadYamlConfig(file, ParticipantConfig, 'participant');

  it('an unchanged file keeps the consent the node started with', () => {
    expect(consentNow(file, started)).toEqual({ consent: started.consent, changed: false });
  });

  it('a job kind or submitter revoked in the file holds for the next offer, without a restart', () => {
    writeFileSync(file, example.replace('job_kinds: [vertical-lr, vertical-boost]', 'job_kinds: [vertical-lr]').replace('submitters: [bank]', 'submitters: [bank-two]'));
    const now = consentNow(file, started);
    expect('consent' in now && now.changed).toBe(true);
    if (!('consent' in now)) return;
    expect(now.consent.job_kinds).toEqual(['vertical-lr']);
    expect(now.consent.submitters).toEqual(['bank-two']);
  });

  it('a change to what the rows were loaded under, or a file broken mid-edit, refuses offers naming the fix', () => {
    writeFileSync(file, example.replace('allow_plaintext: false', 'allow_plaintext: false\n  columns: [invoiced_sales_12m_10k]'));
    const columns = consentNow(file, started);
    expect('refusal' in columns && columns.refusal).toMatch(
      /its participant config changed since this node started in what its rows were loaded under .*consent\.columns.*restart the node \(fedcredit participant --config FILE\)/,
    );
    writeFileSync(file, example.replace('job_kinds: [vertical-lr, vertical-boost]', 'job_kinds: [horizontal]'));
    expect('refusal' in consentNow(file, started)).toBe(true);
    writeFileSync(file, example.replace('job_kinds: [vertical-lr, vertical-boost]', 'job_kinds: [vertical-lr, vertical-bost]'));
    const broken = consentNow(file, started);
    // A refusal goes to the coordinator and the submitter: no path of the owner's machine in it.
    expect('refusal' in broken && broken.refusal).not.toContain(file);
    expect('refusal' in columns && columns.refusal).not.toContain(file);
    expect('refusal' in broken && broken.refusal).toMatch(
      /its participant config no longer reads as valid, so this node cannot tell its owner's consent \(.*job_kinds.*\); fix the file: offers are refused until then/s,
    );
  });
});
