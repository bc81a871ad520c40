/** A config error says what is wrong with a field: missing when it is absent, its value when it has the wrong type. */
import { describe, expect, it } from 'vitest';
import { loadYamlConfig, validateConfig } from '../src/config/load.js';
import { JobSpec, ParticipantConfig } from '../src/config/schemas.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';

function problems(value: unknown): string {
  try {
    validateConfig(ParticipantConfig, value, 'bank.yaml', 'participant');
  } catch (err) {
    expect(err).toBeInstanceOf(FedcreditError);
    expect((err as FedcreditError).code).toBe(ErrorCode.CONFIG_INVALID);
    return (err as FedcreditError).message;
  }
  throw new Error('the config was accepted');
}

describe('config field errors', () => {
  const data = { path: 'data.csv', id_column: 'id', features: [{ name: 'x' }] };

  it('a field of the wrong type shows its value, and does not say it is missing', () => {
    const message = problems({ organisation: 'bank', coordinator: 7700, data: { ...data, id_column: ['id'] }, consent: { max_rounds: 'ten' } });
    const line = (field: string) => message.split('\n').find((l) => l.includes(`field \`${field}\``)) ?? '';
    expect(line('coordinator')).toContain('expected string, received number (it is 7700)');
    expect(line('consent.max_rounds')).toContain('(it is "ten")');
    expect(line('data.id_column')).toContain('expected string');
    expect(message).not.toContain('(the field is missing)');
  });

  it('an absent field is called missing', () => {
    const message = problems({ coordinator: '127.0.0.1:7700', data });
    expect(message).toContain('bank.yaml: field `organisation`: Invalid input: expected string, received undefined (the field is missing)');
  });

  it('a misspelt field is answered with the field it most likely meant, in the section it sits in', () => {
    const message = problems({ organisation: 'bank', coordinator: '127.0.0.1:7700', data: { ...data, lable_column: 'y', features: [{ name: 'x', tpye: 'number' }] } });
    expect(message).toContain('field `data`: Unrecognized key: "lable_column" (did you mean `label_column`?)');
    expect(message).toContain('field `data.features[0]`: Unrecognized key: "tpye" (did you mean `type`?)');
  });

  it("a job's misspelt section is matched against the fields of its own kind", () => {
    const job = (value: unknown) => {
      try {
        validateConfig(JobSpec, value, 'job.yaml', 'job');
      } catch (err) {
        return (err as FedcreditError).message;
      }
      throw new Error('the job was accepted');
    };
    const horizontal = job({ name: 'j', kind: 'horizontal', purpose: 'p', participants: ['a'], model: { type: 'logistic' }, trainig: { rounds: 3 } });
    expect(horizontal).toContain('job.yaml: field `(top level)`: Unrecognized key: "trainig" (did you mean `training`?)');
    const vertical = job({ name: 'j', kind: 'vertical-lr', purpose: 'p', guest: 'bank', hosts: ['tax'], training: { epoch: 3, Patience: 2 } });
    expect(vertical).toContain('field `training`: Unrecognized keys: "epoch", "Patience" ("epoch": did you mean `epochs`?) ("Patience": did you mean `patience`?)');
    // Two slips in a name of four letters or more (Levenshtein distance 2) still find it.
    const slips = job({ name: 'j', kind: 'vertical-lr', purpose: 'p', guest: 'bank', hosts: ['tax'], training: { epoks: 3 } });
    expect(slips).toContain('field `training`: Unrecognized key: "epoks" (did you mean `epochs`?)');
    // A field far from every accepted one gets no guess.
    expect(job({ name: 'j', kind: 'vertical-lr', purpose: 'p', guest: 'bank', hosts: ['tax'], colour: 'red' })).toMatch(/Unrecognized key: "colour"$/m);
    // A short key is not taken for a longer field two edits away (`id` is not `kind`).
    expect(job({ name: 'j', kind: 'vertical-lr', purpose: 'p', guest: 'bank', hosts: ['tax'], id: 'x' })).toMatch(/Unrecognized key: "id"$/m);
  });

  it('a job file that cannot be read is named, with the command it was given to', () => {
    expect(() => loadYamlConfig('/nonexistent/job.yaml', JobSpec, 'job', '`job submit`')).toThrow('cannot read job config /nonexistent/job.yaml: ENOENT');
    try {
      loadYamlConfig('/nonexistent/job.yaml', JobSpec, 'job', '`job submit`');
    } catch (err) {
      expect((err as FedcreditError).hint).toContain('check the path given to `job submit`');
    }
  });
});
