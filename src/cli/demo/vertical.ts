/**
 * `fedcredit demo` (the main act): a bank, a tax bureau, a power company and an e-commerce platform hold different
 * columns for partly overlapping sets of the same SMEs. Generates their synthetic data, writes the configs a real
 * deployment would use, runs the coordinator and the four participants as separate processes on 127.0.0.1,
 * aligns the enterprises by PSI, trains the vertical model with CKKS (a logistic regression on WOE with a points
 * scorecard, or with `--model gbdt` gradient-boosted trees), scores a few new applications, and compares the
 * federated model with the bank alone and with all columns pooled (the same model fitted centrally), on held-out
 * enterprises.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import Table from 'cli-table3';
import { stringify } from 'yaml';
import { CoordinatorClient } from '../../client.js';
import { LocalCluster } from '../../federation/local-cluster.js';
import { demoFolders, writeDemoPki } from './setup.js';
import type { Transport } from '../../wire/transport.js';
import { createProgressRenderer } from '../progress.js';
import { VerticalBoostSpec, VerticalJobSpec } from '../../config/schemas.js';
import { loadDataset } from '../../data/csv.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import { writeArtifact } from '../../model/artifact.js';
import { INDUSTRY_COLUMN, writeVerticalSynth, type VerticalSynthResult } from '../../synth/vertical.js';
import { loadBatchStability, writeJobReport } from '../../report/job-report.js';
import type { BinnedFeature } from '../../vertical/binning.js';
import { boostBaselines, parseAlignedIds, verticalBaselines, type VerticalBaselines } from '../../vertical/baseline.js';
import { requestScores } from '../../vertical/score-client.js';
import { holdoutOf } from '../../data/split.js';
import type { CreditEvaluation } from '../../evaluation.js';

export interface VerticalDemoOptions {
  out: string;
  /** A logistic regression on WOE with a scorecard (vertical-lr), or gradient-boosted trees (vertical-boost). */
  model: 'logistic' | 'gbdt';
  epochs: number;
  /** gbdt: the trees to grow. */
  trees: number;
  plaintext: boolean;
  seed: number;
}

interface Scores {
  auc: number;
  ks: number;
}

export interface VerticalSummary {
  job_id: string;
  model: 'logistic' | 'gbdt';
  parties: { guest: string; hosts: string[] };
  encryption: string;
  /** logistic: the epochs trained; gbdt: the trees grown. */
  epochs_run?: number;
  trees?: number;
  intersection: number;
  test_rows: number;
  bank_only: Scores;
  federated: Scores & { gini: number; top_decile: { default_rate: number; lift: number; share_of_defaults: number } };
  pooled: Scores;
  scored: { job_id: string; enterprises: number; mean_pd: number };
  seconds: number;
  report?: string;
}

const GUEST = 'bank';
/** New applications the bank scores (a batch large enough for a stability index), and how many are printed. */
const APPLICATIONS = 200;
const SHOWN = 5;
const HOSTS = ['tax-bureau', 'power-company', 'platform'];

export async function runVerticalDemo(opts: VerticalDemoOptions): Promise<VerticalSummary> {
  const started = Date.now();
  const { dataDir, configDir, logDir, say } = await demoFolders(opts.out);

  say(`fedcredit demo: vertical federation of a bank, a tax bureau, a power company and a platform (output in ${opts.out})`);
  const synth = await writeVerticalSynth(dataDir, { seed: opts.seed });
  for (const p of synth.parties) say(`  ${p.party}: ${p.rows} SMEs, columns ${p.features.join(', ')}`);
  say(`  (synthetic, seed ${opts.seed}; ${synth.intersection} enterprises are known to all four)`);

  const job = jobFile(opts);
  const jobText = stringify(job);
  await writeFile(join(configDir, 'job.yaml'), jobText);
  const coordinatorPath = join(configDir, 'coordinator.yaml');
  await writeFile(
    coordinatorPath,
    stringify({ listen: '127.0.0.1:0', state_dir: '../coordinator-state', ledger_dir: '../ledger', log_level: 'info', tls: { dir: '../pki/issued/coordinator-coordinator', crl: '../pki/crl.pem' } }),
  );
  const participants = await Promise.all(
    synth.parties.map(async (p) => {
      const config = join(configDir, `${p.party}.yaml`);
      await writeFile(config, stringify(participantFile(p.party, p.spec, relative(configDir, dataDir), opts)));
      return { name: p.party, config };
    }),
  );

  // The federation's PKI: a CA, the coordinator's and each participant's certificate, and the submitter's.
  const submitter = await writeDemoPki(
    opts.out,
    synth.parties.map((p) => p.party),
    GUEST,
  );
  const cluster = await LocalCluster.start({ coordinatorConfig: coordinatorPath, participants, logDir });
  let jobId = '';
  let epochs = 0;
  let scored: VerticalSummary['scored'];
  try {
    say(`  coordinator on ${cluster.address}; participants ${participants.map((p) => p.name).join(', ')} started (logs in ${logDir})`);
    const client = new CoordinatorClient(cluster.address, submitter);
    try {
      jobId = await client.submitJob(jobText, GUEST);
      say(`  submitted ${jobId}`);
      const renderer = createProgressRenderer();
      const last = await client.watchJob(jobId, (e) => {
        if (e.progress) epochs = e.progress.round;
        renderer.onEvent(e);
      });
      renderer.stop();
      if (last.state !== 'succeeded') throw new FedcreditError(ErrorCode.JOB_FAILED, `the demo job failed: ${last.message}`, `see the logs in ${logDir}`);
      await writeArtifact(join(opts.out, 'model'), await client.downloadModel(jobId));
    } finally {
      client.close();
    }
    scored = await scoreApplications(opts, synth, cluster.address, submitter, jobId, say);
  } finally {
    await cluster.stop();
  }

  const summary = await evaluate(opts, synth, job, jobId, epochs, scored, started);
  printTable(summary);
  // The bank's model report, from its own job folder, with the comparison the demo can make in its synthetic world.
  const report = join(opts.out, 'report.html');
  await writeJobReport(join(opts.out, GUEST, 'jobs', jobId), report, {
    comparison: { 'bank alone': summary.bank_only, federated: summary.federated, 'pooled (reference)': summary.pooled },
    stability: loadBatchStability(join(opts.out, GUEST, 'jobs', scored.job_id)),
  });
  summary.report = report;
  say(
    `\nmodel report (${opts.model === 'gbdt' ? 'ROC, KS, lift, calibration, gain importance by party, reason codes, fairness by industry' : 'ROC, KS, IV, scorecard, calibration, fairness by industry'}): ${report}`,
  );
  say(`\nmodel manifest: ${join(opts.out, 'model', 'manifest.json')}; each party's part: ${join(opts.out, '<party>', 'jobs', jobId, 'model-part.json')}`);
  say(`ledger: ${join(opts.out, 'ledger')} (try: fedcredit audit replay ${join(opts.out, 'ledger')})   logs: ${logDir}`);
  return summary;
}

function jobFile(opts: VerticalDemoOptions) {
  return opts.model === 'gbdt' ? boostJobFile(opts) : lrJobFile(opts);
}

/** The trees: every party's columns in 16 quantile bins (the industry a category), grown under the bank's CKKS key. */
function boostJobFile(opts: VerticalDemoOptions) {
  return {
    name: 'sme-default-vertical-gbdt',
    kind: 'vertical-boost',
    purpose: 'Demo: 12-month default model for SME credit lines, gradient-boosted trees on tax, electricity and platform data without pooling them',
    guest: GUEST,
    hosts: HOSTS,
    alignment: { id_format: 'uscc', min_intersection: 1000 },
    training: { validation_fraction: 0.15, test_fraction: 0.25, seed: opts.seed, step_timeout_s: 1800, grace_period_s: 60 },
    binning: { fine_bins: 16 },
    boosting: { trees: opts.trees, depth: 3, learning_rate: 0.3, min_child_weight: 5, early_stopping_patience: 0, reason_codes: 3 },
    fairness: { party: 'tax-bureau', column: INDUSTRY_COLUMN, max_gap: 0.15 },
  };
}

function lrJobFile(opts: VerticalDemoOptions) {
  return {
    name: 'sme-default-vertical',
    kind: 'vertical-lr',
    purpose: 'Demo: 12-month default model for SME credit lines, using tax, electricity and platform data without pooling them',
    guest: GUEST,
    hosts: HOSTS,
    alignment: { id_format: 'uscc', min_intersection: 1000 },
    training: {
      epochs: opts.epochs,
      batch_size: 1024,
      learning_rate: 0.05,
      optimizer: 'adam',
      patience: 4,
      validation_fraction: 0.15,
      test_fraction: 0.25,
      seed: opts.seed,
      step_timeout_s: 120,
      grace_period_s: 60,
    },
    encryption: { scheme: opts.plaintext ? 'plaintext' : 'ckks' },
    // The credit modeller's path: every party's features binned, selected by IV and trained on as WOE; a points
    // scorecard; approval and accuracy by the industry the tax bureau has on record.
    binning: { method: 'optimal', fine_bins: 20, max_bins: 6, merge: 'iv', monotonic: 'auto', min_bin_share: 0.02, iv_threshold: 0.02, woe_transform: true },
    scorecard: { base_score: 600, base_odds: 50, pdo: 20, decimals: 0, reason_codes: 3 },
    fairness: { party: 'tax-bureau', column: INDUSTRY_COLUMN, max_gap: 0.15 },
  };
}

function participantFile(party: string, spec: object, dataDirFromConfig: string, opts: VerticalDemoOptions) {
  const data = spec as { path: string };
  return {
    organisation: party,
    coordinator: '127.0.0.1:7700',
    state_dir: `../${party}`,
    tls: { dir: `../pki/issued/${party}-participant` },
    data: { ...data, path: join(dataDirFromConfig, data.path) },
    consent: { job_kinds: [opts.model === 'gbdt' ? 'vertical-boost' : 'vertical-lr'], submitters: [GUEST], max_rounds: 100, allow_plaintext: opts.plaintext },
  };
}

/** The bank scores new applications: enterprises of the held-out part, scored by `fedcredit score`'s code path. */
async function scoreApplications(opts: VerticalDemoOptions, synth: VerticalSynthResult, coordinator: string, transport: Transport, modelJob: string, say: (line: string) => void) {
  const bank = synth.parties.find((p) => p.party === GUEST)!;
  const data = await loadDataset(bank.spec, { baseDir: join(opts.out, 'data') });
  const training = opts.model === 'gbdt' ? VerticalBoostSpec.parse(boostJobFile(opts)).training : VerticalJobSpec.parse(lrJobFile(opts)).training;
  const ids = data.ids.filter((id) => holdoutOf(id, training.seed, training.test_fraction, training.validation_fraction) === 'test').slice(0, APPLICATIONS);
  say(`\n  the bank scores ${ids.length} applications with the federated model (fedcredit score); the first ${SHOWN}:`);
  const result = await requestScores({
    coordinator,
    transport,
    organisation: GUEST,
    stateDir: join(opts.out, GUEST),
    modelJob,
    ids,
    idFormat: 'uscc',
    purpose: 'Demo: credit decision on new applications',
  });
  const rows = result.csv
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(','));
  for (const [id, pd, , missing, ...rest] of rows.slice(0, SHOWN)) {
    // A scorecard's scores carry points before the reasons; trees carry reasons only.
    const [points, ...reasons] = opts.model === 'gbdt' ? [undefined, ...rest] : rest;
    const why = reasons.filter((r) => r).join('; ');
    const shown = points === undefined ? '' : `  ${points} points`;
    say(`    ${id}  PD ${(100 * Number(pd)).toFixed(1)}%${shown}${why ? `  main reasons: ${why}` : ''}${missing ? `  (no data at ${missing})` : ''}`);
  }
  const mean = rows.reduce((s, r) => s + Number(r[1]), 0) / Math.max(1, rows.length);
  return { job_id: result.jobId, enterprises: rows.length, mean_pd: round4(mean) };
}

async function evaluate(
  opts: VerticalDemoOptions,
  synth: VerticalSynthResult,
  job: ReturnType<typeof jobFile>,
  jobId: string,
  epochs: number,
  scored: VerticalSummary['scored'],
  started: number,
): Promise<VerticalSummary> {
  const manifest = JSON.parse(await readFile(join(opts.out, 'model', 'manifest.json'), 'utf8')) as {
    test: { rows: number; auc: number; ks: number; evaluation: CreditEvaluation };
    trees?: string[];
  };
  const baselines = await centralBaselines(opts, synth, job, jobId);
  const pick = (m: { auc: number; ks: number }): Scores => ({ auc: round4(m.auc), ks: round4(m.ks) });
  return {
    job_id: jobId,
    model: opts.model,
    parties: { guest: GUEST, hosts: HOSTS },
    encryption: opts.plaintext ? 'plaintext' : 'ckks',
    ...(manifest.trees ? { trees: manifest.trees.length } : { epochs_run: epochs }),
    intersection: baselines.intersection,
    test_rows: manifest.test.rows,
    bank_only: pick(baselines.guestOnly),
    federated: {
      ...pick(manifest.test),
      gini: round4(manifest.test.evaluation.gini),
      top_decile: {
        default_rate: round4(manifest.test.evaluation.deciles[0]!.defaultRate),
        lift: round4(manifest.test.evaluation.deciles[0]!.lift),
        share_of_defaults: round4(manifest.test.evaluation.deciles[0]!.cumulativeGain),
      },
    },
    pooled: pick(baselines.pooled),
    scored,
    seconds: (Date.now() - started) / 1000,
  };
}

/** The same model fitted centrally on the bank's columns alone and on all four parties' pooled (every party's data and job folder are on this one machine). */
async function centralBaselines(opts: VerticalDemoOptions, synth: VerticalSynthResult, job: ReturnType<typeof jobFile>, jobId: string): Promise<VerticalBaselines> {
  const parties = await Promise.all(
    [GUEST, ...HOSTS].map(async (org) => {
      const p = synth.parties.find((q) => q.party === org)!;
      return { organisation: org, data: await loadDataset(p.spec, { baseDir: join(opts.out, 'data') }), features: p.features };
    }),
  );
  if (job.kind === 'vertical-boost') {
    // The job's rows in the job's order (the bank's record of them), its bins and its settings.
    const aligned = parseAlignedIds(await readFile(join(opts.out, GUEST, 'jobs', jobId, 'aligned-ids.csv'), 'utf8'));
    return boostBaselines(parties, VerticalBoostSpec.parse(job), aligned);
  }
  // The same bins and WOE the federated job settled on (every party's binning.json).
  const binned = await Promise.all(
    parties.map(async (p) => ({
      ...p,
      binned: (JSON.parse(await readFile(join(opts.out, p.organisation, 'jobs', jobId, 'binning.json'), 'utf8')) as { features: BinnedFeature[] }).features,
    })),
  );
  return verticalBaselines(binned, VerticalJobSpec.parse(job));
}

function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

function printTable(s: VerticalSummary): void {
  const plain = !process.stdout.isTTY;
  const table = new Table({ head: [`model (${s.test_rows} held-out SMEs)`, 'columns', 'AUC', 'KS'], style: plain ? { head: [], border: [] } : {} });
  table.push(['bank alone', "the bank's credit file", s.bank_only.auc.toFixed(4), s.bank_only.ks.toFixed(4)]);
  table.push([`federated (${s.encryption})`, 'bank + tax + power + platform, data stays home', s.federated.auc.toFixed(4), s.federated.ks.toFixed(4)]);
  table.push(['pooled (reference)', 'all columns in one place', s.pooled.auc.toFixed(4), s.pooled.ks.toFixed(4)]);
  process.stdout.write('\n' + table.toString() + '\n');
  const top = s.federated.top_decile;
  process.stdout.write(
    `federated model: Gini ${s.federated.gini.toFixed(3)}; the riskiest tenth of held-out SMEs defaults at ${(100 * top.default_rate).toFixed(1)}% (lift ${top.lift.toFixed(2)}) and holds ${(100 * top.share_of_defaults).toFixed(0)}% of all defaults\n`,
  );
}
