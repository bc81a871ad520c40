import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import type { LoadReport } from '../src/data/load-report.js';
import type { LoadedDataset } from '../src/data/csv.js';
import { createLogger } from '../src/log.js';
import type { StepRequest } from '../src/wire/messages.js';
import { PartyChannel, type StepHandler } from '../participant/vertical-channel.js';
import { PSI_DIR } from '../participant/job-store.js';
import { Superseded } from '../src/vertical/lr/port.js';
import { VerticalParty, type PartyData } from '../participant/vertical-job.js';
import { bankTaxSetup, verticalJob } from './helpers/vertical.js';

const io = { relay: async () => undefined, decrypt: async () => undefined };

/** A party whose every step does some local work, then waits for one payload from the guest. */
class WaitingParty implements StepHandler {
  readonly outcomes: string[] = [];
  readonly channel = new PartyChannel('job-1', 'tax-bureau', 'bank', io, createLogger('test', 'silent'), 60_000, this);

  async execute(step: number, req: StepRequest): Promise<Record<string, unknown>> {
    await new Promise((r) => setTimeout(r, 200)); // local work (preparing ids, say) before the first wait
    try {
      await this.channel.receive('bank', 'payload', step, req.attempt);
      this.outcomes.push(`attempt ${req.attempt}: received`);
    } catch (err) {
      this.outcomes.push(`attempt ${req.attempt}: ${err instanceof Superseded ? 'superseded' : (err as Error).message}`);
      throw err;
    }
    return {};
  }

  stateDigest(): Uint8Array {
    return new Uint8Array();
  }

  beginStep(): void {}
}

const request = (attempt: number): StepRequest => ({ step: 'psi', attempt, epoch: 0, batch: 0, argsJson: '{}' });
const parties: PartyChannel[] = [];
const dirs: string[] = [];
afterAll(() => {
  parties.forEach((p) => p.dispose());
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('a vertical step retried while its first attempt is still working', () => {
  it('stops the first attempt at its next wait instead of letting it wait out the step deadline', async () => {
    // A one-minute step deadline: the test's 10 s timeout fails it if the first attempt waits it out.
    const party = new WaitingParty();
    parties.push(party.channel);
    const first = party.channel.runStep(1, request(0));
    await new Promise((r) => setTimeout(r, 50));
    const second = party.channel.runStep(1, request(1));
    expect(await first).toBeUndefined();
    expect(party.outcomes).toEqual(['attempt 0: superseded']);
    party.channel.dispose();
    await expect(second).resolves.toBeUndefined();
    expect(party.outcomes).toEqual(['attempt 0: superseded', 'attempt 1: superseded']);
  }, 10_000);
});

describe('a vertical party restarted between its PSI step and the next', () => {
  const spec = JobSpec.parse(verticalJob({ encryption: { scheme: 'plaintext' } })) as VerticalJobSpec;
  const data: LoadedDataset = { ids: ['A', 'B', 'C', 'D'], features: ['h1'], x: Float32Array.from([1, 2, 3, 4]), groups: {}, rows: 4, report: {} as LoadReport };
  const source = (rowsDigest: string): PartyData => ({ ids: () => data.ids.map((id, r) => [id, r] as const), load: () => data, rowsDigest: () => rowsDigest });
  const log = createLogger('test', 'silent');

  /** A host's job folder as the PSI step leaves it: its keys, the aligned rows, and what was aligned with what rows. */
  async function aligned(): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'fedcredit-restore-'));
    dirs.push(dir);
    const job = new VerticalParty('job-1', spec, 'tax-bureau', source('rows-v1'), ['h1'], io, log, dir);
    parties.push(job.channel);
    await job.channel.install(bankTaxSetup());
    const rows = join(dir, PSI_DIR, 'aligned');
    mkdirSync(rows, { recursive: true });
    for (const [part, list] of [
      ['train', [2, 0]],
      ['validation', [1]],
      ['test', [3]],
    ] as const)
      writeFileSync(join(rows, `${part}.rows`), new Uint8Array(Uint32Array.from(list).buffer));
    writeFileSync(join(rows, 'done.json'), JSON.stringify({ step: 1, attempt: 0, rowsDigest: 'rows-v1' }));
    return dir;
  }

  it('rejoins from the aligned rows, and records them by id in the shared order when the next step begins', async () => {
    const dir = await aligned();
    const job = await VerticalParty.restore('job-1', spec, 'tax-bureau', source('rows-v1'), ['h1'], io, log, dir);
    expect(job).toBeDefined();
    parties.push(job!.channel);
    void job!.channel.runStep(2, { step: 'validate', attempt: 0, epoch: 1, batch: 0, argsJson: '{}' }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    expect(readFileSync(join(dir, 'aligned-ids.csv'), 'utf8')).toBe('id,part\nC,train\nA,train\nB,validation\nD,test\n');
    expect(existsSync(join(dir, PSI_DIR))).toBe(false);
  });

  it('does not rejoin when its rows changed since the PSI', async () => {
    const dir = await aligned();
    expect(await VerticalParty.restore('job-1', spec, 'tax-bureau', source('rows-v2'), ['h1'], io, log, dir)).toBeUndefined();
  });
});

describe('a vertical party sent its setup again (the coordinator lost it before its first step)', () => {
  const setup = (salt: number) => bankTaxSetup(new Uint8Array(), new Uint8Array(32).fill(salt));

  it('names the missing setup when asked for a step before it; takes the same setup twice as once; refuses another (a coordinator swapping keys after the checks)', async () => {
    const party = new WaitingParty();
    parties.push(party.channel);
    expect(() => party.channel.psiSalt).toThrow(/was asked for a step of job job-1 before the job's setup reached it/);
    await party.channel.install(setup(1));
    await expect(party.channel.install(setup(1))).resolves.toBeUndefined();
    expect(party.channel.psiSalt).toEqual(new Uint8Array(32).fill(1));
    await expect(party.channel.install(setup(2))).rejects.toMatchObject({ code: 'FC_PROTOCOL', message: expect.stringMatching(/a second setup of job job-1, other than the first/) });
    expect(party.channel.psiSalt, 'the first setup stays').toEqual(new Uint8Array(32).fill(1));
  });
});
