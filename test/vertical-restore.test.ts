/**
 * What a vertical party restarted mid-job rebuilds from its job folder (participant/vertical-job.ts restore), in
 * process: a folder holding the setup and nothing of the PSI comes back to run the PSI again; one whose aligned
 * enterprises are no longer all in the owner's data does not come back, since its rows would be paired with the
 * peers' wrongly. (The whole restart over gRPC: test/vertical-keys-resume.test.ts.)
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JOB_FILES, JobFolder, JobStore } from '../participant/job-store.js';
import { VerticalParty, type PartyData } from '../participant/vertical-job.js';
import { JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import type { LoadedDataset } from '../src/data/csv.js';
import type { LoadReport } from '../src/data/load-report.js';
import { createLogger } from '../src/log.js';
import { encodeMessage } from '../src/wire/proto.js';
import { bankTaxSetup, verticalJob } from './helpers/vertical.js';

describe('a vertical party rebuilt from its job folder after a restart', () => {
  const root = mkdtempSync(join(tmpdir(), 'fc-vertical-restore-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const spec = JobSpec.parse(verticalJob({ encryption: { scheme: 'plaintext' } })) as VerticalJobSpec;
  const io = { relay: async () => undefined, decrypt: async () => undefined };
  const log = createLogger('test', 'silent');
  const source = (ids: string[]): PartyData => {
    const data: LoadedDataset = { ids, features: ['h1'], x: Float32Array.from(ids, (_, r) => r), groups: {}, rows: ids.length, report: {} as LoadReport };
    return { ids: () => ids.map((id, r) => [id, r] as const), load: () => data, rowsDigest: () => ids.join('|') };
  };
  /** A job accepted (its box key written) whose setup arrived: the folder a party leaves before its PSI step. */
  const folderWithSetup = (jobId: string) => {
    const store = new JobStore(join(root, jobId));
    store.save({ id: jobId, specJson: JSON.stringify(spec), features: ['h1'] });
    const dir = store.dirOf(jobId);
    new VerticalParty(jobId, spec, 'tax-bureau', source(['A', 'B']), ['h1'], io, log, dir).dispose();
    const folder = new JobFolder(dir);
    folder.write(JOB_FILES.setup, encodeMessage('VerticalSetup', bankTaxSetup()));
    return { dir, folder };
  };

  it('stopped after its setup and before its PSI step completed, it comes back to run the PSI again', async () => {
    const { dir } = folderWithSetup('job-before-psi');
    const job = await VerticalParty.restore('job-before-psi', spec, 'tax-bureau', source(['A', 'B']), ['h1'], io, log, dir);
    expect(job).toBeDefined();
    job!.dispose();
  });

  it('with an aligned enterprise gone from its data, it does not come back', async () => {
    const { dir, folder } = folderWithSetup('job-after-psi');
    folder.write(JOB_FILES.alignedIds, 'enterprise_id,part\nA,train\nB,test\n');
    folder.write(JOB_FILES.progress, '{}');
    expect(await VerticalParty.restore('job-after-psi', spec, 'tax-bureau', source(['A']), ['h1'], io, log, dir)).toBeUndefined();
  });
});
