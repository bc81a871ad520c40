import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordSpill } from '../src/data/spill.js';

const root = mkdtempSync(join(tmpdir(), 'fc-spill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const record = (bucket: number, i: number) => {
  const r = Buffer.alloc(8);
  r.writeUInt32BE(bucket, 0);
  r.writeUInt32BE(i, 4);
  return r;
};

describe('RecordSpill', () => {
  it('reads back every record of a bucket in the order added, from disk once its buffer filled and from memory otherwise', () => {
    const spill = new RecordSpill(join(root, 'a'), 8, 4);
    const added = [5_000, 3, 0, 2_048];
    added.forEach((n, b) => {
      for (let i = 0; i < n; i++) spill.add(b, record(b, i));
    });
    // 16 KiB buffers hold 2,048 records of 8 bytes: bucket 0 went to its file; 1 and 3 stay in memory until read.
    expect(existsSync(join(spill.dir, '0.bin'))).toBe(true);
    expect(existsSync(join(spill.dir, '1.bin'))).toBe(false);
    added.forEach((n, b) => {
      const bytes = spill.read(b);
      expect(bytes.length).toBe(8 * n);
      for (let i = 0; i < n; i++) expect([bytes.readUInt32BE(8 * i), bytes.readUInt32BE(8 * i + 4)]).toEqual([b, i]);
    });
    // Records that fit in memory never touched the disk.
    expect(existsSync(join(spill.dir, '1.bin'))).toBe(false);
    expect(existsSync(join(spill.dir, '3.bin'))).toBe(false);
    spill.remove();
  });

  it('a closed spill keeps every bucket on disk for readBucket', () => {
    const spill = new RecordSpill(join(root, 'b'), 8, 2);
    for (let i = 0; i < 10; i++) spill.add(1, record(1, i));
    spill.close();
    expect(RecordSpill.readBucket(spill.dir, 1).length).toBe(80);
    expect(RecordSpill.readBucket(spill.dir, 0).length).toBe(0);
  });
});
