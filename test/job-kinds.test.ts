/**
 * The job-kind registry: every kind of the job-file union is declared (and has its coordinator and participant
 * halves), and the consent rules a kind composes refuse with the rule and the words the participant used before
 * the kinds were split out of participant/node.ts.
 */
import { describe, expect, it } from 'vitest';
import { JobSpec, ParticipantConfig } from '../src/config/schemas.js';
import { jobKind, kindOf } from '../src/jobs/registry.js';
import type { DataOwner } from '../src/jobs/kind.js';
import { coordinatorKind, coordinatorKindOf } from '../coordinator/kinds/index.js';
import { participantKindOf } from '../participant/kinds/index.js';

const horizontalFile = (extra: Record<string, unknown> = {}) =>
  JobSpec.parse({ name: 'h', kind: 'horizontal', purpose: 'test', participants: ['bank-a', 'bank-b'], model: { type: 'logistic' }, training: { rounds: 20 }, ...extra });
const verticalFile = (extra: Record<string, unknown> = {}) => JobSpec.parse({ name: 'v', kind: 'vertical-lr', purpose: 'test', guest: 'bank', hosts: ['tax', 'power'], ...extra });
const boostFile = (extra: Record<string, unknown> = {}) => JobSpec.parse({ name: 'b', kind: 'vertical-boost', purpose: 'test', guest: 'bank', hosts: ['tax'], ...extra });
const scoreFile = () => JobSpec.parse({ name: 's', kind: 'vertical-score', purpose: 'test', model_job: 'job-1', guest: 'bank', hosts: ['tax'], ids_file: 'ids.txt' });

function owner(overrides: Partial<Omit<DataOwner, 'consent'>> & { consent?: Record<string, unknown> } = {}): DataOwner {
  const { consent, ...rest } = overrides;
  return {
    org: 'bank',
    consent: ParticipantConfig.shape.consent.parse(consent ?? {}),
    offered: ['x1', 'x2', 'sector'],
    declared: ['x1', 'x2', 'sector', 'secret'],
    levels: { sector: ['retail', 'farming'] },
    rows: 1000,
    groupColumns: ['region'],
    ...rest,
  };
}

describe('job-kind registry', () => {
  it('declares every kind of the job-file union, with its coordinator and participant halves', () => {
    const union = JobSpec.options.map((o) => ('in' in o ? o.in : o).shape.kind.value);
    expect(union).toHaveLength(4);
    for (const name of union) {
      expect(jobKind(name)?.name).toBe(name);
      expect(coordinatorKind(name)).toBeDefined();
    }
    for (const file of [horizontalFile(), verticalFile(), boostFile(), scoreFile()]) {
      expect(kindOf(file).name).toBe(file.kind);
      expect(kindOf(file).schema.parse(file)).toEqual(file);
      expect(typeof coordinatorKindOf(file).start).toBe('function');
      expect(typeof coordinatorKindOf(file).resume).toBe('function');
      expect(typeof participantKindOf(file).accept).toBe('function');
      expect(typeof participantKindOf(file).restore).toBe('function');
    }
    expect(jobKind('gbdt')).toBeUndefined();
    expect(jobKind('toString')).toBeUndefined();
    expect(coordinatorKind('constructor')).toBeUndefined();
  });

  it("names each job's parties (a vertical job's guest first) and the consent entry that admits it", () => {
    expect(kindOf(horizontalFile()).parties(horizontalFile())).toEqual(['bank-a', 'bank-b']);
    expect(kindOf(verticalFile()).parties(verticalFile())).toEqual(['bank', 'tax', 'power']);
    expect(kindOf(scoreFile()).parties(scoreFile())).toEqual(['bank', 'tax']);
    // Scoring uses the data the way the training job it scores with did.
    expect([horizontalFile(), verticalFile(), scoreFile()].map((f) => kindOf(f).consentKind)).toEqual(['horizontal', 'vertical-lr', 'model_job']);
    expect(kindOf(boostFile()).consentKind).toBe('vertical-boost');
  });

  it("reads a finished job's planned rounds or epochs from its recorded job file", () => {
    expect(jobKind('horizontal')!.finished.plannedUnits({ training: { rounds: 7 } })).toBe(7);
    expect(jobKind('vertical-lr')!.finished.plannedUnits({ training: { epochs: 12 } })).toBe(12);
    expect(jobKind('vertical-boost')!.finished.plannedUnits({ boosting: { trees: 150 } })).toBe(150);
    expect(jobKind('vertical-score')!.finished).toMatchObject({ producesModel: false });
    expect(jobKind('vertical-score')!.finished.plannedUnits({})).toBe(1);
  });
});

describe('consent rules per kind', () => {
  const refusal = (file: JobSpec, o = owner()) => kindOf(file).policy?.refusal(file, o);

  it('refuses a boosting job of more trees than consent.max_rounds, or one that constrains a category of the owner', () => {
    expect(refusal(boostFile({ boosting: { trees: 50 }, features: { bank: ['x1'] } }), owner({ consent: { max_rounds: 10 } }))).toEqual([
      'consent.max_rounds',
      'the job asks for 50 trees; consent.max_rounds is 10',
    ]);
    expect(refusal(boostFile({ boosting: { trees: 5, monotone: { sector: 'increasing' } }, features: { bank: ['x1', 'sector'] } }))).toEqual([
      'boosting.monotone',
      'the job constrains sector, a category of bank: its levels have no order (remove boosting.monotone.sector)',
    ]);
    expect(refusal(boostFile({ boosting: { trees: 5, monotone: { x1: 'decreasing' } }, features: { bank: ['x1', 'sector'] } }))).toBeUndefined();
  });

  it('refuses, as a host, a boosting job whose min_child_weight allows nodes below consent.min_node_rows (a guest is not asked)', () => {
    const host = owner({ org: 'tax' });
    const file = (min_child_weight: number) => boostFile({ boosting: { trees: 5, min_child_weight }, features: { tax: ['x1'] } });
    // The default floor (20 rows) admits the default min_child_weight (5: a child holds at least 20 rows).
    expect(refusal(boostFile({ boosting: { trees: 5 }, features: { tax: ['x1'] } }), host)).toBeUndefined();
    expect(refusal(file(1), host)).toEqual([
      'consent.min_node_rows',
      "the job's boosting.min_child_weight (1) allows tree nodes of 4 rows; tax answers only for nodes of at least 20 rows (set min_child_weight to at least 5, or the data owner lowers consent.min_node_rows)",
    ]);
    expect(refusal(file(1), owner({ org: 'tax', consent: { min_node_rows: 4 } }))).toBeUndefined();
    expect(refusal(boostFile({ boosting: { trees: 5, min_child_weight: 1 }, features: { bank: ['x1'] } }))).toBeUndefined();
    // GOSS weighs its drawn rows by (1 − 0.2) / 0.1 = 8: a row's hessian reaches 2, so min_child_weight 5 allows 3 rows.
    const goss = (min_child_weight: number) => boostFile({ boosting: { trees: 5, min_child_weight, goss: {} }, features: { tax: ['x1'] } });
    expect(refusal(goss(5), host)).toEqual([
      'consent.min_node_rows',
      "the job's boosting.min_child_weight (5) allows tree nodes of 3 rows (GOSS weighs a drawn row up to a hessian of 2); tax answers only for nodes of at least 20 rows (set min_child_weight to at least 40, or the data owner lowers consent.min_node_rows)",
    ]);
    expect(refusal(goss(40), host)).toBeUndefined();
  });

  it('refuses, as a host with consent.min_vertical_hosts 2, a vertical-lr job in which it is the only host; by default it takes part', () => {
    const careful = owner({ org: 'tax', consent: { min_vertical_hosts: 2 } });
    const lone = verticalFile({ hosts: ['tax'], features: { bank: ['x2'], tax: ['x1'] } });
    expect(refusal(lone, careful)).toEqual([
      'consent.min_vertical_hosts',
      "the job has 1 host (tax) and tax takes part as a host only with at least 2, so that the guest sees its partial scores summed with another host's, never alone: add hosts to the job, or the data owner lowers consent.min_vertical_hosts",
    ]);
    expect(refusal(verticalFile({ features: { tax: ['x1'] } }), careful)).toBeUndefined();
    expect(refusal(lone, owner({ org: 'tax' }))).toBeUndefined();
    // The guest sees its own scores anyway: the rule is a host's.
    expect(refusal(lone, owner({ consent: { min_vertical_hosts: 2 } }))).toBeUndefined();
  });

  it('refuses to give fairness groups by a column the owner does not list in data.group_columns, for trees as for LR', () => {
    const fairness = { party: 'bank', column: 'industry' };
    const message = ['data.group_columns', 'the job groups its fairness figures by industry, which bank does not list in data.group_columns (listed: region)'];
    expect(refusal(boostFile({ boosting: { trees: 5 }, features: { bank: ['x1'] }, fairness }))).toEqual(message);
    expect(refusal(verticalFile({ features: { bank: ['x1'] }, fairness }))).toEqual(message);
    expect(refusal(boostFile({ boosting: { trees: 5 }, features: { bank: ['x1'] }, fairness: { party: 'bank', column: 'region' } }))).toBeUndefined();
    expect(() => boostFile({ fairness: { party: 'power', column: 'region' } })).toThrow(/power is neither the guest nor a host/);
  });

  it('refuses plaintext jobs without consent.allow_plaintext, in both training kinds', () => {
    const message = ['consent.allow_plaintext', 'the job runs in plaintext mode (nothing encrypted) and consent.allow_plaintext is false'];
    expect(refusal(horizontalFile({ encryption: { scheme: 'plaintext' }, features: ['x1'] }))).toEqual(message);
    expect(refusal(verticalFile({ encryption: { scheme: 'plaintext' }, features: { bank: ['x1'] } }))).toEqual(message);
    expect(refusal(horizontalFile({ encryption: { scheme: 'plaintext' }, features: ['x1'] }), owner({ consent: { allow_plaintext: true } }))).toBeUndefined();
  });

  it('counts rounds for horizontal jobs and epochs for vertical ones against consent.max_rounds', () => {
    const o = owner({ consent: { max_rounds: 10 } });
    expect(refusal(horizontalFile({ features: ['x1'] }), o)).toEqual(['consent.max_rounds', 'the job asks for 20 rounds; consent.max_rounds is 10']);
    expect(refusal(verticalFile({ training: { epochs: 11 }, features: { bank: ['x1'] } }), o)).toEqual(['consent.max_rounds', 'the job asks for 11 epochs; consent.max_rounds is 10']);
  });

  it('tells a column withheld by consent.columns from one the owner does not have', () => {
    expect(refusal(horizontalFile({ features: ['x1', 'secret'] }))).toEqual(['consent.columns', 'the job asks for secret, which consent.columns does not allow (allowed: x1, x2, sector)']);
    expect(refusal(verticalFile({ features: { bank: ['x1', 'nowhere'] } }))).toEqual(['data.features', 'the job uses columns this participant does not offer: nowhere']);
  });

  it('a misspelt column of a job is refused with the offered column it most likely means', () => {
    expect(refusal(horizontalFile({ features: ['x1', 'sectr'] }))).toEqual(['data.features', 'the job uses columns this participant does not offer: sectr (did you mean sector?)']);
    // A withheld column is never suggested: its name is the owner's to give.
    expect(refusal(verticalFile({ features: { bank: ['x1', 'secrte'] } }))).toEqual(['data.features', 'the job uses columns this participant does not offer: secrte']);
  });

  it('refuses a horizontal category whose levels the job does not declare, and min_rows before any alignment', () => {
    const heard: string[][] = [];
    const declaring = (levels: string[]) => horizontalFile({ binning: { features: { sector: { type: 'category', levels } } } });
    expect(refusal(declaring(['retail']), owner({ undeclaredLevels: (_f, levels) => heard.push(levels) }))).toEqual([
      'binning.features.sector.levels',
      "1 level of sector in this participant's data is not in binning.features.sector.levels (named in this participant's log only); add it to the job's list, or correct the data",
    ]);
    expect(heard).toEqual([['farming']]);
    expect(refusal(declaring(['retail', 'farming', 'mining']))).toBeUndefined();
    expect(refusal(horizontalFile({ features: ['x1'], binning: { features: { x1: { special_values: [-1] } } } }))).toBeUndefined();
    expect(refusal(horizontalFile({ features: ['x1'] }), owner({ consent: { min_rows: 5000 } }))).toEqual([
      'consent.min_rows',
      'the job would use 1000 rows of this data owner; consent.min_rows is 5000',
    ]);
    // A vertical job checks min_rows on the aligned enterprises, after the PSI, not here.
    expect(refusal(verticalFile({ features: { bank: ['x1'] } }), owner({ consent: { min_rows: 5000 } }))).toBeUndefined();
    // A vertical job reads a category through the WOE of its levels: it needs binning.
    expect(refusal(verticalFile())?.[0]).toBe('binning');
  });

  it('refuses a fairness grouping by a column the owner does not list in data.group_columns', () => {
    expect(refusal(verticalFile({ features: { bank: ['x1'] }, fairness: { party: 'bank', column: 'size' } }))).toEqual([
      'data.group_columns',
      'the job groups its fairness figures by size, which bank does not list in data.group_columns (listed: region)',
    ]);
    expect(refusal(verticalFile({ features: { bank: ['x1'] }, fairness: { party: 'bank', column: 'region' } }))).toBeUndefined();
  });

  it("lists the owner's columns a job uses, and checks no rule for scoring (consent.scoring bounds it)", () => {
    const o = owner();
    expect(kindOf(horizontalFile()).policy!.columns(horizontalFile(), o)).toEqual(['x1', 'x2', 'sector']);
    expect(kindOf(verticalFile({ features: { bank: ['x2'] } })).policy!.columns(verticalFile({ features: { bank: ['x2'] } }), o)).toEqual(['x2']);
    expect(kindOf(scoreFile()).policy).toBeUndefined();
  });
});
