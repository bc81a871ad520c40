/**
 * Secrets at rest: after a vertical and a horizontal job, every file a participant and the coordinator keep is
 * listed and checked. Nothing is readable by other users of the machine (files 0600 at most, folders 0700), and no
 * per-job private key or CKKS secret key outlives its job: the only private keys left are each node's long-term
 * ones (its TLS key, the coordinator's ledger signing key).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { EphemeralFederation } from '../src/federation/ephemeral.js';
import { uciHomoFile } from '../src/data/public-datasets.js';
import { DATASETS, horizontalJob, HOMO_PARTIES, TestFederation, uciHomoSpec } from './helpers/federation.js';
import { verticalJob } from './helpers/vertical.js';
import { writeVerticalSynth } from '../src/synth/vertical.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

interface Kept {
  path: string;
  mode: number;
  directory: boolean;
}

function walk(root: string, dir = root): Kept[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    const kept = { path: relative(root, path), mode: statSync(path).mode & 0o777, directory: e.isDirectory() };
    return e.isDirectory() ? [kept, ...walk(root, path)] : [kept];
  });
}

/** What may hold a private key after every job has ended: long-term identities, never a job's. */
const LONG_TERM_KEYS = [/^keys\/ledger-ed25519\.pem$/];

/** Private key material by its look: PEM private keys and SEAL secret keys (SEAL's magic A15E then a SecretKey). */
function holdsPrivateKey(file: string): boolean {
  const bytes = readFileSync(file);
  return bytes.includes('PRIVATE KEY') || /(^|\/)(box-x25519\.pem|ckks-secret\.key|psi-key|ckks-secret-key\.bin)$/.test(file);
}

describe('secrets at rest after a vertical and a horizontal job', () => {
  const feds: EphemeralFederation[] = [];
  afterAll(async () => {
    for (const f of feds) await f.stop();
  });

  const jobKeys = (root: string, kept: Kept[]) => kept.filter((k) => !k.directory && holdsPrivateKey(join(root, k.path)) && !LONG_TERM_KEYS.some((r) => r.test(k.path))).map((k) => k.path);
  const check = (root: string, label: string) => {
    const kept = walk(root);
    expect(kept.length, `${label} keeps files`).toBeGreaterThan(3);
    const open = kept.filter((k) => (k.mode & 0o077) !== 0).map((k) => `${k.path} (${k.mode.toString(8)})`);
    expect(open, `${label}: readable by other users`).toEqual([]);
    expect(jobKeys(root, kept), `${label}: private keys left after the jobs ended`).toEqual([]);
    return kept;
  };
  /** The parties learn the end from the coordinator and clean up after it: give them up to 10 s to drop their job keys. */
  const cleanedUp = async (roots: string[]) => {
    const deadline = Date.now() + 10_000;
    // A file removed between listing and reading makes that look fail: the clean-up is still under way.
    const left = (root: string) => {
      try {
        return jobKeys(root, walk(root)).length > 0;
      } catch {
        return true;
      }
    };
    while (Date.now() < deadline && roots.some(left)) await new Promise((r) => setTimeout(r, 100));
  };

  it('vertical (CKKS, binning, scorecard; synthetic SMEs): the parties and the coordinator keep only 0600 files in 0700 folders, and no job key', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fedcredit-secrets-data-'));
    const synth = await writeVerticalSynth(dataDir, { seed: 4, bankRows: 3000 });
    const parties = synth.parties.filter((p) => p.party === 'bank' || p.party === 'tax-bureau').map((p) => ({ name: p.party, data: { ...p.spec, path: p.file } }));
    const fed = await TestFederation.start(parties);
    feds.push(fed);
    const job = {
      ...verticalJob({ hosts: ['tax-bureau'], alignment: { id_format: 'uscc', min_intersection: 500 }, training: { epochs: 2, patience: 0, batch_size: 1024 } }),
      binning: { iv_threshold: 0 },
      scorecard: {},
    };
    const { last, jobId } = await fed.run(job);
    expect(last.state, last.message).toBe('succeeded');
    await cleanedUp([...['bank', 'tax-bureau'].map((org) => join(fed.dir, 'fedcredit-state', org)), fed.stateDir]);
    for (const org of ['bank', 'tax-bureau']) {
      const kept = check(join(fed.dir, 'fedcredit-state', org), org);
      expect(kept.map((k) => k.path)).toContain(join('jobs', jobId, 'model-part.json'));
    }
    const coordinator = check(fed.stateDir, 'coordinator');
    expect(coordinator.map((k) => k.path)).toContain(join('jobs', jobId, 'model', 'manifest.json'));
  });

  it('horizontal (CKKS): the CKKS secret key every participant held is gone when the job ends', async () => {
    const names = ['bank-a', 'bank-b'];
    const fed = await TestFederation.start(names.map((name, i) => ({ name, data: uciHomoSpec(uciHomoFile(DATASETS, HOMO_PARTIES[i]!)) })));
    feds.push(fed);
    const { last } = await fed.run(horizontalJob({ participants: names, training: { rounds: 2 } }));
    expect(last.state, last.message).toBe('succeeded');
    await cleanedUp([...names.map((org) => join(fed.dir, 'fedcredit-state', org)), fed.stateDir]);
    for (const org of names) check(join(fed.dir, 'fedcredit-state', org), org);
    check(fed.stateDir, 'coordinator');
  });
});
