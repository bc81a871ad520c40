/**
 * `fedcredit demo`: three banks with the same columns for different SMEs train one credit model without pooling
 * rows. Generates synthetic data, writes the configs a real deployment would use, runs the coordinator and the
 * three participants as separate processes on 127.0.0.1, and compares the federated model with each bank alone
 * and with the pooled data on a held-out set. The job bins every feature from secure histograms, selects by IV, trains
 * on WOE and (logistic model) publishes a points scorecard. Each baseline runs the same steps in one place on its own
 * rows (moments, grid, histogram, bins, selection, WOE, model), so the pooled one gets exactly the federation's bins
 * and a bank alone the bins its own rows give. The model report is written from the downloaded artifact alone.
 */
import { validationAucText } from '../../evaluation.js';
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import Table from 'cli-table3';
import { stringify } from 'yaml';
import { CoordinatorClient } from '../../client.js';
import { LocalCluster } from '../../federation/local-cluster.js';
import { demoFolders, writeDemoPki } from './setup.js';
import { createProgressRenderer } from '../progress.js';
import { HorizontalJobSpec as JobSpec } from '../../config/schemas.js';
import { loadDataset, type LoadedDataset } from '../../data/csv.js';
import { splitRows } from '../../data/split.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import { binaryMetrics } from '../../metrics.js';
import { loadArtifact, writeArtifact } from '../../model/artifact.js';
import { fitCentral } from '../../fl/central.js';
import { loadTf } from '../../model/tf.js';
import { writeArtifactReport } from '../../report/artifact-report.js';
import { writeHorizontalSynth, type SynthFile } from '../../synth/sme.js';

export interface DemoOptions {
  out: string;
  rounds: number;
  model: 'logistic' | 'mlp';
  plaintext: boolean;
  seed: number;
}

interface Scores {
  auc: number;
  ks: number;
}

export interface HorizontalSummary {
  job_id: string;
  rounds: number;
  /** The round whose model was published (training.model_selection: the best validation AUC). */
  selected_round: number;
  participants: string[];
  encryption: string;
  model: string;
  test_rows: number;
  /** Features in the model (selected by IV from the binned candidates). */
  features: string[];
  federated: Scores;
  pooled: Scores;
  local: Scores & { by_participant: Record<string, Scores> };
  /** The published evaluation: the model on every bank's validation rows, from the secure PD histogram. */
  validation: (Scores & { rows: number; defaults: number; auc_max_error: number; gini: number }) | null;
  seconds: number;
  report?: string;
}

export async function runHorizontalDemo(opts: DemoOptions): Promise<HorizontalSummary> {
  const started = Date.now();
  const { dataDir, configDir, logDir, say } = await demoFolders(opts.out);

  say(`fedcredit demo: horizontal federation of three banks (output in ${opts.out})`);
  const synth = await writeHorizontalSynth(dataDir, { seed: opts.seed });
  for (const f of synth.parties) say(`  ${f.party}: ${f.rows} SMEs, ${(100 * f.badRate).toFixed(1)}% defaulted (synthetic, seed ${opts.seed})`);
  say(`  held-out test set: ${synth.test.rows} SMEs`);

  const jobText = stringify(
    jobFile(
      opts,
      synth.parties.map((p) => p.party),
    ),
  );
  const jobPath = join(configDir, 'job.yaml');
  await writeFile(jobPath, jobText);
  const coordinatorPath = join(configDir, 'coordinator.yaml');
  await writeFile(
    coordinatorPath,
    stringify({ listen: '127.0.0.1:0', state_dir: '../coordinator-state', ledger_dir: '../ledger', log_level: 'info', tls: { dir: '../pki/issued/coordinator-coordinator', crl: '../pki/crl.pem' } }),
  );
  const participants = await Promise.all(
    synth.parties.map(async (p) => {
      const config = join(configDir, `${p.party}.yaml`);
      await writeFile(config, stringify(participantFile(p, relative(configDir, dataDir), opts.plaintext)));
      return { name: p.party, config };
    }),
  );

  // The federation's PKI: a CA, the coordinator's and each participant's certificate, and the submitter's.
  const submitter = await writeDemoPki(
    opts.out,
    synth.parties.map((p) => p.party),
    'bank-east',
  );
  const cluster = await LocalCluster.start({ coordinatorConfig: coordinatorPath, participants, logDir });
  let jobId = '';
  try {
    say(`  coordinator on ${cluster.address}; participants ${participants.map((p) => p.name).join(', ')} started (logs in ${logDir})`);
    const client = new CoordinatorClient(cluster.address, submitter);
    try {
      jobId = await client.submitJob(jobText, 'bank-east');
      say(`  submitted ${jobId}`);
      const renderer = createProgressRenderer();
      const last = await client.watchJob(jobId, (e) => renderer.onEvent(e));
      renderer.stop();
      if (last.state !== 'succeeded') throw new FedcreditError(ErrorCode.JOB_FAILED, `the demo job failed: ${last.message}`, `see the logs in ${logDir}`);
      await writeArtifact(join(opts.out, 'model'), await client.downloadModel(jobId));
    } finally {
      client.close();
    }
  } finally {
    await cluster.stop();
  }

  const summary = await evaluate(opts, synth, jobId, started);
  printTable(summary, synth.parties);
  // The model report, from the downloaded artifact alone; beside it, the demo's comparison on its test file.
  const report = join(opts.out, 'report.html');
  const comparison: Record<string, Scores> = { federated: summary.federated };
  for (const [bank, m] of Object.entries(summary.local.by_participant)) comparison[`${bank} alone`] = m;
  comparison['pooled (reference)'] = summary.pooled;
  await writeArtifactReport(join(opts.out, 'model'), report, {
    comparison,
    comparisonTitle: `On the demo's held-out test file (${summary.test_rows.toLocaleString('en-US')} SMEs no bank holds); each model binned on its own training rows`,
  });
  summary.report = report;
  say(`\nmodel report (ROC, KS, IV, ${opts.model === 'logistic' ? 'scorecard, ' : ''}calibration, from the published model alone): ${report}`);
  say(`model: ${join(opts.out, 'model')} (TensorFlow.js${opts.model === 'logistic' ? ', scorecard.json, scorecard.pmml' : ''})   logs: ${logDir}`);
  return summary;
}

const IV_THRESHOLD = 0.02;

function jobFile(opts: DemoOptions, participants: string[]) {
  return {
    name: 'sme-default-horizontal',
    kind: 'horizontal',
    purpose: 'Demo: 12-month default model for SME credit lines, trained across three banks without pooling data',
    participants,
    model: opts.model === 'mlp' ? { type: 'mlp', hidden: [16, 8] } : { type: 'logistic' },
    training: {
      rounds: opts.rounds,
      local_epochs: 1,
      batch_size: 32,
      learning_rate: opts.model === 'mlp' ? 0.01 : 0.1,
      optimizer: opts.model === 'mlp' ? 'adam' : 'sgd',
      min_participants: 2,
      round_timeout_s: 120,
      seed: opts.seed,
      validation_fraction: 0.2,
    },
    encryption: { scheme: opts.plaintext ? 'plaintext' : 'ckks' },
    // The credit modeller's path: federated statistics, every feature binned from secure histograms, selected by IV
    // and trained on as WOE; a points scorecard for the logistic model (a scorecard needs one).
    statistics: true,
    binning: { method: 'optimal', fine_bins: 20, max_bins: 6, merge: 'iv', min_bin_share: 0.05, iv_threshold: IV_THRESHOLD, woe_transform: true },
    ...(opts.model === 'logistic' ? { scorecard: { base_score: 600, base_odds: 50, pdo: 20, decimals: 0, reason_codes: 3 } } : {}),
  };
}

function participantFile(p: SynthFile, dataDirFromConfig: string, allowPlaintext: boolean) {
  return {
    organisation: p.party,
    coordinator: '127.0.0.1:7700',
    state_dir: `../${p.party}`,
    tls: { dir: `../pki/issued/${p.party}-participant` },
    data: { ...p.spec, path: join(dataDirFromConfig, p.spec.path) },
    consent: { job_kinds: ['horizontal'], submitters: ['bank-east'], max_rounds: 100, allow_plaintext: allowPlaintext },
  };
}

async function load(file: SynthFile): Promise<LoadedDataset> {
  return loadDataset(file.spec, { baseDir: join(file.path, '..') });
}

/** Score the federated model and the centralised baselines on the held-out set. */
async function evaluate(opts: DemoOptions, synth: Awaited<ReturnType<typeof writeHorizontalSynth>>, jobId: string, started: number): Promise<HorizontalSummary> {
  const { tf } = await loadTf();
  const job = JobSpec.parse(
    JSON.parse(
      JSON.stringify(
        jobFile(
          opts,
          synth.parties.map((p) => p.party),
        ),
      ),
    ),
  );
  const test = await load(synth.test);
  const features = synth.features;
  const idx = features.map((f) => test.features.indexOf(f));
  const testRows = splitRows(test, idx, 0, 0).train;
  const score = (scores: Float32Array): Scores => {
    const m = binaryMetrics(testRows.y, scores);
    return { auc: round4(m.auc), ks: round4(m.ks) };
  };

  const federatedModel = await loadArtifact(tf, join(opts.out, 'model'));
  const federated = score(federatedModel.scoreColumns(testRows.x, features));
  const splits = await Promise.all(
    synth.parties.map(async (p) => {
      const d = await load(p);
      return splitRows(
        d,
        features.map((f) => d.features.indexOf(f)),
        job.training.validation_fraction,
        job.training.seed,
      );
    }),
  );
  // Fitted on every bank's rows, the bins are the federation's (its histogram is their sum); on one bank's rows they
  // are what that bank could make alone.
  // Each selects its model by its own validation rows, as the job does by the participants'.
  const pooled = score(fitCentral(tf, job, features, { train: splits.map((s) => s.train), validation: splits.map((s) => s.validation) }).score(testRows.x));
  const byParticipant: Record<string, Scores> = {};
  splits.forEach((s, i) => (byParticipant[synth.parties[i]!.party] = score(fitCentral(tf, job, features, { train: [s.train], validation: [s.validation] }).score(testRows.x))));
  const locals = Object.values(byParticipant);
  const ev = federatedModel.metadata.evaluation as { n: number; defaults: number; auc: number; ks: number; gini: number; aucMaxError: number } | null | undefined;
  return {
    job_id: jobId,
    rounds: opts.rounds,
    selected_round: federatedModel.metadata.selectedRound ?? opts.rounds,
    participants: synth.parties.map((p) => p.party),
    encryption: opts.plaintext ? 'plaintext' : 'ckks',
    model: opts.model,
    test_rows: testRows.y.length,
    features: federatedModel.features,
    federated,
    pooled,
    local: {
      auc: round4(locals.reduce((s, m) => s + m.auc, 0) / locals.length),
      ks: round4(locals.reduce((s, m) => s + m.ks, 0) / locals.length),
      by_participant: byParticipant,
    },
    validation: ev ? { rows: ev.n, defaults: ev.defaults, auc: round4(ev.auc), auc_max_error: round4(ev.aucMaxError), ks: round4(ev.ks), gini: round4(ev.gini) } : null,
    seconds: (Date.now() - started) / 1000,
  };
}

function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

function printTable(s: HorizontalSummary, parties: SynthFile[]): void {
  const plain = !process.stdout.isTTY;
  const table = new Table({ head: ['model (held-out SMEs)', 'trained on', 'AUC', 'KS'], style: plain ? { head: [], border: [] } : {} });
  table.push(['federated (' + s.encryption + ')', `${parties.length} banks, data stays home`, s.federated.auc.toFixed(4), s.federated.ks.toFixed(4)]);
  for (const p of parties) table.push([`${p.party} alone`, `${p.rows} rows`, s.local.by_participant[p.party]!.auc.toFixed(4), s.local.by_participant[p.party]!.ks.toFixed(4)]);
  table.push(['pooled (reference)', 'all rows in one place', s.pooled.auc.toFixed(4), s.pooled.ks.toFixed(4)]);
  process.stdout.write('\n' + table.toString() + '\n');
  process.stdout.write(
    `each model bins its own training rows, keeps the features with IV ≥ ${IV_THRESHOLD} and trains on their WOE (the federated model, from secure histograms: ${s.features.length} features)\n`,
  );
  const v = s.validation;
  if (v)
    process.stdout.write(
      `published evaluation on the banks' ${v.rows} validation rows (secure PD histogram): ${validationAucText({ auc: v.auc, aucMaxError: v.auc_max_error, n: v.rows, defaults: v.defaults })}, KS ${v.ks.toFixed(4)}\n`,
    );
}
