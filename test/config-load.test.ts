/** A config error says what is wrong with a field: missing when it is absent, its value when it has the wrong type. */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { ParticipantConfig } from '../src/config/schemas.js';
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
});
