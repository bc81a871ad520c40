/**
 * A ledger that cannot be rolled back, on real processes: every party keeps the signed tree head of the job's end;
 * a coordinator restarted on a ledger cut short (the last 100 bytes of a finished job's ledger, its `job_ended`
 * gone) refuses to extend it when the participants reconnect, naming the participant and the sizes, instead of
 * resuming the finished job; a coordinator will not start on a ledger with a missing blob, and `audit replay`
 * ends on it with an FC_ error and exit code 4.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { HOMO_PARTIES, TestFederation, UCI, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { cli } from './helpers/cli.js';
import { decodeTreeHead } from '../src/ledger/ledger.js';
import { readLedger } from '../src/ledger/read.js';
import { formatVerifyReport, verifyLedger } from '../src/ledger/verify.js';
import { hex } from '../src/bytes.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];

describe("a finished job's ledger cut short, with the participants connected", () => {
  let fed: TestFederation;
  let ledgerDir: string;
  let jobId: string;
  const newest = (org: string) => join(fed.dir, `state-${org}`, 'receipts', 'newest.sth');

  beforeAll(async () => {
    fed = await TestFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(join(UCI, `fate_default_credit_homo_${HOMO_PARTIES[i]}.csv`)), extra: { state_dir: `state-${name}` } })));
    ledgerDir = fed.ledgerDir;
    const run = await fed.run(horizontalJob({ participants: NAMES, training: { rounds: 2 }, encryption: { scheme: 'plaintext' } }));
    run.client.close();
    expect(run.last.state, run.last.message).toBe('succeeded');
    jobId = run.jobId;
    // The job's end is recorded, and its receipt sent, just after the last event: wait until every party has it.
    const size = () => readLedger(ledgerDir).entries.length;
    for (let i = 0; i < 100 && !NAMES.every((o) => existsSync(newest(o)) && decodeTreeHead(readFileSync(newest(o))).size === size()); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    await fed?.stop();
  });

  it('every party holds a receipt of the whole ledger, and audit verify reports that coverage', async () => {
    const entries = readLedger(ledgerDir).entries;
    expect(entries.at(-1)!.entry.kind).toBe('job_ended');
    for (const org of NAMES) expect(decodeTreeHead(readFileSync(newest(org))).size).toBe(entries.length);
    // Every party got a receipt at each round too, not only after its own submissions.
    const lines = readFileSync(join(fed.dir, 'state-bank-b', 'receipts', `${jobId}.receipts`), 'utf8')
      .trim()
      .split('\n');
    const sizes = lines.map((l) => decodeTreeHead(Buffer.from(l, 'hex')).size);
    const closed = entries.filter((e) => e.entry.kind === 'round_closed').map((e) => e.seq + 1);
    for (const s of closed) expect(sizes).toContain(s);

    const report = await verifyLedger(ledgerDir, { receiptsDir: join(fed.dir, 'state-bank-a', 'receipts') });
    expect(report.ok, report.failure?.detail).toBe(true);
    expect(report.newestReceipt?.size).toBe(entries.length);
    const text = formatVerifyReport(report);
    console.log(text);
    expect(text).toContain(`coverage: the newest receipt (newest.sth`);
    expect(text).toContain(`covers ${entries.length} of ${entries.length} entries`);
    const out = await cli(['audit', 'verify', ledgerDir, '--receipts', join(fed.dir, 'state-bank-a', 'receipts')]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`covers ${entries.length} of ${entries.length} entries (entries 0..${entries.length - 1}); every entry is covered`);
  });

  it('a restarted coordinator refuses to extend the truncated ledger, naming the participant and the sizes, and does not resume the job', async () => {
    const before = readLedger(ledgerDir).entries.length;
    await fed.cluster.kill('coordinator', 'SIGTERM');
    cpSync(ledgerDir, `${ledgerDir}.intact`, { recursive: true });
    const log = join(ledgerDir, 'entries.log');
    truncateSync(log, statSync(log).size - 100);
    const coordinatorLog = join(fed.dir, 'logs', 'coordinator.log');
    const logBefore = readFileSync(coordinatorLog, 'utf8').length;

    await fed.cluster.restartCoordinator();
    const coordinator = fed.cluster.process('coordinator')!;
    const exitCode = await new Promise<number | null>((resolve) => {
      if (coordinator.exitCode !== null) return resolve(coordinator.exitCode);
      const timer = setTimeout(() => resolve(null), 90_000);
      coordinator.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    const said = readFileSync(coordinatorLog, 'utf8').slice(logBefore);
    expect(exitCode, said.slice(-2000)).toBe(2);
    const refusal = said.split('\n').find((l) => l.startsWith('fedcredit: FC_LEDGER_ROLLED_BACK'));
    console.log(refusal);
    expect(refusal).toMatch(new RegExp(`participant bank-[abc] holds a receipt for ledger size ${before}; this coordinator's ledger has ${before - 1} entries`));
    expect(said).toContain('fix: the ledger was cut short or restored from an older copy');

    // Nothing was appended: the finished job was not resumed, and no failure was recorded in its name.
    const after = readLedger(ledgerDir).entries;
    expect(after.length).toBe(before - 1);
    expect(after.some((e) => e.entry.kind === 'job_resumed' || e.entry.kind === 'job_ended')).toBe(false);
    // The participants' record of the job is untouched: it still succeeded.
    for (const org of NAMES) expect(decodeTreeHead(readFileSync(newest(org))).size).toBe(before);
  });

  it('with the intact ledger back but a blob deleted, the coordinator will not start and audit replay exits 4 with an FC_ error', async () => {
    rmSync(ledgerDir, { recursive: true });
    cpSync(`${ledgerDir}.intact`, ledgerDir, { recursive: true });
    const withBlob = readLedger(ledgerDir).entries.find((e) => e.entry.blobs.length > 0)!;
    const blob = hex(withBlob.entry.blobs[0]!.sha256);
    unlinkSync(join(ledgerDir, 'blobs', blob));

    const start = await fed.cluster.restartCoordinator().then(
      () => undefined,
      (err: Error) => err,
    );
    expect(start).toBeInstanceOf(Error);
    const said = readFileSync(join(fed.dir, 'logs', 'coordinator.log'), 'utf8');
    const refusal = said.split('\n').find((l) => l.startsWith('fedcredit: FC_LEDGER_DAMAGED'));
    console.log(refusal);
    expect(refusal).toContain(`entry ${withBlob.seq}`);
    expect(refusal).toContain(blob);

    const replay = await cli(['audit', 'replay', ledgerDir]);
    expect(replay.code).toBe(4);
    expect(replay.stderr).toMatch(new RegExp(`^fedcredit: FC_LEDGER_DAMAGED: the ledger .* is damaged at entry ${withBlob.seq} \\(blob_missing\\)`));
    expect(replay.stderr).toContain(blob);
    expect(replay.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
