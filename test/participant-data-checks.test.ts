/**
 * Issue 24: a participant whose feature is declared numeric but holds text must not start and quietly impute the
 * whole column away; one with a heavily imputed column starts, with a warning in its log. Real processes on the
 * real German credit file (A-code text columns, class coded 1/2).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath } from '../src/federation/local-cluster.js';
import { cli } from './helpers/cli.js';

const GERMAN = fileURLToPath(new URL('../../shared/datasets/german_credit/german_credit.csv', import.meta.url));

describe('a participant on german_credit.csv', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedcredit-data-checks-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A participant config on the German file (no id column: CreditAmount, first row of each amount kept). */
  async function config(name: string, features: object[]): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(
      file,
      stringify({
        organisation: name,
        coordinator: '127.0.0.1:1',
        state_dir: join(dir, `state-${name}`),
        data: { path: GERMAN, id_column: 'CreditAmount', duplicate_ids: 'keep_first', features },
      }),
    );
    return file;
  }

  it('refuses to start when a text column (Housing: A151/A152/A153) is declared `type: number`, naming column, type, values and fix', async () => {
    const file = await config('lender', [
      { name: 'Duration', type: 'integer' },
      { name: 'Housing', type: 'number' },
    ]);
    const { code, stderr } = await cli(['participant', '--config', file, '--insecure']);
    expect(code).toBe(2);
    expect(stderr).toContain('FC_DATA_SCHEMA');
    expect(stderr).toContain('column "Housing" is declared `type: number` but all 1000 of its non-empty cells are not numbers (e.g. "A152", "A153", "A151")');
    expect(stderr).toMatch(/fix: .*right column.*type: category/);
  });

  it('starts with a column 30% invalid (Class coded 1/2 declared binary), and warns that it will be imputed', async () => {
    const file = await config('bureau', [
      { name: 'Duration', type: 'integer' },
      { name: 'Class', type: 'binary' },
    ]);
    const child = spawn(process.execPath, [cliPath(), 'participant', '--config', file, '--insecure'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    try {
      const deadline = Date.now() + 60_000;
      while (!/"msg":"control stream closed; reconnecting"/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const warning = out.split('\n').find((l) => l.includes('"level":40') && l.includes('"feature":"Class"'));
      expect(warning, out).toBeDefined();
      const logged = JSON.parse(warning!) as { msg: string; imputedCells: number; rows: number; share: number };
      expect(logged.share).toBeGreaterThan(0.2);
      expect(logged.share).toBeCloseTo(logged.imputedCells / logged.rows, 3);
      expect(logged.msg).toMatch(/^feature "Class": \d+ of \d+ kept rows \(\d+\.\d%, over 20%\) have no valid value and will be imputed/);
      expect(out).not.toMatch(/"feature":"Duration"/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
