/**
 * The participant's row store: a horizontal job reading its rows from disk a block at a time computes the same
 * sums and trains as well as one that holds them in a single block, and the store's duplicate check (done bucket
 * by bucket on hashed ids) counts and drops exactly what a naive first-row-wins pass would. Its files are the
 * owner's data and only the node's user may read them.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATASETS, HOMO_PARTIES, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { uciHomoFile } from '../src/data/public-datasets.js';
import { datasetOf, ingestDataset, loadDataset } from '../src/data/csv.js';
import { splitRows, StoredSplit } from '../src/data/split.js';
import type { DatasetSpec } from '../src/data/schema.js';
import { HorizontalJobSpec } from '../src/config/schemas.js';
import { ParticipantJob } from '../participant/job-state.js';
import { QUANTILE_MAX_ROUNDS } from '../src/fl/quantile-search.js';
import { preprocessingFromMoments } from '../src/model/preprocess.js';
import { loadTf } from '../src/model/tf.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';

const tmp = () => mkdtemp(join(tmpdir(), 'fedcredit-rowstore-'));

describe('row store', () => {
  it('a job over 1,000-row blocks sums the same moments and quantile counts as one block, and trains as well', async () => {
    const { tf } = await loadTf();
    const spec = uciHomoSpec(uciHomoFile(DATASETS, HOMO_PARTIES[0]));
    const features = spec.features.map((f) => f.name);
    const dir = await tmp();
    const whole = await ingestDataset(spec, { dir: join(dir, 'whole') });
    const blocked = await ingestDataset(spec, { dir: join(dir, 'blocked'), blockBytes: 1000 * 4 * features.length });
    expect(whole.blockCount).toBe(1);
    expect(blocked.blockCount).toBe(Math.ceil(blocked.rows / 1000));
    expect(blocked.blockCount).toBeGreaterThan(5);
    expect(blocked.meta.idSetSha256).toBe(whole.meta.idSetSha256);
    // A copy of the owner's data: readable by the node's user only.
    expect(statSync(whole.dir).mode & 0o777).toBe(0o700);
    for (const file of readdirSync(whole.dir)) expect(statSync(join(whole.dir, file)).mode & 0o777).toBe(0o600);

    const job = HorizontalJobSpec.parse({ ...horizontalJob({ encryption: { scheme: 'plaintext' } }), participants: ['a'] });
    const idx = features.map((_, i) => i);
    const make = async (store: typeof whole) => new ParticipantJob('j', job, 'a', features, await StoredSplit.create(store, idx, 0.2, job.training.seed), tf);
    const [one, many] = [await make(whole), await make(blocked)];
    try {
      expect(many.trainRows).toBe(one.trainRows);
      expect(many.validationRows).toBe(one.validationRows);
      const m1 = await one.localMoments();
      const m2 = await many.localMoments();
      m1.forEach((v, i) => expect(m2[i]).toBeCloseTo(v, 6 - Math.max(0, Math.floor(Math.log10(Math.abs(v) + 1)))));
      one.setMoments(m1);
      many.setMoments(m1);
      // Every round of the quantile search counts the same from one block as from many; once the search is
      // finished, a request for more counts (finer ones, from a deviating coordinator) is refused.
      let rounds = 0;
      for (; rounds < QUANTILE_MAX_ROUNDS; rounds++) {
        const c1 = await one.localQuantileCounts().catch(() => undefined);
        if (!c1) break;
        expect(Array.from(await many.localQuantileCounts())).toEqual(Array.from(c1));
        one.advanceQuantiles(c1);
        many.advanceQuantiles(c1);
      }
      expect(rounds).toBeGreaterThan(2);
      await expect(one.localQuantileCounts()).rejects.toThrow(/after the search finished/);

      const prep = preprocessingFromMoments(features, m1, true);
      const params = features.length + 1;
      const zero = new Float32Array(params);
      const trained = async (j: ParticipantJob) => {
        const update = await j.localUpdate(1, zero, prep);
        const n = update[params]!;
        return Float32Array.from(update.subarray(0, params), (v) => v / n);
      };
      const a1 = await one.validate(await trained(one), prep);
      const a2 = await many.validate(await trained(many), prep);
      expect(a2.rows).toBe(a1.rows);
      expect(a1.auc).toBeGreaterThan(0.65);
      expect(Math.abs(a2.auc - a1.auc)).toBeLessThan(0.01);
      // A diverged global model is named as such, with the setting to change.
      await expect(many.validate(new Float32Array(params).fill(NaN), prep)).rejects.toThrow(/training diverged/);
    } finally {
      one.dispose();
      many.dispose();
    }
  });

  it('duplicate ids: later rows dropped, counted once each (even when already dropped for a cell), cells uncounted', async () => {
    const dir = await tmp();
    // 3,000 rows; every third row repeats the id of an earlier row. Feature b is sometimes missing (drop policy).
    const lines = ['id,a,b'];
    const rows: { id: string; a: number; b: string; line: number }[] = [];
    for (let i = 0; i < 3000; i++) {
      const id = i % 3 === 2 ? `E${3 * Math.floor(i / 7)}` : `E${i}`;
      const a = i % 5 === 0 ? NaN : i;
      const b = i % 11 === 0 ? '' : String(i % 4);
      rows.push({ id, a, b, line: i + 2 });
      lines.push(`${id},${Number.isNaN(a) ? 'NA' : a},${b}`);
    }
    const file = join(dir, 'dups.csv');
    await writeFile(file, lines.join('\n') + '\n');
    const spec = (duplicate_ids: 'reject' | 'keep_first'): DatasetSpec => ({
      path: file,
      delimiter: ',',
      id_column: 'id',
      features: [
        { name: 'a', type: 'number', missing: 'impute' },
        { name: 'b', type: 'number', missing: 'drop' },
      ],
      duplicate_ids,
      missing_values: ['', 'NA'],
    });
    const data = await loadDataset(spec('keep_first'));

    // The naive reading: the id is checked first, so the first row of an id claims it even if dropped for a cell.
    const seen = new Set<string>();
    const kept: typeof rows = [];
    let duplicates = 0;
    let missingB = 0;
    for (const r of rows) {
      if (seen.has(r.id)) {
        duplicates++;
        continue;
      }
      seen.add(r.id);
      if (r.b === '') missingB++;
      else kept.push(r);
    }
    expect(duplicates).toBeGreaterThan(500);
    expect(data.ids).toEqual(kept.map((r) => r.id));
    expect(Array.from(data.x)).toEqual(kept.flatMap((r) => [r.a, Number(r.b)]));
    expect(data.report.duplicateIds).toBe(duplicates);
    expect(data.report.rowsDropped).toEqual({ duplicate_id: duplicates, 'missing:b': missingB });
    expect(data.report.imputedCells.a).toBe(kept.filter((r) => Number.isNaN(r.a)).length);
    expect(data.report.rowsKept + duplicates + missingB).toBe(3000);

    const err = await loadDataset(spec('reject')).catch((e: unknown) => e as FedcreditError);
    expect(err).toBeInstanceOf(FedcreditError);
    expect((err as FedcreditError).code).toBe(ErrorCode.DATA_REJECTED);
    const firstDup = rows.find((r, i) => rows.findIndex((q) => q.id === r.id) < i)!;
    const firstRow = rows.find((q) => q.id === firstDup.id)!;
    expect((err as FedcreditError).message).toContain(`id "${firstDup.id}"`);
    expect((err as FedcreditError).message).toContain(`line ${firstRow.line} and again on line ${firstDup.line}`);
  });

  it('the id-set digest depends on the set of kept ids, not on their order', async () => {
    const dir = await tmp();
    const ids = Array.from({ length: 500 }, (_, i) => `id-${i}`);
    const write = async (name: string, list: string[]) => {
      await writeFile(join(dir, name), ['id,a', ...list.map((id, i) => `${id},${i}`)].join('\n') + '\n');
      const spec: DatasetSpec = { path: join(dir, name), delimiter: ',', id_column: 'id', features: [{ name: 'a', type: 'number', missing: 'impute' }], duplicate_ids: 'reject', missing_values: [''] };
      return (await ingestDataset(spec, { dir: join(dir, `${name}.rows`) })).meta.idSetSha256;
    };
    const forward = await write('f.csv', ids);
    expect(await write('r.csv', [...ids].reverse())).toBe(forward);
    expect(await write('s.csv', ids.slice(1))).not.toBe(forward);
  });

  it('one id on 300,000 rows: kept once or refused by name, and no file of the store is left open', async () => {
    const dir = await tmp();
    const file = join(dir, 'same.csv');
    await writeFile(file, ['id,a', ...Array.from({ length: 300_000 }, (_, i) => `X,${i}`)].join('\n') + '\n');
    const spec = (duplicate_ids: 'reject' | 'keep_first'): DatasetSpec => ({
      path: file,
      delimiter: ',',
      id_column: 'id',
      features: [{ name: 'a', type: 'number', missing: 'impute' }],
      duplicate_ids,
      missing_values: [''],
    });
    const openStoreFiles = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return /fedcredit-rows-|\.rows|id-buckets|\.f32|\.jsonl|idhash/.test(readlinkSync(join('/proc/self/fd', fd)));
        } catch {
          return false;
        }
      });
    const data = await loadDataset(spec('keep_first'));
    expect(data.ids).toEqual(['X']);
    expect(Array.from(data.x)).toEqual([0]);
    expect(data.report.duplicateIds).toBe(299_999);
    expect(openStoreFiles()).toEqual([]);
    const err = (await loadDataset(spec('reject')).catch((e: unknown) => e)) as FedcreditError;
    expect(err.message).toContain('id "X" (column "id") appears on line 2 and again on line 3');
    expect(openStoreFiles()).toEqual([]);
  });

  it('a repeated id is named even when every row of it was dropped for another reason', async () => {
    const dir = await tmp();
    const file = join(dir, 'dropped.csv');
    await writeFile(file, 'id,y,a\nA,,1\nB,0,2\nA,,3\n');
    const spec: DatasetSpec = {
      path: file,
      delimiter: ',',
      id_column: 'id',
      label_column: 'y',
      features: [{ name: 'a', type: 'number', missing: 'impute' }],
      duplicate_ids: 'reject',
      missing_values: [''],
    };
    const err = (await loadDataset(spec).catch((e: unknown) => e)) as FedcreditError;
    expect(err.code).toBe(ErrorCode.DATA_REJECTED);
    expect(err.message).toContain('id "A" (column "id") appears on line 2 and again on line 4');
  });

  it("a participant's store of a file sorted by label is scattered: every block mixes the classes, the rows are unchanged", async () => {
    const dir = await tmp();
    const file = join(dir, 'sorted.csv');
    // 20,000 rows, the 4,000 defaults last, as in a file sorted by outcome.
    const lines = Array.from({ length: 20_000 }, (_, i) => `E${i},${i >= 16_000 ? 1 : 0},${i},${i % 7}`);
    await writeFile(file, ['id,y,a,b', ...lines].join('\n') + '\n');
    const spec: DatasetSpec = {
      path: file,
      delimiter: ',',
      id_column: 'id',
      label_column: 'y',
      features: [
        { name: 'a', type: 'number', missing: 'impute' },
        { name: 'b', type: 'number', missing: 'impute' },
      ],
      duplicate_ids: 'reject',
      missing_values: [''],
    };
    const blockBytes = 1000 * 4 * 2;
    const store = await ingestDataset(spec, { dir: join(dir, 'rows'), blockBytes, scatter: true });
    const again = await ingestDataset(spec, { dir: join(dir, 'rows-again'), blockBytes, scatter: true });
    const inOrder = await loadDataset(spec);
    expect(store.blockCount).toBe(20);
    const reader = store.reader();
    try {
      for (let b = 0; b < store.blockCount; b++) {
        const share = reader.read(b).y!.reduce((n, v) => n + v, 0) / store.blockRows;
        expect(share).toBeGreaterThan(0.1);
        expect(share).toBeLessThan(0.3);
      }
    } finally {
      reader.close();
    }
    const scattered = datasetOf(store);
    expect(scattered.ids).not.toEqual(inOrder.ids);
    expect(datasetOf(again).ids).toEqual(scattered.ids);
    expect(store.meta.idSetSha256).toBe(again.meta.idSetSha256);
    // Every row keeps its own cells, label and hash: row i of the file is E<i>, a = i, b = i mod 7, y = (i >= 16000).
    scattered.ids.forEach((id, r) => {
      const i = Number(id.slice(1));
      expect([scattered.x[2 * r], scattered.x[2 * r + 1], scattered.y![r]]).toEqual([i, i % 7, i >= 16_000 ? 1 : 0]);
    });
    expect(new Set(scattered.ids).size).toBe(20_000);
    const split = await StoredSplit.create(store, [0, 1], 0.2, 3);
    const inMemory = splitRows(inOrder, [0, 1], 0.2, 3);
    expect(split.validationRows).toBe(inMemory.validation.y.length);
    split.close();
  });

  it('a row store that cannot be written is named, with what it needs', async () => {
    const dir = await tmp();
    const file = join(dir, 'ok.csv');
    await writeFile(file, 'id,a\nA,1\n');
    await writeFile(join(dir, 'not-a-folder'), '');
    const spec: DatasetSpec = { path: file, delimiter: ',', id_column: 'id', features: [{ name: 'a', type: 'number', missing: 'impute' }], duplicate_ids: 'reject', missing_values: [''] };
    const err = (await ingestDataset(spec, { dir: join(dir, 'not-a-folder', 'rows') }).catch((e: unknown) => e)) as FedcreditError;
    expect(err).toBeInstanceOf(FedcreditError);
    expect(err.message).toContain(`cannot write the row store in ${join(dir, 'not-a-folder', 'rows')}: ENOTDIR`);
    expect(err.hint).toMatch(/free disk space.*state_dir/);
  });
});
