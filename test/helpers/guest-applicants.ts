/**
 * A guest's rows as a bank holds them: customers with an outcome, applicants without one yet (an empty or NA label),
 * and the usual faults (rows dropped for a missing income, invalid cells imputed, repeated ids, a category with a
 * level first seen on an applicant), deterministic, for the tests of the one pass that stores both.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RowStore } from '../../src/data/row-store.js';
import { DatasetSpec } from '../../src/data/schema.js';

export const GUEST_APPLICANT_ROWS = 3000;

export function writeGuestApplicants(file: string): void {
  const sectors = ['retail', 'mining', 'farming', 'energy'];
  const lines = ['loan_ref,bad,income,sector,ratio,region'];
  for (let i = 1; i <= GUEST_APPLICANT_ROWS; i++) {
    const id = i % 97 === 0 ? `L${i - 50}` : `L${i}`;
    const label = i % 5 === 0 ? '' : i % 11 === 0 ? 'NA' : String((i * 7) % 3 === 0 ? 1 : 0);
    const income = i % 13 === 0 ? '' : String(1000 + ((i * 37) % 500));
    const sector = i < 10 ? sectors[i % 3]! : sectors[(i * 3) % 4]!;
    const ratio = i % 17 === 0 ? 'n/a' : String((i % 100) / 100);
    lines.push([id, label, income, sector, ratio, i % 2 === 0 ? 'north' : 'south'].join(','));
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

export function guestApplicantsSpec(path: string): DatasetSpec {
  return DatasetSpec.parse({
    path,
    id_column: 'loan_ref',
    label_column: 'bad',
    duplicate_ids: 'keep_first',
    group_columns: ['region'],
    features: [
      { name: 'income', missing: 'drop' },
      { name: 'sector', type: 'category' },
      { name: 'ratio', missing: 'impute' },
    ],
  });
}

/** What a store holds, to compare stores written by different passes: its files' digests and its meta but the source's name. */
export function storeSummary(store: RowStore): Record<string, unknown> {
  const { report, ...meta } = store.meta;
  const { file: _file, querySha256: _query, ...counts } = report;
  const files = Object.fromEntries(
    readdirSync(store.dir)
      .filter((f) => f !== 'meta.json')
      .sort()
      .map((f) => [
        f,
        createHash('sha256')
          .update(readFileSync(join(store.dir, f)))
          .digest('hex'),
      ]),
  );
  return { ...meta, report: counts, files };
}

/** Bytes of feature cells per block: 200 rows, so the kept rows are scattered as a node's are. */
export const GUEST_APPLICANT_BLOCK_BYTES = 4 * 3 * 200;

/**
 * storeSummary of both stores as two passes over the file wrote them (ingestSource, then ingestUnlabelled reading the
 * file again, at cbad995 with GUEST_APPLICANT_BLOCK_BYTES and scatter: true): one pass must write the same.
 */
export const TWO_PASS_STORES = {
  rows: {
    features: ['income', 'sector', 'ratio'],
    rows: 1994,
    labels: true,
    groupColumns: ['region'],
    levels: { sector: ['mining', 'farming', 'retail', 'energy'] },
    invalidExamples: { ratio: ['n/a'] },
    idSetSha256: '76164b8acbbd899938c47f3c1ab5647b17ecb4ef0774819c67b8474ecc2f9d15',
    blockRows: 200,
    report: {
      rowsRead: 3000,
      rowsKept: 1994,
      rowsDropped: { missing_label: 810, 'missing:income': 166, duplicate_id: 30 },
      missingCells: { income: 230, sector: 0, ratio: 0 },
      nonNumericCells: { income: 0, sector: 0, ratio: 176 },
      imputedCells: { income: 0, sector: 0, ratio: 117 },
      duplicateIds: 30,
      invalidIds: 0,
      rowsSha256: '06bce822ad3f4d242c63f1e1a0f474faca91b62cb889bbfdc3ab2e82e60cd9d4',
    },
    files: {
      'idhash.bin': 'cc1f99aa833004a310188c716ae45c115a72b456530cff1da5680f9a1d9ae5bf',
      'ids.jsonl': 'd5f41efc3165bf874ae57f34d4c9f1a07481dce66b6b20564fb933d775ba93b0',
      'x.f32': 'ea8e07a20d78fd2e9016a4378adc9ba89f31d7eae6ad0d303655987e080d224f',
      'y.f32': 'f0abb4a3237e1467a0c388370bc119660981103f3e7e042dafbb90578efe3f61',
    },
  },
  unlabelled: {
    features: ['income', 'sector', 'ratio'],
    rows: 748,
    labels: false,
    groupColumns: ['region'],
    levels: { sector: ['mining', 'farming', 'retail', 'energy'] },
    invalidExamples: { ratio: ['n/a'] },
    idSetSha256: 'cf9bed6324c24db7a7e81f78bcfdb1d80107db02e77c27053f13fe8919638489',
    blockRows: 200,
    report: {
      rowsRead: 3000,
      rowsKept: 748,
      rowsDropped: { labelled: 2160, 'missing:income': 62, duplicate_id: 30 },
      missingCells: { income: 230, sector: 0, ratio: 0 },
      nonNumericCells: { income: 0, sector: 0, ratio: 176 },
      imputedCells: { income: 0, sector: 0, ratio: 45 },
      duplicateIds: 30,
      invalidIds: 0,
      rowsSha256: 'bf86d28bee661e213d76ecd2611ac44ce52f39d5fbd453604fcd671f8c966651',
    },
    files: {
      'idhash.bin': '7201fb67f8867006ac68614cdba35022e7219360a25c530fdb46b034a670da68',
      'ids.jsonl': '01d6319d167f08e88a3a5a080fb0a1fd2692134f5e406aa512d248e1a4308b7e',
      'x.f32': 'fe44c60b1c4ecd3a9b473e85f5309938b8af7b1062697b1253359a83546714a0',
    },
  },
};
