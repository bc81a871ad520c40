/** The configs in examples/ are what a newcomer copies: they must validate and match the data `fedcredit synth` writes. */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { loadYamlConfig } from '../src/config/load.js';
import { CoordinatorConfig, HorizontalJobSpec, ParticipantConfig } from '../src/config/schemas.js';
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
