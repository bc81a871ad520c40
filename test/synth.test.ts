import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetSpec } from '../src/data/schema.js';
import { auc } from '../src/metrics.js';
import { BANK_FEATURES, generateEnterprises, isValidUscc, Rng, USCC_CHARSET, uscc, writeHorizontalSynth, type HorizontalSynthResult } from '../src/synth/sme.js';

interface Table {
  header: string[];
  ids: string[];
  y: number[];
  /** Feature cells; NaN where the cell is empty. */
  X: number[][];
}

function parseCsv(text: string): Table {
  const lines = text.trimEnd().split('\n');
  const header = lines[0]!.split(','); // split gives at least one element
  const rows = lines.slice(1).map((l) => l.split(','));
  return {
    header,
    ids: rows.map((r) => r[0]!),
    y: rows.map((r) => Number(r[1])),
    X: rows.map((r) => r.slice(2).map((c) => (c === '' ? Number.NaN : Number(c)))),
  };
}

/** Logistic regression by full-batch gradient descent on standardized features (missing cells -> training mean). */
function fitLogistic(X: number[][], y: number[], epochs = 300, lr = 0.5, l2 = 1e-3): (rows: number[][]) => number[] {
  if (X[0] === undefined) throw new RangeError('fitLogistic needs at least one row');
  const d = X[0].length;
  const mean = new Array<number>(d).fill(0);
  const sd = new Array<number>(d).fill(0);
  for (let j = 0; j < d; j++) {
    const v = X.map((r) => r[j]!).filter((x) => !Number.isNaN(x));
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    mean[j] = m;
    sd[j] = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length) || 1;
  }
  const standardize = (r: number[]): number[] => r.map((v, j) => (Number.isNaN(v) ? 0 : (v - mean[j]!) / sd[j]!));
  const Z = X.map(standardize);
  const w = new Array<number>(d).fill(0);
  let b = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const g = new Array<number>(d).fill(0);
    let gb = 0;
    for (const [i, zi] of Z.entries()) {
      let z = b;
      for (let j = 0; j < d; j++) z += w[j]! * zi[j]!;
      const r = 1 / (1 + Math.exp(-z)) - y[i]!;
      gb += r;
      for (let j = 0; j < d; j++) g[j]! += r * zi[j]!;
    }
    for (let j = 0; j < d; j++) w[j]! -= lr * (g[j]! / Z.length + l2 * w[j]!);
    b -= (lr * gb) / Z.length;
  }
  return (rows) => rows.map((r) => standardize(r).reduce((s, v, j) => s + v * w[j]!, b));
}

const SEED = 42;
const FILES = ['bank-east.csv', 'bank-west.csv', 'bank-north.csv', 'test.csv'];

describe('synthetic SME credit data', () => {
  let dirA: string;
  let dirB: string;
  let dirC: string;
  let result: HorizontalSynthResult;
  const tables = new Map<string, Table>();

  beforeAll(async () => {
    dirA = await mkdtemp(join(tmpdir(), 'fedcredit-synth-a-'));
    dirB = await mkdtemp(join(tmpdir(), 'fedcredit-synth-b-'));
    dirC = await mkdtemp(join(tmpdir(), 'fedcredit-synth-c-'));
    result = await writeHorizontalSynth(dirA, { seed: SEED });
    await writeHorizontalSynth(dirB, { seed: SEED });
    await writeHorizontalSynth(dirC, { seed: SEED + 1 });
    for (const f of FILES) tables.set(f, parseCsv(await readFile(join(dirA, f), 'utf8')));
  });

  afterAll(async () => {
    for (const d of [dirA, dirB, dirC]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('is deterministic: same seed gives identical bytes, another seed different ones', async () => {
    for (const f of FILES) {
      const a = await readFile(join(dirA, f));
      const b = await readFile(join(dirB, f));
      const c = await readFile(join(dirC, f));
      expect(a.equals(b), f).toBe(true);
      expect(a.equals(c), f).toBe(false);
    }
  });

  it('describes its files: parties, rows, bad rates and a valid DatasetSpec', () => {
    expect(result.parties.map((p) => p.party)).toEqual(['bank-east', 'bank-west', 'bank-north']);
    expect(result.parties.map((p) => p.rows)).toEqual([3000, 2200, 1600]);
    expect(result.test.rows).toBe(3000);
    expect(result.features).toEqual([...BANK_FEATURES]);
    expect(result.features.length).toBeGreaterThanOrEqual(12);
    for (const file of [...result.parties, result.test]) {
      const name = `${file.party}.csv`;
      expect(file.path).toBe(join(dirA, name));
      expect(file.spec.path).toBe(name);
      expect(DatasetSpec.parse(file.spec)).toEqual(file.spec);
      expect(file.spec.id_column).toBe('enterprise_id');
      expect(file.spec.label_column).toBe('default_12m');
      const t = tables.get(name)!;
      expect(t.header).toEqual(['enterprise_id', 'default_12m', ...file.spec.features.map((f) => f.name)]);
      expect(t.ids.length).toBe(file.rows);
      expect(file.badRate).toBeCloseTo(t.y.reduce((a, b) => a + b, 0) / t.y.length, 10);
      // Declared types hold for every present cell.
      file.spec.features.forEach((f, j) => {
        for (const row of t.X) {
          const v = row[j];
          if (Number.isNaN(v)) continue;
          if (f.type === 'integer') expect(Number.isInteger(v)).toBe(true);
          if (f.type === 'binary') expect(v === 0 || v === 1).toBe(true);
        }
      });
    }
  });

  it('keys every row by a valid, unique unified social credit code', () => {
    const seen = new Set<string>();
    for (const f of FILES) {
      for (const id of tables.get(f)!.ids) {
        expect(isValidUscc(id), id).toBe(true);
        expect(seen.has(id), `duplicate ${id}`).toBe(false);
        seen.add(id);
      }
    }
    expect(seen.size).toBe(3000 + 2200 + 1600 + 3000);
  });

  it('computes the GB 32100-2015 check character', () => {
    // Charset: 0-9 then the capitals without I, O, S, V, Z -- 31 characters valued 0..30. Note that it contains M.
    expect(USCC_CHARSET).toBe('0123456789ABCDEFGHJKLMNPQRTUWXY');
    // Weights W_i = 3^(i-1) mod 31 for positions 1..17: 1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28; the check
    // character has value 31 - (sum of value_i * W_i) mod 31 (31 -> 0).
    // Worked example, the code widely cited from the standard: 91350100M000100Y43 ('9' market regulation, '1'
    // enterprise, 350100 Fuzhou, organisation code M000100Y-4, check '3'):
    // 9*1 + 1*3 + 3*9 + 5*27 + 0*19 + 1*26 + 0*16 + 0*17 + M(21)*20 + 0*29 + 0*25 + 0*13 + 1*8 + 0*24 + 0*10
    // + Y(30)*30 + 4*28 = 1640; 1640 mod 31 = 28; 31 - 28 = 3, the character '3'.
    const example = '91350100M000100Y43';
    const weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    const sum = [...example.slice(0, 17)].reduce((s, ch, i) => s + USCC_CHARSET.indexOf(ch) * weights[i]!, 0);
    expect(sum).toBe(1640);
    expect(USCC_CHARSET[(31 - (sum % 31)) % 31]).toBe('3');
    expect(isValidUscc(example)).toBe(true);
    expect(uscc(example.slice(0, 17))).toBe(example);
    // The organisation-code part carries its own GB 11714 mod-11 check character (here 4).
    expect(uscc({ authority: '9', entityType: '1', division: '350100', orgBody: 'M000100Y' })).toBe(example);

    // Any single changed character is rejected (31 is prime and no weight is 0 mod 31).
    for (let i = 0; i < 18; i++) {
      for (const ch of USCC_CHARSET) {
        if (ch === example[i]) continue;
        const changed = example.slice(0, i) + ch + example.slice(i + 1);
        expect(isValidUscc(changed), changed).toBe(false);
      }
    }
    // Wrong length, lower case, excluded letters.
    expect(isValidUscc(example.slice(0, 17))).toBe(false);
    expect(isValidUscc(example.toLowerCase())).toBe(false);
    expect(isValidUscc('91350100I000100Y43')).toBe(false);
  });

  it('gives each bank a realistic bad rate', () => {
    for (const p of result.parties) {
      expect(p.badRate, p.party).toBeGreaterThanOrEqual(0.05);
      expect(p.badRate, p.party).toBeLessThanOrEqual(0.25);
    }
    // The portfolios differ: the inclusive-finance bank in the west is the riskiest, the east bank the safest.
    const [east, west] = result.parties;
    expect(west!.badRate).toBeGreaterThan(east!.badRate);
  });

  it('has a few missing cells, below 3% per column', () => {
    let total = 0;
    for (const f of FILES) {
      const t = tables.get(f)!;
      t.header.slice(2).forEach((name, j) => {
        const missing = t.X.filter((r) => Number.isNaN(r[j])).length;
        total += missing;
        expect(missing / t.X.length, `${f} ${name}`).toBeLessThan(0.03);
      });
      // Ids and labels are never missing.
      expect(t.ids.every((id) => id.length === 18)).toBe(true);
      expect(t.y.every((v) => v === 0 || v === 1)).toBe(true);
    }
    expect(total).toBeGreaterThan(0);
  });

  it('has a learnable label; pooling the banks beats the smallest bank alone', () => {
    const test = tables.get('test.csv')!;
    const banks = FILES.slice(0, 3).map((f) => tables.get(f)!);
    const pooled = fitLogistic(
      banks.flatMap((b) => b.X),
      banks.flatMap((b) => b.y),
    );
    const pooledAuc = auc(test.y, pooled(test.X));
    const alone = banks.map((b) => auc(test.y, fitLogistic(b.X, b.y)(test.X)));
    console.log(`test AUC: pooled ${pooledAuc.toFixed(4)}; alone ${result.parties.map((p, k) => `${p.party} ${alone[k]!.toFixed(4)}`).join(', ')}`);
    expect(pooledAuc).toBeGreaterThanOrEqual(0.72);
    expect(pooledAuc).toBeLessThan(0.9);
    const smallest = result.parties.reduce((m, p, k) => (p.rows < result.parties[m]!.rows ? k : m), 0);
    expect(alone[smallest]).toBeLessThan(pooledAuc);
  });

  it('exposes the latent enterprise model for other views', () => {
    const es = generateEnterprises(500, new Rng(7));
    expect(es.length).toBe(500);
    expect(new Set(es.map((e) => e.id)).size).toBe(500);
    for (const e of es) {
      expect(isValidUscc(e.id)).toBe(true);
      expect(e.id.slice(2, 8)).toBe(e.division);
      expect(e.pd).toBeGreaterThan(0);
      expect(e.pd).toBeLessThan(1);
    }
    // Window-dressers declare more growth to their bank than they really had.
    const inflation = (group: typeof es): number => group.reduce((s, e) => s + e.declaredRevenueGrowth - e.revenueGrowth, 0) / group.length;
    const mis = es.filter((e) => e.misreports);
    expect(mis.length).toBeGreaterThan(10);
    expect(inflation(mis)).toBeGreaterThan(0.1);
    expect(Math.abs(inflation(es.filter((e) => !e.misreports)))).toBeLessThan(0.02);
    // and they default more often.
    const rate = (group: typeof es): number => group.reduce((s, e) => s + e.default12m, 0) / group.length;
    expect(rate(mis)).toBeGreaterThan(rate(es.filter((e) => !e.misreports)));
    // Same seed, same enterprises.
    expect(generateEnterprises(50, new Rng(7))).toEqual(es.slice(0, 50));
  });
});
