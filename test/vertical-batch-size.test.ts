/**
 * A vertical batch fills one CKKS ciphertext by default: 4,096 records under the single key (N = 8192), 8,192 under the
 * collective key's ring (N = 16384); a larger batch than the scheme's ciphertext holds is refused, naming the scheme.
 */
import { describe, expect, it } from 'vitest';
import { JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import { verticalJob } from './helpers/vertical.js';

const parse = (o: Parameters<typeof verticalJob>[0]) => JobSpec.parse(verticalJob(o)) as VerticalJobSpec;
const withoutBatch = (scheme: string) => {
  const job = verticalJob({ encryption: { scheme } });
  const { batch_size: _omitted, ...training } = job.training;
  return JobSpec.parse({ ...job, training }) as VerticalJobSpec;
};

describe('vertical batch size', () => {
  it('defaults to one ciphertext of records: 4096 under ckks and plaintext, 8192 under ckks-threshold', () => {
    expect(withoutBatch('ckks').training.batch_size).toBe(4096);
    expect(withoutBatch('plaintext').training.batch_size).toBe(4096);
    expect(withoutBatch('ckks-threshold').training.batch_size).toBe(8192);
    expect(parse({ training: { batch_size: 1024 }, encryption: { scheme: 'ckks-threshold' } }).training.batch_size).toBe(1024);
  });

  it('refuses a batch larger than the scheme’s ciphertext, naming the scheme and the limit', () => {
    const single = JobSpec.safeParse(verticalJob({ training: { batch_size: 8192 } }));
    expect(single.success).toBe(false);
    expect(single.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toContain(
      'training.batch_size: at most 4096 under encryption.scheme ckks (a ciphertext of N = 8192 holds 4,096 records); up to 8192 only under ckks-threshold (N = 16384)',
    );
    const collective = JobSpec.safeParse(verticalJob({ training: { batch_size: 8193 }, encryption: { scheme: 'ckks-threshold' } }));
    expect(collective.error!.issues[0]!.message).toMatch(/at most 8192/);
  });
});
