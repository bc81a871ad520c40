import { readFileSync } from 'node:fs';

/** entries.log split by the documented framing ([u32 BE len][SignedEntry][u32 BE crc32]), independently of src/. */
export function fileRecords(logFile: string) {
  const buf = readFileSync(logFile);
  const records: { offset: number; length: number; payload: Buffer }[] = [];
  let at = 0;
  while (at + 8 <= buf.length) {
    const len = buf.readUInt32BE(at);
    if (at + 8 + len > buf.length) break;
    records.push({ offset: at, length: 8 + len, payload: buf.subarray(at + 4, at + 4 + len) });
    at += 8 + len;
  }
  return { buf, records, trailing: buf.length - at };
}
