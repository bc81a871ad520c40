/**
 * Three hosts and a guest on the synthetic SME data: train a vertical model, then score enterprises with
 * `fedcredit score`. Each party computes its partial score on its own features and only masked shares travel; the
 * bank's probabilities must equal a centralised computation of the same model on the pooled raw columns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadDataset, type LoadedDataset } from '../src/data/csv.js';
import { cliPath } from '../src/federation/local-cluster.js';
import { readLedger } from '../src/ledger/read.js';
import { normaliseId } from '../src/psi/ids.js';
import { uscc } from '../src/data/uscc.js';
import { writeVerticalSynth, type VerticalSynthResult } from '../src/synth/vertical.js';
import { LABEL_COLUMN } from '../src/synth/sme.js';
import type { ModelPart } from '../src/vertical/party-model.js';
import { requestScores } from '../src/vertical/score-client.js';
import { FedcreditError } from '../src/errors.js';
import { TestFederation } from './helpers/federation.js';
import { dataUses, formatDataUses } from '../src/audit/show.js';
import { formatReplay } from '../src/audit/replay.js';
import { replayLedger } from '../src/jobs/replay.js';
import { replayReportHtml } from '../src/audit/report.js';
import { participantJobDir, verticalJob } from './helpers/vertical.js';

const run = promisify(execFile);
const HOSTS = ['tax-bureau', 'power-company', 'platform'];

describe('scoring with a vertical model (bank + three hosts, synthetic SMEs)', () => {
  let fed: TestFederation;
  let synth: VerticalSynthResult;
  const dataDir = mkdtempSync(join(tmpdir(), 'fedcredit-vsynth-'));
  const data = new Map<string, LoadedDataset>();
  let applicants: string[] = [];
  beforeAll(async () => {
    // A bank of 3,000 SMEs (was 6,000; about 1,300 known to all four): the scores are checked one by one against a
    // central computation, which needs the ids of each kind, not many; the PSI of the larger files took longest.
    synth = await writeVerticalSynth(dataDir, { seed: 11, bankRows: 3000 });
    for (const p of synth.parties) data.set(p.party, await loadDataset(p.spec, { baseDir: dataDir }));
    // Ten enterprises every party holds are new applicants at the bank: no outcome yet, an empty label. They never
    // train, and the bank scores them like any other.
    const bankSpec = synth.parties.find((p) => p.party === 'bank')!.spec;
    applicants = data
      .get('bank')!
      .ids.filter((id) => HOSTS.every((h) => data.get(h)!.ids.includes(id)))
      .slice(0, 10);
    const file = join(dataDir, bankSpec.path);
    const [header, ...lines] = readFileSync(file, 'utf8').trimEnd().split('\n');
    const labelAt = header!.split(',').indexOf(LABEL_COLUMN);
    const unlabelled = new Set(applicants);
    const blanked = lines.map((l) =>
      unlabelled.has(l.split(',')[0]!)
        ? l
            .split(',')
            .map((c, i) => (i === labelAt ? '' : c))
            .join(',')
        : l,
    );
    writeFileSync(file, [header, ...blanked].join('\n') + '\n');
    data.set('bank', await loadDataset(bankSpec, { baseDir: dataDir, withLabels: false }));
    // The platform caps the ids of a scoring request (consent.scoring): the other tests list fewer.
    fed = await TestFederation.start(
      synth.parties.map((p) => ({ name: p.party, data: { ...p.spec, path: join(dataDir, p.spec.path) }, ...(p.party === 'platform' ? { consent: { scoring: { max_ids_per_request: 250 } } } : {}) })),
    );
  });
  afterAll(async () => fed?.stop());

  it("the bank's probabilities of default equal a centralised computation of the same model to 1e-4", async () => {
    const train = await fed.run(verticalJob({ hosts: HOSTS, alignment: { id_format: 'uscc', min_intersection: 500 }, training: { epochs: 4, batch_size: 1024, patience: 0 } }));
    expect(train.last.state, train.last.message).toBe('succeeded');

    const bank = data.get('bank')!;
    // Enterprises all parties hold, some only the bank holds, an id with a wrong check digit, and one nobody has.
    const held = (org: string, id: string) => data.get(org)!.ids.includes(id);
    const everywhere = bank.ids.filter((id) => HOSTS.every((h) => held(h, id))).slice(0, 150);
    const partly = bank.ids.filter((id) => HOSTS.some((h) => !held(h, id))).slice(0, 50);
    const badDigit = `${everywhere[0]!.slice(0, 17)}${everywhere[0]![17] === '0' ? '1' : '0'}`;
    const unknown = uscc('91110000MA0000000');
    const ids = [...everywhere.map((id) => id.toLowerCase()), ...partly, badDigit, unknown];
    const stateDir = join(fed.dir, 'fedcredit-state', 'bank');
    const transport = await fed.identity('bank', 'submitter');
    const result = await requestScores({ coordinator: fed.cluster.address, transport, organisation: 'bank', stateDir, modelJob: train.jobId, ids, idFormat: 'uscc', purpose: 'test: scoring' });

    const parts = new Map<string, ModelPart>(['bank', ...HOSTS].map((org) => [org, JSON.parse(readFileSync(join(participantJobDir(fed.dir, org, train.jobId), 'model-part.json'), 'utf8'))]));
    for (const part of parts.values()) expect(part.clipLow?.length).toBe(part.features.length);
    const central = (id: string) => {
      let z = parts.get('bank')!.intercept!;
      for (const [org, part] of parts) {
        const d = data.get(org)!;
        const r = d.ids.indexOf(id);
        if (r < 0) continue; // a host without the enterprise contributes the average enterprise's score, 0
        part.features.forEach((f, j) => {
          const raw = d.x[r * d.features.length + d.features.indexOf(f)]!;
          // Winsorised at the party's own 0.5% / 99.5% training quantiles (the default), then standardised and clipped.
          const x = Math.min(part.clipHigh![j]!, Math.max(part.clipLow![j]!, raw));
          const std = Number.isNaN(raw) ? 0 : Math.max(-part.clip, Math.min(part.clip, (x - part.mean[j]!) / part.scale[j]!));
          z += part.weights[j]! * std;
        });
      }
      const { a, b } = parts.get('bank')!.calibration!;
      return { z, pd: 1 / (1 + Math.exp(-(a * z + b))) };
    };
    const rows = result.csv
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(','));
    expect(rows).toHaveLength(everywhere.length + partly.length);
    let worst = 0;
    for (const [id, pd, score, missing] of rows) {
      const c = central(id!);
      worst = Math.max(worst, Math.abs(Number(pd) - c.pd), Math.abs(Number(score) - c.z));
      expect(missing ?? '').toBe(HOSTS.filter((h) => !held(h, id!)).join(' '));
    }
    console.log(`scoring: ${rows.length} enterprises, largest difference from the centralised computation ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
    expect(new Set(rows.map((r) => r[0]))).toEqual(new Set([...everywhere, ...partly].map(normaliseId)));
    // The applicants with no outcome yet are among them (above), scored as the central computation says, and never
    // trained: the bank bound the training job to its labelled rows only.
    const bankBound = readLedger(fed.ledgerDir).entries.find((e) => e.entry.kind === 'data_bound' && e.entry.jobId === train.jobId && e.body.participant === 'bank')!.body;
    expect(bankBound.rows).toBe(data.get('bank')!.ids.length - applicants.length);

    const record = readLedger(fed.ledgerDir).entries.find((e) => e.entry.kind === 'scores_produced' && e.entry.jobId === result.jobId)!.body;
    expect(record).toMatchObject({ requested: ids.length, invalid_ids: 1, not_in_guest_data: 1, scored: rows.length });
    // Stability against the training job's held-out scores: a batch from the same population is stable.
    expect((record as { score_psi: number }).score_psi).toBeGreaterThanOrEqual(0);
    expect((record as { score_psi: number }).score_psi).toBeLessThan(0.25);
    // The request file is gone once read: the bank's list of applicants is not left lying around.
    expect(readdirSync(join(stateDir, 'score-requests'))).toEqual([]);

    // The same through the CLI, for a single enterprise.
    const cli = await run(process.execPath, [
      cliPath(),
      'score',
      '--config',
      join(fed.dir, 'bank.yaml'),
      '--coordinator',
      fed.cluster.address,
      '--identity',
      join(fed.dir, 'pki', 'issued', 'bank-submitter'),
      '--model',
      train.jobId,
      '--id',
      everywhere[1]!,
    ]);
    const [header, line] = cli.stdout.trim().split('\n');
    expect(header).toBe('enterprise_id,pd,score,hosts_missing');
    expect(Math.abs(Number(line!.split(',')[1]) - central(everywhere[1]!).pd)).toBeLessThan(1e-4);

    // The CLI names its scoring job; being the model's second request, no host blinded its ids again and the guest
    // fetched no host's set: the alignment kept from the first request served (src/psi/scoring.ts).
    const scoringJob = /scoring job (job-\S+)/.exec(cli.stderr)?.[1];
    expect(scoringJob, cli.stderr).toBeDefined();
    const psiStep = (jobId: string) =>
      readLedger(fed.ledgerDir).entries.find((e) => e.entry.kind === 'step_completed' && e.entry.jobId === jobId && e.body.name === 'psi')!.body.reports as Record<string, Record<string, unknown>>;
    const first = psiStep(result.jobId);
    for (const h of HOSTS) expect(first[h]!.blinded_all_ids).toBe(true);
    expect(first.bank!.host_sets_fetched).toEqual(HOSTS);
    const second = psiStep(scoringJob!);
    for (const h of HOSTS) expect(second[h]!.blinded_all_ids).toBe(false);
    expect(second.bank!.host_sets_fetched).toEqual([]);
    // The per-model PSI keys are secrets at rest: mode 0600.
    for (const org of ['bank', ...HOSTS]) {
      const key = join(participantJobDir(fed.dir, org, train.jobId), 'score-psi', org === 'bank' ? 'psi-key' : 'host/psi-key');
      expect(statSync(key).mode & 0o777).toBe(0o600);
    }
  });

  it('scoring with a host instead of the guest is refused: the scores must land with the guest', async () => {
    const train = (await readLedgerJobs()).find((j) => j.kind === 'vertical-lr')!;
    await expect(
      requestScores({
        coordinator: fed.cluster.address,
        transport: await fed.identity('tax-bureau', 'submitter'),
        organisation: 'tax-bureau',
        stateDir: join(fed.dir, 'x'),
        modelJob: train.jobId,
        ids: ['x'],
        idFormat: 'any',
        purpose: 'test',
      }),
    ).rejects.toThrow(/tax-bureau is not the guest of job-.* \(the guest is bank\)/);
  });

  it('a request with no enterprise the bank holds data for fails, counting what was wrong with the ids', async () => {
    const train = (await readLedgerJobs()).find((j) => j.kind === 'vertical-lr')!;
    const stateDir = join(fed.dir, 'fedcredit-state', 'bank');
    const err = await requestScores({
      coordinator: fed.cluster.address,
      transport: await fed.identity('bank', 'submitter'),
      organisation: 'bank',
      stateDir,
      modelJob: train.jobId,
      ids: ['not-a-code', '91350100M000100Y43'],
      idFormat: 'uscc',
      purpose: 'test',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FedcreditError);
    const text = (err as FedcreditError).describe();
    expect(text).toMatch(/none of the 2 requested ids is a valid id in bank's data \(1 invalid, 1 not in the data\)/);
    // One fix, the one that names the cause: not a generic one after it.
    expect(text.match(/\n {2}fix: /g)).toHaveLength(1);
  });

  const readLedgerJobs = async () =>
    readLedger(fed.ledgerDir)
      .entries.filter((e) => e.entry.kind === 'job_submitted')
      .map((e) => ({ jobId: e.entry.jobId, kind: (e.body as { kind: string }).kind }));

  it('a host refuses a request listing more ids than its owner allows, naming the rule; the ledger records it', async () => {
    const train = (await readLedgerJobs()).find((j) => j.kind === 'vertical-lr')!;
    const stateDir = join(fed.dir, 'fedcredit-state', 'bank');
    const ids = data.get('bank')!.ids.slice(0, 400);
    await expect(
      requestScores({
        coordinator: fed.cluster.address,
        transport: await fed.identity('bank', 'submitter'),
        organisation: 'bank',
        stateDir,
        modelJob: train.jobId,
        ids,
        idFormat: 'uscc',
        purpose: 'test: too many ids at once',
      }),
    ).rejects.toThrow(/consent\.scoring\.max_ids_per_request: the scoring request lists at least \d+ enterprises; this data owner allows 250 per request/);
    // The watcher hears of the failure as the coordinator records it: give the entry a moment to land.
    const recorded = async () => readLedger(fed.ledgerDir).entries.some((e) => e.entry.kind === 'job_ended' && /consent\.scoring\.max_ids_per_request/.test(String(e.body.message)));
    for (let i = 0; i < 50 && !(await recorded()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await recorded()).toBe(true);
  });

  it('scoring refuses a model job that does not exist, naming it', async () => {
    const stateDir = join(fed.dir, 'fedcredit-state', 'bank');
    await expect(
      requestScores({
        coordinator: fed.cluster.address,
        transport: await fed.identity('bank', 'submitter'),
        organisation: 'bank',
        stateDir,
        modelJob: 'job-20000101-nothere',
        ids: ['x'],
        idFormat: 'any',
        purpose: 'test',
      }),
    ).rejects.toThrow(/job-20000101-nothere/);
    expect(existsSync(stateDir)).toBe(true);
  });

  it('the audit names the scoring jobs (kind, model, outcome, columns) and replays the training job with its epochs and roles', async () => {
    const ledgerDir = fed.ledgerDir;
    const train = (await readLedgerJobs()).find((j) => j.kind === 'vertical-lr')!;
    const scoring = dataUses(ledgerDir).filter((u) => u.kind === 'vertical-score');
    const succeeded = scoring.filter((u) => u.outcome === 'succeeded');
    expect(succeeded.length).toBeGreaterThan(0);
    for (const u of succeeded) {
      expect(u.scoring?.modelJob).toBe(train.jobId);
      expect(u.scoring?.scored).toBeGreaterThan(0);
      // The columns a party brought are those of its part of the model.
      const part = JSON.parse(readFileSync(join(participantJobDir(fed.dir, u.party, train.jobId), 'model-part.json'), 'utf8')) as ModelPart;
      expect(u.columns).toEqual(part.features);
    }
    expect(scoring.some((u) => u.outcome.startsWith('failed: '))).toBe(true); // the request with no valid id
    const shown = formatDataUses(dataUses(ledgerDir));
    console.log(
      shown
        .split('\n')
        .filter((l) => l.includes('vertical-score'))
        .slice(0, 4)
        .join('\n'),
    );
    expect(shown).toMatch(new RegExp(`vertical-score  bank: scored with the model of ${train.jobId} \\(sha256 [0-9a-f]{12}…\\); columns [a-z_]+, `));
    expect(shown).toMatch(/vertical-score {2}tax-bureau: scored with the model of .*; outcome succeeded, \d+ of \d+ enterprises scored/);
    expect(shown).not.toMatch(/vertical-score .*: 0 rows \(schema/);

    const report = await replayLedger(ledgerDir);
    const text = formatReplay(report);
    expect(report.notReplayed.filter((j) => j.kind === 'vertical-score').length).toBe(new Set(scoring.map((u) => u.jobId)).size);
    expect(text).toMatch(new RegExp(`\\(vertical-score\\): scoring with the model of ${train.jobId}: changes no model, so nothing to replay`));
    const replayed = report.jobs.find((j) => j.jobId === train.jobId)!;
    expect(text).toContain('bank (guest), tax-bureau (host), power-company (host), platform (host)');
    const html = await replayReportHtml({ ...report, jobs: [replayed] }, ledgerDir);
    expect(html).not.toContain('(undefined)');
    expect(html).toContain('bank (guest)');
    expect(html).toContain('Validation AUC per epoch');
    // A point for every epoch in the chart, at the AUC the ledger recorded.
    expect(replayed.rounds.length).toBeGreaterThan(0);
    expect(replayed.rounds.every((r) => r.validationAuc !== null && r.validationKs !== null)).toBe(true);
    const points = (what: string) => [...html.matchAll(new RegExp(`aria-label="epoch: (\\d+); ${what}: [0-9.]+`, 'g'))].map((m) => Number(m[1]));
    expect(new Set(points('AUC'))).toEqual(new Set(replayed.rounds.map((r) => r.round)));
    expect(new Set(points('KS'))).toEqual(new Set(replayed.rounds.map((r) => r.round)));
  });
});
