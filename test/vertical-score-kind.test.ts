/**
 * A scoring job at a party: which rows it offers (the guest scores its applicants without an outcome, rows kept for
 * scoring only, with its kept rows; a host offers only its kept rows, so rows its owner holds without a label never
 * enter its blinded id set or its partial scores), and the guest's refusal of a scoring job it did not ask for.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verticalScore } from '../participant/kinds/vertical-score.js';
import type { Offer, PartyNode } from '../participant/kinds/kind.js';
import type { VerticalScoreSpec } from '../src/config/schemas.js';

describe('a scoring job at a party', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fedcredit-score-kind-'));
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));
  const spec = { kind: 'vertical-score', guest: 'bank', hosts: ['tax-bureau'], model_job: 'job-20261207-00000000', ids_file: 'applicants.csv' } as unknown as VerticalScoreSpec;
  /** A node double: what the kind asks of it (its rows, its quota, its job folders, a channel) is recorded. */
  const node = (org: string, asked: string[]) =>
    ({
      org,
      scoringQuota: {
        admit: () => {
          asked.push('quota');
          return {};
        },
      },
      store: { save: () => void asked.push('save'), end: () => undefined, dirOf: (id: string) => `/nonexistent/${id}` },
      stateDir,
      log: { info: () => undefined, warn: () => undefined },
      verticalIo: () => {
        asked.push('channel');
        return {};
      },
      scoringData: (asGuest: boolean) => {
        asked.push(asGuest ? 'scoring-only rows' : 'kept rows');
        // The kept model part does not exist here: the party refuses after choosing its rows.
        return { ids: [], x: [], features: [] };
      },
    }) as unknown as PartyNode;
  const offer = (refusals: [string, string][]) =>
    ({
      jobId: 'job-20261207-00000001',
      specJson: '{}',
      submitter: 'bank',
      refuse: async (code: string, reason: string) => void refusals.push([code, reason]),
      accept: async () => expect.unreachable(),
    }) as unknown as Offer;

  it('a guest refuses a scoring job it did not ask for (no list in its score-requests folder), naming the rule, before its data, its quota or a key is touched', async () => {
    const asked: string[] = [];
    const refusals: [string, string][] = [];
    await verticalScore.accept(node('bank', asked), offer(refusals), spec);
    expect(refusals).toEqual([
      [
        'ids_file',
        expect.stringMatching(/^FC_JOB_REFUSED: bank scores only ids its owner listed in its score-requests folder, and no list applicants.csv is there: bank did not ask for this scoring job/),
      ],
    ]);
    // The refusal travels to the coordinator and the submitter: it names no path of the guest's machine.
    expect(refusals[0]![1]).not.toContain(stateDir);
    expect(asked).toEqual([]);
  });

  it('asks the node for its scoring-only rows as the guest, never as a host', async () => {
    // The guest's owner asked: `fedcredit score` left the list in the guest's score-requests folder.
    mkdirSync(join(stateDir, 'score-requests'), { recursive: true });
    writeFileSync(join(stateDir, 'score-requests', spec.ids_file), 'id\nA\n');
    const asked: string[] = [];
    const refusals: [string, string][] = [];
    await verticalScore.accept(node('bank', asked), offer(refusals), spec);
    await verticalScore.accept(node('tax-bureau', asked), offer(refusals), spec);
    expect(asked.filter((a) => a.endsWith('rows'))).toEqual(['scoring-only rows', 'kept rows']);
    expect(refusals.map(([code]) => code)).toEqual(['model', 'model']);
  });
});
