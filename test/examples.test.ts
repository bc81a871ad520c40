/** The configs in examples/ are what a newcomer copies: they must validate and match the data `fedcredit synth` writes. */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { loadYamlConfig } from '../src/config/load.js';
import { CoordinatorConfig, HorizontalJobSpec, ParticipantConfig, VerticalBoostSpec, VerticalJobSpec } from '../src/config/schemas.js';
import { tableNameFor } from '../src/synth/postgres.js';
import { writeVerticalSynth } from '../src/synth/vertical.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { bankDatasetSpec } from '../src/synth/sme.js';

const dir = fileURLToPath(new URL('../examples/horizontal/', import.meta.url));

describe('examples/horizontal', () => {
  it('every config validates, and each participant declares exactly the synthetic bank columns and types', () => {
    loadYamlConfig(join(dir, 'coordinator.yaml'), CoordinatorConfig, 'coordinator');
    const job = loadYamlConfig(join(dir, 'job.yaml'), HorizontalJobSpec, 'job');
    const expected = bankDatasetSpec('x.csv');
    for (const org of job.participants) {
      const p = loadYamlConfig(join(dir, `${org}.yaml`), ParticipantConfig, 'participant');
      expect(p.organisation).toBe(org);
      expect(p.data.id_column).toBe(expected.id_column);
      expect(p.data.label_column).toBe(expected.label_column);
      expect(p.data.features.map((f) => [f.name, f.type])).toEqual(expected.features.map((f) => [f.name, f.type]));
    }
  });
});

const verticalDir = fileURLToPath(new URL('../examples/vertical/', import.meta.url));

describe('examples/vertical', () => {
  it('every config validates, and each party declares exactly the columns `fedcredit synth --mode vertical` writes', async () => {
    loadYamlConfig(join(verticalDir, 'coordinator.yaml'), CoordinatorConfig, 'coordinator');
    const job = loadYamlConfig(join(verticalDir, 'job.yaml'), VerticalJobSpec, 'job');
    const synth = await writeVerticalSynth(mkdtempSync(join(tmpdir(), 'fedcredit-vex-')), { seed: 7, bankRows: 200 });
    for (const org of [job.guest, ...job.hosts]) {
      const p = loadYamlConfig(join(verticalDir, `${org}.yaml`), ParticipantConfig, 'participant');
      const expected = synth.parties.find((q) => q.party === org)!.spec;
      expect(p.organisation).toBe(org);
      expect(p.data.id_column).toBe(expected.id_column);
      expect(p.data.label_column).toBe(expected.label_column);
      expect(p.data.features).toEqual(expected.features);
      expect(p.data.group_columns).toEqual(expected.group_columns);
      expect(p.consent.job_kinds).toContain('vertical-lr');
    }
  });

  it('boost-job.yaml validates, and every feature it constrains or gives special values is a column of one of its parties', () => {
    const job = loadYamlConfig(join(verticalDir, 'boost-job.yaml'), VerticalBoostSpec, 'job');
    const declared = [job.guest, ...job.hosts].flatMap((org) => loadYamlConfig(join(verticalDir, `${org}.yaml`), ParticipantConfig, 'participant').data.features.map((f) => f.name));
    const named = [...Object.keys(job.boosting.monotone), ...Object.keys(job.binning.features)];
    expect(named.length).toBeGreaterThan(0);
    for (const f of named) expect(declared).toContain(f);
  });

  it('tax-bureau-postgres.yaml is tax-bureau.yaml reading the table `fedcredit synth --postgres` fills, with no password in it', () => {
    const file = loadYamlConfig(join(verticalDir, 'tax-bureau.yaml'), ParticipantConfig, 'participant');
    const db = loadYamlConfig(join(verticalDir, 'tax-bureau-postgres.yaml'), ParticipantConfig, 'participant');
    const { path: _path, ...columns } = file.data;
    const { source, ...dbColumns } = db.data;
    expect(dbColumns).toEqual(columns);
    expect(db.consent).toEqual(file.consent);
    expect(source).toMatchObject({ kind: 'postgres', table: tableNameFor('tax-bureau'), password_env: 'FEDCREDIT_DB_PASSWORD' });
    expect(source?.url).not.toMatch(/:[^/@]*@/);
  });
});
