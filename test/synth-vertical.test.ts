import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetSpec } from '../src/data/schema.js';
import { isValidUscc } from '../src/data/uscc.js';
import { auc } from '../src/metrics.js';
import { BANK_FEATURES } from '../src/synth/sme.js';
import {
  generateVertical,
  VERTICAL_FEATURES,
  VERTICAL_PARTIES,
  writeVerticalSynth,
  type VerticalData,
  type VerticalJoinedRow,
  type VerticalParty,
  type VerticalSynthResult,
} from '../src/synth/vertical.js';

interface Table {
  header: string[];
  ids: string[];
  rows: string[][];
}

function parseCsv(text: string): Table {
  const lines = text.trimEnd().split('\n');
  const rows = lines.slice(1).map((l) => l.split(','));
  return { header: lines[0]!.split(','), ids: rows.map((r) => r[0]!), rows }; // split gives at least one element
}

/**
 * Logistic regression on standardised features (missing cells -> the training mean), full-batch Adam with a small
 * L2 penalty. Returns a scorer (log-odds) for new rows.
 */
function fitLogistic(X: number[][], y: number[], steps = 400, lr = 0.05, l2 = 1e-4): (rows: number[][]) => number[] {
  const n = X.length;
  if (X[0] === undefined) throw new RangeError('fitLogistic needs at least one row');
  const d = X[0].length;
  const mean = new Array<number>(d).fill(0);
  const sd = new Array<number>(d).fill(1);
  for (let j = 0; j < d; j++) {
    const v = X.map((r) => r[j]!).filter((x) => !Number.isNaN(x));
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    mean[j] = m;
    sd[j] = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length) || 1;
  }
  const standardise = (r: number[]): Float64Array => Float64Array.from(r, (v, j) => (Number.isNaN(v) ? 0 : (v - mean[j]!) / sd[j]!));
  const Z = X.map(standardise);
  const w = new Float64Array(d + 1); // last entry: intercept
  const m = new Float64Array(d + 1);
  const v = new Float64Array(d + 1);
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  for (let step = 1; step <= steps; step++) {
    const g = new Float64Array(d + 1);
    for (const [i, z] of Z.entries()) {
      let s = w[d]!;
      for (let j = 0; j < d; j++) s += w[j]! * z[j]!;
      const r = 1 / (1 + Math.exp(-s)) - y[i]!;
      for (let j = 0; j < d; j++) g[j]! += r * z[j]!;
      g[d]! += r;
    }
    for (let j = 0; j <= d; j++) {
      const gj = g[j]! / n + (j < d ? l2 * w[j]! : 0);
      const mj = b1 * m[j]! + (1 - b1) * gj;
      const vj = b2 * v[j]! + (1 - b2) * gj * gj;
      m[j] = mj;
      v[j] = vj;
      w[j]! -= (lr * (mj / (1 - b1 ** step))) / (Math.sqrt(vj / (1 - b2 ** step)) + eps);
    }
  }
  return (rows) =>
    rows.map((r) => {
      const z = standardise(r);
      let s = w[d]!;
      for (let j = 0; j < d; j++) s += w[j]! * z[j]!;
      return s;
    });
}

/** 80/20 split of the intersection by a hash of the id (independent of any file's row order). */
const isTest = (id: string): boolean => createHash('sha256').update(`vertical-split|${id}`).digest().readUInt32BE(0) / 2 ** 32 < 0.2;

function aucOn(parties: readonly VerticalParty[], train: VerticalJoinedRow[], test: VerticalJoinedRow[]): number {
  const features = (r: VerticalJoinedRow): number[] => parties.flatMap((p) => r.x[p]);
  const model = fitLogistic(
    train.map(features),
    train.map((r) => r.label),
  );
  return auc(
    test.map((r) => r.label),
    model(test.map(features)),
  );
}

const SEED = 42;
/** The pooled model must beat the bank's columns alone by at least this much test AUC on the intersection. */
const MIN_GAIN = 0.04;

describe('synthetic vertical data: bank, tax bureau, power company, platform', () => {
  let dirA: string;
  let dirB: string;
  let dirC: string;
  let result: VerticalSynthResult;
  let data: VerticalData;
  const tables = new Map<string, Table>();

  beforeAll(async () => {
    dirA = await mkdtemp(join(tmpdir(), 'fedcredit-vsynth-a-'));
    dirB = await mkdtemp(join(tmpdir(), 'fedcredit-vsynth-b-'));
    dirC = await mkdtemp(join(tmpdir(), 'fedcredit-vsynth-c-'));
    result = await writeVerticalSynth(dirA, { seed: SEED });
    await writeVerticalSynth(dirB, { seed: SEED });
    await writeVerticalSynth(dirC, { seed: SEED + 1 });
    data = generateVertical({ seed: SEED });
    for (const p of VERTICAL_PARTIES) tables.set(p, parseCsv(await readFile(join(dirA, `${p}.csv`), 'utf8')));
  });

  afterAll(async () => {
    for (const d of [dirA, dirB, dirC]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('is deterministic: same seed gives identical bytes, another seed different ones', async () => {
    for (const p of VERTICAL_PARTIES) {
      const a = await readFile(join(dirA, `${p}.csv`));
      const b = await readFile(join(dirB, `${p}.csv`));
      const c = await readFile(join(dirC, `${p}.csv`));
      expect(a.equals(b), p).toBe(true);
      expect(a.equals(c), p).toBe(false);
    }
  });

  it('describes its files: one valid DatasetSpec per party, id first, label only at the bank', () => {
    expect(result.parties.map((p) => p.party)).toEqual([...VERTICAL_PARTIES]);
    expect(result.parties[0]!.rows).toBe(12_000);
    expect(result.parties[0]!.features).toEqual([...BANK_FEATURES]);
    for (const p of result.parties) {
      const party = p.party as VerticalParty;
      expect(p.file).toBe(join(dirA, `${party}.csv`));
      expect(p.spec.path).toBe(`${party}.csv`);
      expect(DatasetSpec.parse(p.spec)).toEqual(p.spec);
      expect(p.spec.id_column).toBe('enterprise_id');
      expect(p.spec.label_column).toBe(party === 'bank' ? 'default_12m' : undefined);
      expect(p.features).toEqual([...VERTICAL_FEATURES[party]]);
      expect(p.spec.features.map((f) => f.name)).toEqual(p.features);
      const t = tables.get(party)!;
      // The tax bureau also writes the registered industry: a text column for grouping reports, never a feature.
      const groups = party === 'tax-bureau' ? ['industry'] : [];
      expect(p.spec.group_columns ?? []).toEqual(groups);
      expect(t.header).toEqual(['enterprise_id', ...(party === 'bank' ? ['default_12m'] : []), ...p.features, ...groups]);
      expect(t.ids.length).toBe(p.rows);
      const offset = party === 'bank' ? 2 : 1;
      p.spec.features.forEach((f, j) => {
        let missing = 0;
        const bad: string[] = [];
        for (const row of t.rows) {
          const cell = row[offset + j]!; // the header check above proved every column is there
          if (cell === '') {
            missing++;
            continue;
          }
          // Numeric only, of the declared type.
          const v = Number(cell);
          const ok = Number.isFinite(v) && (f.type !== 'integer' || Number.isInteger(v)) && (f.type !== 'binary' || v === 0 || v === 1);
          if (!ok) bad.push(cell);
        }
        expect(bad.slice(0, 5), `${party} ${f.name}`).toEqual([]);
        // A few missing cells, never many; none under a reject policy.
        expect(missing / t.rows.length, `${party} ${f.name}`).toBeLessThan(f.missing === 'reject' ? 1e-12 : 0.06);
        // No constant columns: every feature varies.
        expect(new Set(t.rows.slice(0, 2000).map((r) => r[offset + j])).size, `${party} ${f.name}`).toBeGreaterThan(1);
      });
      if (party === 'bank') expect(t.rows.every((r) => r[1] === '0' || r[1] === '1')).toBe(true);
    }
    // Overall, some cells are missing in every file.
    for (const p of VERTICAL_PARTIES) expect(tables.get(p)!.rows.some((r) => r.includes(''))).toBe(true);
  });

  it('keys every row by a valid, unique unified social credit code', () => {
    for (const p of VERTICAL_PARTIES) {
      const ids = tables.get(p)!.ids;
      expect(ids.filter((id) => !isValidUscc(id)).slice(0, 5), p).toEqual([]);
      expect(new Set(ids).size, p).toBe(ids.length);
    }
  });

  it('scales with bankRows and rejects a bad row count', () => {
    const small = generateVertical({ seed: 7, bankRows: 600 });
    expect(small.parties.map((p) => p.ids.length)[0]).toBe(600);
    expect(small.parties[1]!.ids.length).toBeGreaterThan(1200);
    expect(small.intersection.length).toBeGreaterThan(150);
    expect(small.intersection.length).toBeLessThan(450);
    expect(() => generateVertical({ seed: 7, bankRows: 0 })).toThrow(RangeError);
  });

  it('overlaps as designed: partial coverage of the bank, a four-way intersection of several thousand, ids only one party has', () => {
    const sets = new Map(VERTICAL_PARTIES.map((p) => [p, new Set(tables.get(p)!.ids)]));
    const bank = sets.get('bank')!;
    const share = (p: VerticalParty): number => [...bank].filter((id) => sets.get(p)!.has(id)).length / bank.size;
    expect(share('tax-bureau')).toBeGreaterThan(0.85);
    expect(share('tax-bureau')).toBeLessThan(0.95);
    expect(share('power-company')).toBeGreaterThan(0.8);
    expect(share('power-company')).toBeLessThan(0.9);
    expect(share('platform')).toBeGreaterThan(0.5);
    expect(share('platform')).toBeLessThan(0.7);
    // Each other party also holds many enterprises outside the bank's book.
    for (const p of ['tax-bureau', 'power-company', 'platform'] as const) {
      expect([...sets.get(p)!].filter((id) => !bank.has(id)).length, p).toBeGreaterThan(5000);
    }
    // Each file holds enterprises nobody else has.
    for (const p of VERTICAL_PARTIES) {
      const only = [...sets.get(p)!].filter((id) => VERTICAL_PARTIES.every((q) => q === p || !sets.get(q)!.has(id)));
      expect(only.length, p).toBeGreaterThan(20);
    }
    const all = [...bank].filter((id) => VERTICAL_PARTIES.every((p) => sets.get(p)!.has(id)));
    expect(all.length).toBe(result.intersection);
    expect(result.intersection).toBeGreaterThanOrEqual(4000);
    expect(result.intersection).toBeLessThanOrEqual(7000);
    expect(result.population).toBe(new Set(VERTICAL_PARTIES.flatMap((p) => tables.get(p)!.ids)).size);
    // The files are not aligned: the shared enterprises come in a different order in each.
    const shared = new Set(all);
    const orders = VERTICAL_PARTIES.map((p) =>
      tables
        .get(p)!
        .ids.filter((id) => shared.has(id))
        .slice(0, 50)
        .join(),
    );
    expect(new Set(orders).size).toBe(VERTICAL_PARTIES.length);
  });

  it('gives the same rows in memory as in the files, and the joined intersection', () => {
    expect(data.intersection.length).toBe(result.intersection);
    for (const p of data.parties) {
      const t = tables.get(p.party)!;
      expect(p.ids).toEqual(t.ids);
      const offset = p.party === 'bank' ? 2 : 1;
      for (const r of [0, 1, Math.floor(p.ids.length / 2), p.ids.length - 1]) {
        const groups = Object.values(p.groups).map((values) => values[r]!);
        expect([...p.x[r]!.map((v) => (Number.isNaN(v) ? '' : String(v))), ...groups]).toEqual(t.rows[r]!.slice(offset));
        if (p.party === 'tax-bureau') expect(groups[0]).toMatch(/^[A-Z]$/);
      }
    }
    const bank = data.parties[0]!;
    for (const row of data.intersection.slice(0, 200)) {
      expect(row.label).toBe(bank.y![bank.rowOf.get(row.id)!]);
      for (const p of data.parties) expect(row.x[p.party]).toBe(p.x[p.rowOf.get(row.id)!]);
    }
  });

  it('has a realistic default rate in the intersection (6-20%)', () => {
    const rate = data.intersection.reduce((s, r) => s + r.label, 0) / data.intersection.length;
    const bank = data.parties[0]!;
    const bankRate = bank.y!.reduce((s: number, v) => s + v, 0) / bank.y!.length;
    console.log(`default rate: bank book ${(100 * bankRate).toFixed(1)}%, intersection ${(100 * rate).toFixed(1)}%`);
    expect(rate).toBeGreaterThanOrEqual(0.06);
    expect(rate).toBeLessThanOrEqual(0.2);
  });

  it("moves the other parties' columns with the latent state the bank cannot see", () => {
    const latent = new Map(data.enterprises.map((e) => [e.id, e]));
    const rows = data.intersection;
    const col = (p: VerticalParty, name: string) => {
      const j = VERTICAL_FEATURES[p].indexOf(name);
      if (j < 0) throw new Error(`${p} has no feature ${name}`);
      return (r: VerticalJoinedRow): number => r.x[p][j]!;
    };
    const mean = (rs: VerticalJoinedRow[], f: (r: VerticalJoinedRow) => number): number => {
      const v = rs.map(f).filter((x) => !Number.isNaN(x));
      return v.reduce((a, b) => a + b, 0) / v.length;
    };
    const corr = (f: (r: VerticalJoinedRow) => number, g: (r: VerticalJoinedRow) => number): number => {
      const pairs = rows.map((r): [number, number] => [f(r), g(r)]).filter(([a, b]) => !Number.isNaN(a) && !Number.isNaN(b));
      const ma = pairs.reduce((s, [a]) => s + a, 0) / pairs.length;
      const mb = pairs.reduce((s, [, b]) => s + b, 0) / pairs.length;
      let [sab, saa, sbb] = [0, 0, 0];
      for (const [a, b] of pairs) [sab, saa, sbb] = [sab + (a - ma) * (b - mb), saa + (a - ma) ** 2, sbb + (b - mb) ** 2];
      return sab / Math.sqrt(saa * sbb);
    };
    // Cross-check: window-dressers tell the bank about growth their invoices and electricity do not show.
    const gap =
      (p: VerticalParty, trend: string) =>
      (r: VerticalJoinedRow): number =>
        col('bank', 'revenue_growth')(r) - col(p, trend)(r);
    const mis = rows.filter((r) => latent.get(r.id)!.misreports);
    const honest = rows.filter((r) => !latent.get(r.id)!.misreports);
    expect(mis.length).toBeGreaterThan(100);
    expect(mean(mis, gap('tax-bureau', 'invoice_growth_6m')) - mean(honest, gap('tax-bureau', 'invoice_growth_6m'))).toBeGreaterThan(0.1);
    expect(mean(mis, gap('power-company', 'kwh_trend_6m')) - mean(honest, gap('power-company', 'kwh_trend_6m'))).toBeGreaterThan(0.1);
    // Tax grade follows tax compliance; invoice, electricity and GMV trends follow momentum; bill arrears fall with health.
    expect(corr(col('tax-bureau', 'tax_grade'), (r) => latent.get(r.id)!.taxCompliance)).toBeGreaterThan(0.4);
    for (const [p, trend] of [
      ['tax-bureau', 'invoice_growth_6m'],
      ['power-company', 'kwh_trend_6m'],
      ['platform', 'gmv_growth_6m'],
    ] as const) {
      expect(
        corr(col(p, trend), (r) => latent.get(r.id)!.momentum),
        trend,
      ).toBeGreaterThan(0.15);
    }
    expect(corr(col('power-company', 'bill_arrears_months_12m'), (r) => latent.get(r.id)!.health)).toBeLessThan(-0.2);
  });

  it(`the other parties add information: pooled logistic regression beats the bank alone by >= ${MIN_GAIN} test AUC on the intersection`, () => {
    const train = data.intersection.filter((r) => !isTest(r.id));
    const test = data.intersection.filter((r) => isTest(r.id));
    expect(test.length / data.intersection.length).toBeGreaterThan(0.15);
    expect(test.length / data.intersection.length).toBeLessThan(0.25);
    const bankAlone = aucOn(['bank'], train, test);
    const pooled = aucOn(VERTICAL_PARTIES, train, test);
    console.log(`intersection ${data.intersection.length} (train ${train.length}, test ${test.length}); test AUC bank alone ${bankAlone.toFixed(4)}, pooled ${pooled.toFixed(4)}`);
    expect(bankAlone).toBeGreaterThan(0.65);
    expect(pooled).toBeLessThan(0.95);
    expect(pooled - bankAlone).toBeGreaterThanOrEqual(MIN_GAIN);
  });
});
