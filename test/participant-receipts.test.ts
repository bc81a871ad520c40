/**
 * What a participant keeps of the coordinator's receipts and how it checks a coordinator against them: the newest
 * (largest) receipt is kept across jobs, and a Welcome whose tree head does not extend it (a ledger cut short or
 * rewritten) is refused with FC_LEDGER_ROLLED_BACK, with nothing but the consistency proof to go on.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger, decodeTreeHead, encodeTreeHead } from '../src/ledger/ledger.js';
import { OwnRecord, ledgerRollback } from '../participant/own-record.js';
import { ErrorCode } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'fedcredit-participant-receipts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const event = (i: number) => ({ kind: 'round_closed', jobId: `job-${i % 2}`, body: { round: i } });

describe("a participant and the coordinator's receipts", () => {
  it('keeps the newest receipt of any job, and checks a Welcome against it', async () => {
    const ledger = await Ledger.open(join(dir, 'ledger'), 'coordinator', join(dir, 'key.pem'));
    const record = new OwnRecord(join(dir, 'bank'));
    expect(record.newestReceipt()).toBeUndefined();
    const heads = [];
    for (let i = 0; i < 6; i++) heads.push((await ledger.append(event(i))).treeHead);
    record.receipt('job-1', encodeTreeHead(heads[4]!));
    record.receipt('job-0', encodeTreeHead(heads[2]!)); // an older one arriving late does not replace it
    expect(decodeTreeHead(record.newestReceipt()!).size).toBe(5);
    expect(
      readFileSync(join(dir, 'bank', 'receipts', 'job-1.receipts'), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(1);

    // The honest coordinator's Welcome: its tree head and the proof from the receipt the Hello carried.
    const check = ledger.checkReceipt(decodeTreeHead(record.newestReceipt()!));
    expect(check.ok).toBe(true);
    const now = encodeTreeHead(ledger.treeHead());
    expect(ledgerRollback('bank', record.newestReceipt(), now, check.ok ? check.proof : [])).toBeUndefined();
    expect(ledgerRollback('bank', undefined, now, [])).toBeUndefined(); // nothing held yet

    // A coordinator whose ledger is shorter than the receipt, or claims a head the receipt is not a prefix of.
    const shorter = ledgerRollback('bank', record.newestReceipt(), encodeTreeHead(heads[1]!), []);
    expect(shorter?.code).toBe(ErrorCode.LEDGER_ROLLED_BACK);
    expect(shorter?.message).toMatch(/the coordinator's ledger \(2 entries\) is not an extension of the receipt bank holds \(5 entries, issued .*\): it is shorter/);
    const other = await Ledger.open(join(dir, 'other'), 'coordinator', join(dir, 'key.pem'));
    for (let i = 0; i < 8; i++) await other.append(event(i + 50));
    const forged = ledgerRollback('bank', record.newestReceipt(), encodeTreeHead(other.treeHead()), check.ok ? check.proof : []);
    expect(forged?.code).toBe(ErrorCode.LEDGER_ROLLED_BACK);
    await other.close();
    await ledger.close();
  });
});
