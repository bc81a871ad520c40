import { describe, expect, it } from 'vitest';
import { JobSpec } from '../src/config/schemas.js';
import { offerShares } from '../participant/approvals.js';

const job = (extra: Record<string, unknown>) =>
  JobSpec.parse({ name: 'gmsc', kind: 'vertical-lr', purpose: 'scorecard', guest: 'bank', hosts: ['credit-bureau'], alignment: { id_format: 'any' }, ...extra });

describe('what a data owner is shown of an offer before approving it (fedcredit participant pending)', () => {
  it("names each section that sends a host's data to the guest, and that a lone host's partial scores reach it unmasked", () => {
    const shares = offerShares(job({ binning: {}, scorecard: {}, fairness: { party: 'credit-bureau', column: 'region' } }), 'credit-bureau');
    expect(shares).toEqual([
      'as the only host, its partial scores of the validation, test and scored enterprises reach the guest as they are (no other host masks them; consent.min_vertical_hosts: 2 refuses such jobs)',
      "binning: the rows and the guest's defaults in each of its bins, to the guest (not where the bins are cut)",
      "scorecard: each of its features' bin bounds, WOE and points, to the guest; at scoring, the points its top reason features lost",
      'fairness: the region of each held-out enterprise, to the guest',
    ]);
  });

  it('says nothing more for a plain job with two hosts, nor to the guest about its own columns', () => {
    expect(offerShares(job({ hosts: ['credit-bureau', 'power-company'] }), 'credit-bureau')).toEqual([]);
    expect(offerShares(job({ binning: {}, scorecard: {} }), 'bank')).toEqual([]);
  });
});
