/**
 * Which rows a party offers a scoring job: the guest scores its applicants without an outcome (rows kept for scoring
 * only) with its kept rows; a host offers only its kept rows, so rows its owner holds without a label never enter its
 * blinded id set or its partial scores.
 */
import { describe, expect, it } from 'vitest';
import { verticalScore } from '../participant/kinds/vertical-score.js';
import type { Offer, PartyNode } from '../participant/kinds/kind.js';
import type { VerticalScoreSpec } from '../src/config/schemas.js';

describe('a scoring job at a party', () => {
  it('asks the node for its scoring-only rows as the guest, never as a host', async () => {
    const asked: boolean[] = [];
    const node = (org: string) =>
      ({
        org,
        scoringQuota: { admit: () => ({}) },
        store: { save: () => undefined, end: () => undefined, dirOf: (id: string) => `/nonexistent/${id}` },
        stateDir: '/nonexistent',
        log: { info: () => undefined, warn: () => undefined },
        verticalIo: () => ({}),
        scoringData: (asGuest: boolean) => {
          asked.push(asGuest);
          // The kept model part does not exist here: the party refuses after choosing its rows.
          return { ids: [], x: [], features: [] };
        },
      }) as unknown as PartyNode;
    const refusals: string[] = [];
    const offer = { jobId: 'job-20261207-00000001', specJson: '{}', submitter: 'bank', refuse: async (code: string) => void refusals.push(code), accept: async () => undefined } as unknown as Offer;
    const spec = { kind: 'vertical-score', guest: 'bank', hosts: ['tax-bureau'], model_job: 'job-20261207-00000000' } as unknown as VerticalScoreSpec;
    await verticalScore.accept(node('bank'), offer, spec);
    await verticalScore.accept(node('tax-bureau'), offer, spec);
    expect(asked).toEqual([true, false]);
    expect(refusals).toEqual(['model', 'model']);
  });
});
