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
  /** Record `seq`, or an error naming how many records the file has (a test that set up too few entries). */
  const record = (seq: number) => {
    const r = records[seq];
    if (r === undefined) throw new RangeError(`${logFile} has ${records.length} records, so no record ${seq}`);
    return r;
  };
  return { buf, records, record, trailing: buf.length - at };
}
