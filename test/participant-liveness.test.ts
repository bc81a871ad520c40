/**
 * Issue 24: a participant whose event loop stops (a deadlock, a stopped process) keeps its TCP connection open, so
 * only a check it must answer finds it. SIGSTOP is a faithful model of a hung event loop: the process answers
 * nothing while the kernel keeps its socket alive. The coordinator must mark it unreachable within the stated bound,
 * and a job waiting on it must fail by its rules then, not at the end of its offer timeout.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { livenessBoundMs } from '../src/wire/liveness.js';
import { HOMO_PARTIES, TestFederation, UCI, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { verticalJob, writeTinyVertical } from './helpers/vertical.js';

const NAMES = ['bank-a', 'bank-b'];
const files = HOMO_PARTIES.map((p) => join(UCI, `fate_default_credit_homo_${p}.csv`));
const LIVENESS_TIMEOUT_S = 2;
const OFFER_TIMEOUT_S = 120;
/**
 * A vertical job's parties compute between messages: under a loaded CI machine a PSI step has kept a party's event
 * loop busy for over 2 s (measured), so the vertical case allows more.
 */
const VERTICAL_LIVENESS_TIMEOUT_S = 6;
/** Slack over the stated bound for polling the log file and a loaded 2-core machine. */
const SLACK_MS = 1_500;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('a participant whose event loop stops (SIGSTOP)', () => {
  let fed: TestFederation;
  const coordinatorLog = () => readFileSync(join(fed.dir, 'logs', 'coordinator.log'), 'utf8');
  const connections = (org: string) =>
    coordinatorLog()
      .split('\n')
      .filter((l) => l.includes('"participant connected"') && l.includes(`"participant":"${org}"`)).length;

  async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<number> {
    const started = Date.now();
    while (!ok()) {
      if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms; coordinator log tail:\n${coordinatorLog().split('\n').slice(-10).join('\n')}`);
      await sleep(50);
    }
    return Date.now();
  }

  beforeAll(async () => {
    fed = await TestFederation.start(
      NAMES.map((name, i) => ({ name, data: uciHomoSpec(files[i]!) })),
      { coordinator: { liveness_timeout_s: LIVENESS_TIMEOUT_S, offer_timeout_s: OFFER_TIMEOUT_S } },
    );
  });
  afterAll(async () => {
    fed?.cluster.process('bank-b')?.kill('SIGCONT');
    await fed?.stop();
  });

  it(`is marked unreachable within ${LIVENESS_TIMEOUT_S}s + one ping interval, a job offered to it fails then, and it reconnects once it runs again`, async () => {
    for (const org of NAMES) await until(`${org} connects`, () => connections(org) === 1, 120_000);
    const bound = livenessBoundMs(LIVENESS_TIMEOUT_S * 1000);

    const stoppedAt = Date.now();
    expect(fed.cluster.process('bank-b')!.kill('SIGSTOP')).toBe(true);
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(horizontalJob({ participants: NAMES })), 'test-bank');
    const last = client.watchJob(jobId, () => undefined);

    const markedAt = await until(
      'the coordinator marks bank-b unreachable',
      () => /"participant":"bank-b"[^\n]*"msg":"participant unreachable: left a liveness ping unanswered/.test(coordinatorLog()),
      OFFER_TIMEOUT_S * 1000,
    );
    const detectedMs = markedAt - stoppedAt;
    const ended = await last;
    const failedMs = Date.now() - stoppedAt;
    console.log(
      `liveness: bank-b (SIGSTOP) marked unreachable ${detectedMs} ms after it stopped (liveness_timeout_s ${LIVENESS_TIMEOUT_S}, stated bound ${bound} ms); the job offered to it failed ${failedMs} ms after it stopped`,
    );
    expect(detectedMs).toBeLessThanOrEqual(bound + SLACK_MS);
    expect(ended.state).toBe('failed');
    expect(ended.message).toMatch(/participant bank-b did not answer the job offer: unreachable \(left a liveness ping unanswered for \d+(\.\d)?s/);
    expect(failedMs).toBeLessThan((OFFER_TIMEOUT_S * 1000) / 4);

    fed.cluster.process('bank-b')!.kill('SIGCONT');
    await until('bank-b reconnects after SIGCONT', () => connections('bank-b') === 2, 120_000);
    // bank-a, which answers its pings, was never dropped.
    expect(coordinatorLog()).not.toMatch(/"participant":"bank-a"[^\n]*unreachable/);
  });
});

describe('a party of a vertical job whose event loop stops mid-training (SIGSTOP)', () => {
  const tiny = writeTinyVertical('fedcredit-liveness-data-', 24);

  let fed: TestFederation;
  beforeAll(async () => {
    fed = await TestFederation.start(
      [
        { name: 'bank', data: tiny.bank },
        { name: 'tax-bureau', data: tiny.tax },
      ],
      { coordinator: { liveness_timeout_s: VERTICAL_LIVENESS_TIMEOUT_S } },
    );
  });
  afterAll(async () => {
    fed?.cluster.process('tax-bureau')?.kill('SIGCONT');
    await fed?.stop();
    rmSync(tiny.dir, { recursive: true, force: true });
  });

  it('pauses the job within the liveness bound, not at step_timeout_s, and the job completes once the party runs again', async () => {
    const bankLog = join(fed.dir, 'logs', 'bank.log');
    const coordinatorLog = join(fed.dir, 'logs', 'coordinator.log');
    // A step deadline far beyond the test: only the liveness check can notice the frozen party in time. Three epochs
    // of seven batches (was six): the party is frozen after the first, and the job has twenty left to finish after it.
    const running = fed.run(verticalJob({ training: { epochs: 3, batch_size: 256, patience: 0, step_timeout_s: 600, grace_period_s: 120 } }));
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline && !/"name":"batch"[^\n]*"step done"/.test(readFileSync(bankLog, 'utf8'))) await sleep(20);
    const frozen = fed.cluster.process('tax-bureau')!;
    const logBefore = readFileSync(coordinatorLog, 'utf8').length;
    const since = () => readFileSync(coordinatorLog, 'utf8').slice(logBefore);
    const stoppedAt = Date.now();
    expect(frozen.kill('SIGSTOP')).toBe(true);
    try {
      while (Date.now() - stoppedAt < 60_000 && !/"waitingFor":\["tax-bureau"\],"msg":"vertical job paused"/.test(since())) await sleep(50);
      const pausedMs = Date.now() - stoppedAt;
      expect(since()).toMatch(/"participant":"tax-bureau"[^\n]*"msg":"participant unreachable: left a liveness ping unanswered/);
      expect(since()).toMatch(/"waitingFor":\["tax-bureau"\],"msg":"vertical job paused"/);
      console.log(
        `liveness: the vertical job paused ${pausedMs} ms after tax-bureau stopped (liveness_timeout_s ${VERTICAL_LIVENESS_TIMEOUT_S}, stated bound ${livenessBoundMs(VERTICAL_LIVENESS_TIMEOUT_S * 1000)} ms, step_timeout_s 600)`,
      );
      expect(pausedMs).toBeLessThanOrEqual(livenessBoundMs(VERTICAL_LIVENESS_TIMEOUT_S * 1000) + SLACK_MS);
    } finally {
      frozen.kill('SIGCONT');
    }
    const { last, events } = await running;
    expect(last.state, last.message).toBe('succeeded');
    expect(events.some((e) => /paused at (batch|validate) \(step \d+\): waiting up to 120s for tax-bureau to return/.test(e.message))).toBe(true);
  });
});
