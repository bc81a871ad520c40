import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sharesGivenFile } from '../src/he/threshold/shares-given-file.js';

const share = (digest: string) => ({ ciphertextDigest: digest, purpose: 'gradient', rule: 'masked-gradient' });

describe('the record of decryption shares given (collective-shares-given.json)', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is written whole, mode 0600, with the fields beside it, and read back as it was after a restart', () => {
    dir = mkdtempSync(join(tmpdir(), 'fc-shares-'));
    const file = join(dir, 'collective-shares-given.json');
    const first = sharesGivenFile(file, { keySha256: 'ab'.repeat(32) });
    expect(first.given).toBeUndefined();
    first.keep!({ issued: [share('01')] });
    first.keep!({ issued: [share('01'), share('02')] });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const restarted = sharesGivenFile(file);
    expect(restarted.given).toEqual({ keySha256: 'ab'.repeat(32), issued: [share('01'), share('02')] });
    // The restarted memory keeps the digest beside each record it writes.
    restarted.keep!({ issued: [share('01'), share('02'), share('03')], contributorSets: { 'update/1': ['a', 'b'] } });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ keySha256: 'ab'.repeat(32), issued: [share('01'), share('02'), share('03')], contributorSets: { 'update/1': ['a', 'b'] } });
  });

  it('a damaged record is refused naming the file, rather than read as "no shares given"', () => {
    dir = mkdtempSync(join(tmpdir(), 'fc-shares-'));
    const file = join(dir, 'collective-shares-given.json');
    writeFileSync(file, '{"issued": [');
    expect(() => sharesGivenFile(file)).toThrow(`${file} does not read`);
    writeFileSync(file, '{"keySha256": "ab"}');
    expect(() => sharesGivenFile(file)).toThrow(/no "issued" list/);
  });
});
