/**
 * A t-of-n collective key over the real wire: four participant processes and a coordinator with mutual TLS, a 3-of-4
 * `ckks-threshold` job on UCI slices, and one participant killed (kill -9) mid-job. The job finishes on the other
 * three, the re-sharing and every quorum are in the ledger, and the ledger replays. A participant killed and restarted
 * mid-job rejoins from its job folder (its key share and its record of decryption shares given).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { TestFederation, UCI, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { readLedger } from '../src/ledger/read.js';
import { replayLedger } from '../src/jobs/replay.js';
import type { JobEvent } from '../src/wire/messages.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c', 'bank-d'];
const ROWS = 1500;

describe('a 3-of-4 collective key over gRPC, a participant killed mid-job (kill -9)', () => {
  let slices: string;
  let fed: TestFederation;

  beforeAll(async () => {
    slices = await mkdtemp(join(tmpdir(), 'fedcredit-tn-slices-'));
    const parts: [string, number][] = [
      ['guest', 0],
      ['host_1', 0],
      ['host_2', 0],
      ['guest', ROWS],
    ];
    const files = await Promise.all(
      parts.map(async ([part, from], i) => {
        const lines = (await readFile(join(UCI, `fate_default_credit_homo_${part}.csv`), 'utf8')).split('\n');
        const out = join(slices, `${NAMES[i]}.csv`);
        await writeFile(out, [lines[0], ...lines.slice(1 + from, 1 + from + ROWS)].join('\n') + '\n');
        return out;
      }),
    );
    fed = await TestFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(files[i]!) })));
  }, 180_000);
  afterAll(async () => {
    await fed?.stop();
    if (slices) await rm(slices, { recursive: true, force: true });
  });

  it('finishes on the other three; the ledger records the re-sharing and a quorum of 3 per sum, and replays', async () => {
    const job = horizontalJob({ participants: NAMES, encryption: { scheme: 'ckks-threshold', threshold: 3 }, training: { rounds: 4, winsorize: 0, round_timeout_s: 60 } });
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(job), 'test-bank');
    let killed: Promise<void> | undefined;
    const events: JobEvent[] = [];
    const last = await client.watchJob(jobId, (e) => {
      events.push(e);
      if (e.progress?.round === 2 && !killed) killed = fed.cluster.kill('bank-d', 'SIGKILL');
    });
    await killed;
    client.close();
    expect(last.state, last.message).toBe('succeeded');
    const rounds = events.filter((e) => e.progress).map((e) => e.progress!);
    expect(rounds).toHaveLength(4);
    expect(rounds[0]!.participants).toEqual(NAMES);
    expect(rounds.at(-1)!.participants).toEqual(['bank-a', 'bank-b', 'bank-c']);
    expect(rounds.at(-1)!.dropped.join(' ')).toContain('bank-d');
    const ledgerDir = fed.ledgerDir;
    const entries = readLedger(ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    expect(entries.filter((e) => e.entry.kind === 'key_share_reshared')).toHaveLength(4);
    const quorums = entries.filter((e) => e.entry.kind === 'aggregate_produced').map((e) => (e.body as { quorum: string[] }).quorum);
    for (const q of quorums) expect(q).toHaveLength(3);
    expect(quorums.at(-1)).not.toContain('bank-d');
    const report = await replayLedger(ledgerDir, { jobId });
    expect(report.jobs[0]!.failures).toEqual([]);
    expect(report.jobs[0]!.publishedModelOk).toBe(true);
  });

  it("a participant killed and restarted mid-job rejoins with its key share and its record of shares given (0600); every participant's share and record go when the job ends", async () => {
    const logOf = (org: string) => join(fed.dir, 'logs', `${org}.log`);
    const logSince = (org: string, from: number) => readFileSync(logOf(org), 'utf8').slice(from);
    const waitFor = async (what: () => boolean, ms: number) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline && !what()) await new Promise((r) => setTimeout(r, 100));
    };
    // The first test left bank-d dead: start it again before the offer.
    const started = readFileSync(logOf('bank-d'), 'utf8').length;
    fed.cluster.startParticipant('bank-d');
    await waitFor(() => /connected to coordinator/.test(logSince('bank-d', started)), 120_000);

    // Rounds of this small model take well under a second, and bank-a must restart (a new process: WASM, keys,
    // reconnecting with back-off) before the last one: 50 rounds leave it tens of seconds where 15 left it a few, which a
    // whole-suite run did not always give it.
    const job = horizontalJob({ participants: NAMES, encryption: { scheme: 'ckks-threshold', threshold: 3 }, training: { rounds: 50, winsorize: 0, round_timeout_s: 60 } });
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(job), 'test-bank');
    // bank-a, first in canonical order, is in every quorum while it is connected: it gave shares before it is killed.
    const record = join(fed.dir, 'fedcredit-state', 'bank-a', 'jobs', jobId, 'collective-shares-given.json');
    let from = 0;
    let restarted: Promise<void> | undefined;
    let recordMode = 0;
    // Each participant's key share and record of shares given, in its job folder while the job runs.
    const kept = NAMES.flatMap((org) => ['ckks-secret.key', 'collective-shares-given.json'].map((name) => join(fed.dir, 'fedcredit-state', org, 'jobs', jobId, name)));
    let held: string[] = [];
    const events: JobEvent[] = [];
    const last = await client.watchJob(jobId, (e) => {
      events.push(e);
      if (e.progress?.round === 2 && !restarted) {
        recordMode = statSync(record).mode & 0o777;
        held = kept.filter((file) => existsSync(file));
        from = readFileSync(logOf('bank-a'), 'utf8').length;
        restarted = fed.cluster.kill('bank-a', 'SIGKILL').then(() => fed.cluster.startParticipant('bank-a'));
      }
    });
    await restarted;
    client.close();
    expect(last.state, last.message).toBe('succeeded');
    expect(recordMode).toBe(0o600);
    expect(logSince('bank-a', from)).toMatch(new RegExp(`"job":"${jobId}","sharesGiven":[1-9]\\d*,"msg":"job restored after a restart`));
    const rounds = events.filter((e) => e.progress).map((e) => e.progress!);
    const missing = rounds.findIndex((r) => !r.participants.includes('bank-a'));
    expect(missing).toBeGreaterThan(0);
    const back = rounds.slice(missing).findIndex((r) => r.participants.includes('bank-a'));
    console.log(`bank-a missed ${back < 0 ? 'every round' : `${back} round(s)`} from round ${rounds[missing]!.round} of ${rounds.length}`);
    expect(back >= 0, 'bank-a never rejoined').toBe(true);
    // Back, it is in the quorum again: it gave shares after the restart, its record reloaded (the ledger replays).
    const ledgerDir = fed.ledgerDir;
    const quorums = readLedger(ledgerDir)
      .entries.filter((e) => e.entry.jobId === jobId && e.entry.kind === 'aggregate_produced')
      .map((e) => (e.body as { quorum: string[] }).quorum);
    expect(quorums.at(-1)).toContain('bank-a');
    const report = await replayLedger(ledgerDir, { jobId });
    expect(report.jobs[0]!.failures).toEqual([]);
    // The job is over: every participant's key share and record are gone from its job folder (bank-a's restored ones too).
    expect(held, 'every participant held its key share and record during the job').toEqual(kept);
    await waitFor(() => !kept.some((file) => existsSync(file)), 10_000);
    expect(kept.filter((file) => existsSync(file))).toEqual([]);
  });
});
