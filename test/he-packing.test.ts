/**
 * The packing maths of src/he/packing.ts is pure: the plaintext twin of the vertical cipher, configuration and the
 * vector codec load no SEAL (no WASM), which a child Node process shows by tracing every module it resolves; and
 * the layouts the CKKS kernel and the plaintext twin use are the same layout: the generalized diagonals, rotated
 * and summed as maskedGradient does (baby-step giant-step), put every product X[r][c]·d[r] in the slot
 * gradientSlot names, so the residue classes sum to Xᵀd.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockCount, generalizedDiagonal, gradientPlanWithBaby, gradientSlot, nextPowerOfTwo, residueClassSums, sharedBabySteps, verticalGradientPlan } from '../src/he/packing.js';
import { Rng } from '../src/random.js';

const root = resolve(import.meta.dirname, '..');

/**
 * Resolve hook for a child process: runs the TypeScript sources as they are (imports name `.js`, files are `.ts`)
 * and prints every module URL resolved, as JSON after a marker, when the process exits.
 */
const TRACE_HOOK = `
import { registerHooks } from 'node:module';
const seen = [];
registerHooks({
  resolve(specifier, context, next) {
    let result;
    try {
      result = next(specifier, context);
    } catch (err) {
      if (!(specifier.endsWith('.js') && context.parentURL?.endsWith('.ts'))) throw err;
      result = next(specifier.slice(0, -3) + '.ts', context);
    }
    seen.push(result.url);
    return result;
  },
});
process.on('exit', () => process.stdout.write('\\nMODULES ' + JSON.stringify(seen) + '\\n'));
`;

let dir: string;
let hook: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedcredit-he-trace-'));
  hook = join(dir, 'trace.mjs');
  writeFileSync(hook, TRACE_HOOK);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every module URL a fresh Node process resolves when it imports `file` (relative to the repository root). */
function modulesLoadedBy(file: string): string[] {
  const url = pathToFileURL(join(root, file)).href;
  const run = spawnSync(
    process.execPath,
    ['--experimental-transform-types', '--no-warnings', '--import', pathToFileURL(hook).href, '--input-type=module', '-e', `await import(${JSON.stringify(url)});`],
    {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(run.status, `importing ${file} failed: ${run.stderr}`).toBe(0);
  const line = run.stdout.split('\n').find((l) => l.startsWith('MODULES '));
  expect(line, `no module trace from ${file}: ${run.stdout}${run.stderr}`).toBeDefined();
  return JSON.parse(line!.slice('MODULES '.length)) as string[];
}

const isSeal = (url: string) => url.includes('/node_modules/node-seal/');

describe('no WASM where only layouts are needed', () => {
  it('the detector sees node-seal when the CKKS vertical gradient is imported', () => {
    const modules = modulesLoadedBy('src/he/vertical-gradient.ts');
    expect(modules.some((u) => u.endsWith('/src/he/packing.ts'))).toBe(true);
    expect(modules.filter(isSeal).length).toBeGreaterThan(0);
  });

  for (const file of ['src/vertical/cipher.ts', 'src/he/packing.ts', 'src/he/params.ts', 'src/fl/vector-codec.ts', 'src/config/schemas.ts']) {
    it(`importing ${file} (the plaintext twin, packing, parameters, the vector codec, configuration) loads no node-seal`, () => {
      const modules = modulesLoadedBy(file);
      expect(
        modules.some((u) => u.endsWith(`/${file}`)),
        'the trace names the module itself',
      ).toBe(true);
      expect(modules.filter(isSeal)).toEqual([]);
    });
  }
});

/** z as maskedGradient computes it, in the clear: z = Σ_a rot(Σ_b D'_{g·a+b} ⊙ rot(d, b), g·a), rot(v, s)[i] = v[(i + s) mod S]. */
function babyGiantProduct(columns: Float64Array[], d: Float64Array, slots: number): Float64Array {
  const plan = verticalGradientPlan(columns.length, slots);
  const { baby: g, giant: A } = plan;
  const z = new Float64Array(slots);
  for (let a = 0; a < A; a++) {
    const inner = new Float64Array(slots);
    for (let b = 0; b < g; b++) {
      const diagonal = generalizedDiagonal(columns, plan, g * a + b, slots);
      if (!diagonal) continue;
      for (let j = 0; j < slots; j++) inner[j]! += diagonal[j]! * d[(j + b) % slots]!;
    }
    for (let i = 0; i < slots; i++) z[i]! += inner[(i + g * a) % slots]!;
  }
  return z;
}

describe('one slot layout for the CKKS kernel and the plaintext twin', () => {
  const cases = [
    { columns: 1, records: 64, slots: 64 },
    { columns: 5, records: 50, slots: 64 },
    { columns: 8, records: 64, slots: 64 },
    { columns: 14, records: 200, slots: 256 },
    { columns: 33, records: 100, slots: 256 },
  ];
  for (const { columns: p, records: B, slots: S } of cases) {
    it(`${p} columns, ${B} records, ${S} slots: every product lands in its gradientSlot and the classes sum to Xᵀd`, () => {
      const rng = new Rng(p * 1000 + B);
      const columns = Array.from({ length: p }, () => Float64Array.from({ length: B }, () => (rng.next() < 0.2 ? 0 : rng.next() * 10 - 5)));
      const d = new Float64Array(S);
      for (let r = 0; r < B; r++) d[r] = rng.next() - 0.5;
      const P = nextPowerOfTwo(p);
      const twin = new Float64Array(S);
      columns.forEach((column, c) => {
        for (let r = 0; r < B; r++) twin[gradientSlot(r, c, P, S)]! += column[r]! * d[r]!;
      });
      const kernel = babyGiantProduct(columns, d, S);
      kernel.forEach((v, i) => expect(v, `slot ${i}`).toBeCloseTo(twin[i]!, 10));
      const sums = residueClassSums(kernel, p);
      columns.forEach((column, c) => {
        let g = 0;
        for (let r = 0; r < B; r++) g += column[r]! * d[r]!;
        expect(sums[c], `column ${c}`).toBeCloseTo(g, 10);
      });
    });
  }

  it('an all-zero diagonal is null (the kernel skips it), and vectors take slot-full blocks, at least one', () => {
    const plan = verticalGradientPlan(2, 64);
    expect(generalizedDiagonal([new Float64Array(10), new Float64Array(10)], plan, 0, 64)).toBeNull();
    expect([0, 1, 4096, 4097, 10_000].map((n) => blockCount(n, 4096))).toEqual([1, 1, 1, 2, 3]);
  });
});

describe('baby steps shared by the per-bin sums of several groups', () => {
  it('takes the fewest rotations over the chunks and groups, within the Galois keys the guest sends', () => {
    // One chunk, one group of 128 columns: 2·√128 − 2 rotations at g = 8 or 16 (the first of equal counts).
    expect(sharedBabySteps(1, [128])).toBe(8);
    // Many chunks favour few baby steps (each chunk rotates g − 1 times), many groups many (each rotates P/g − 1).
    expect(sharedBabySteps(25, [128])).toBe(2);
    expect(
      sharedBabySteps(
        25,
        Array.from({ length: 100 }, () => 128),
      ),
    ).toBe(16);
    // Never past 64, the largest step of verticalRotationSteps at 4096 slots.
    expect(
      sharedBabySteps(
        1,
        Array.from({ length: 1000 }, () => 4096),
      ),
    ).toBe(64);
    // One chunk of rows repeated R times (BinSums' last chunk of a small node): g is a multiple of R, its baby steps
    // cost one rotation by R each (g = 16 for R = 4: 3 + 7 rotations), and g passes 64 only where no group has
    // giant steps (three groups of 128 at R = 32: 3 rotations at g = 128, 4 at g = 64); with giant steps it stays
    // within the keys (a group of 4,096).
    expect(sharedBabySteps(1, [128], 4096, 4)).toBe(16);
    expect(sharedBabySteps(1, [128, 128, 128], 4096, 32)).toBe(128);
    expect(sharedBabySteps(1, [4096], 4096, 2)).toBe(64);
    // A group smaller than the baby steps takes its period as its baby steps, and no giant steps.
    expect(gradientPlanWithBaby(3, 16)).toEqual({ period: 4, baby: 4, giant: 1, rotations: 3 });
    expect(gradientPlanWithBaby(99, 16)).toEqual({ period: 128, baby: 16, giant: 8, rotations: 22 });
  });
});
