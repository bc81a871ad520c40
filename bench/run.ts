/**
 * `npm run bench [-- --quick] [-- --json FILE] [-- --only a,b] [-- --models lr,mlp_3k] [-- --threshold] [-- --tn T] [-- --profile DIR]`
 * `[-- --rows N,M] [-- --sources csv,postgres] [-- --no-psi]` (memory scenario), `[-- --fate-shape] [-- --host-features N,M]
 * [-- --rows N] [-- --trees N] [-- --depth N] [-- --threads N]` (boost scenario, bench/boost.ts): figures
 * measured side by side in one run, variants alternated, medians of repetitions. Prints a table and writes bench-results.json (one figure
 * per key). Never asserts a time. `--profile DIR` instead runs each scenario with every process and thread
 * profiled (as by `node --cpu-prof`) and summarises where the CPU time went (bench/profile-summary.ts).
 * BENCHMARKS.md records the latest results with the machine they ran on.
 */
import { createWriteStream, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, freemem, tmpdir, totalmem } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EphemeralFederation } from '../src/federation/ephemeral.js';
import { Ledger } from '../src/ledger/ledger.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { UCI_HOMO_PARTIES, uciHomoFile, uciHomoSpec } from '../src/data/public-datasets.js';
import { loadDataset } from '../src/data/csv.js';
import { ParticipantConfig, VerticalJobSpec } from '../src/config/schemas.js';
import { verticalBaselines } from '../src/vertical/baseline.js';
import { requestScores } from '../src/vertical/score-client.js';
import { loadTf } from '../src/model/tf.js';
import { buildModel, trainModel } from '../src/model/network.js';
import { Rng } from '../src/random.js';
import { x25519Backend } from '../src/psi/x25519.js';
import { pino } from 'pino';
import { ParticipantNode } from '../participant/node.js';
import { EphemeralPostgres } from '../src/federation/ephemeral-postgres.js';
import { DatasetSpec } from '../src/data/schema.js';
import { summariseScenario } from './profile-summary.js';
import { arbiterOpenBench, thresholdBench, thresholdTnBench, verticalThresholdBench } from './threshold.js';
import { qualityBenchmark } from './quality.js';
import { boostBench } from './boost.js';
import type { JobEvent } from '../src/wire/messages.js';

/** The one-round horizontal job the memory scenario runs, from a CSV or from PostgreSQL alike. */
function memoryJob(name: string) {
  return {
    name,
    kind: 'horizontal',
    purpose: 'benchmark',
    participants: ['bank-large', 'bank-small'],
    model: { type: 'logistic' },
    binning: { method: 'quantile', max_bins: 10, iv_threshold: 0 },
    training: { rounds: 1, local_epochs: 1, batch_size: 1024, learning_rate: 0.01, optimizer: 'adam', seed: 1, validation_fraction: 0.1, round_timeout_s: 3600 },
    encryption: { scheme: 'ckks' },
  };
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1]! : 'bench-results.json';
const reps = 3;

// Compiled to dist/bench/run.js: three levels up is the folder that holds this repository and shared/.
const DATASETS = fileURLToPath(new URL('../../../shared/datasets/', import.meta.url));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * How a time grows with a size: the least-squares slope of log(time) against log(size). 1 is linear, 2 quadratic.
 * For two points it is log(t2/t1) / log(n2/n1).
 */
function scaleExponent(points: [size: number, seconds: number][]): number {
  const xs = points.map(([n]) => Math.log(n));
  const ys = points.map(([, t]) => Math.log(t));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxy / sxx;
}

const results: Record<string, number> = {};
const table: string[][] = [];

/**
 * The steady-state stretches of a run (rounds or epochs after the first, the PSI, the ledger loop), on the
 * monotonic clock in microseconds: the clock V8's CPU profiles use. A profiled run writes them to windows.json so
 * bench/profile-summary.ts can tell the measured work from process start-up and job set-up.
 */
const windows: { label: string; startUs: number; endUs: number }[] = [];
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

/** EphemeralFederation.run, noting when each event arrived; the stretch from round 1's end to the last round's end is a window. */
async function runJob(fed: EphemeralFederation, job: { name: string } & Record<string, unknown>, onEvent?: (e: JobEvent) => void) {
  const client = await fed.client();
  const jobId = await client.submitJob(JSON.stringify(job), 'test-bank');
  const events: JobEvent[] = [];
  const arrivedUs: number[] = [];
  const last = await client.watchJob(jobId, (e) => {
    events.push(e);
    arrivedUs.push(monoUs());
    onEvent?.(e);
  });
  const progress = events.flatMap((e, i) => (e.progress ? [arrivedUs[i]!] : []));
  if (progress.length >= 2) windows.push({ label: `${job.name} rounds 2..${progress.length}`, startUs: progress[0]!, endUs: progress.at(-1)! });
  return { jobId, last, events, arrivedUs, client };
}

/** The horizontal jobs compared side by side: their label in the results, and their encryption section. */
type HorizontalVariant = { label: 'ckks' | 'plaintext' | 'ckks-threshold' | 'ckks-threshold-tn'; encryption: Record<string, unknown> };

async function horizontal(): Promise<void> {
  // `--tn T` compares the t-of-n collective key (encryption.threshold T) with the N-of-N one and the single key, on
  // four participants (t-of-n needs t ≥ ⌈(n + 2) / 2⌉, so three participants allow only N-of-N); the fourth reads
  // the first part of the UCI homo split again.
  const tn = args.includes('--tn') ? Number(args[args.indexOf('--tn') + 1]) : undefined;
  const names = tn ? ['bank-a', 'bank-b', 'bank-c', 'bank-d'] : ['bank-a', 'bank-b', 'bank-c'];
  const variants: HorizontalVariant[] = tn
    ? [
        { label: 'ckks', encryption: { scheme: 'ckks' } },
        { label: 'ckks-threshold', encryption: { scheme: 'ckks-threshold' } },
        { label: 'ckks-threshold-tn', encryption: { scheme: 'ckks-threshold', threshold: tn } },
      ]
    : [
        { label: 'ckks', encryption: { scheme: 'ckks' } },
        { label: 'plaintext', encryption: { scheme: 'plaintext' } },
        // `--threshold` adds the collective key (issue 18) beside the single key.
        ...(args.includes('--threshold') ? [{ label: 'ckks-threshold' as const, encryption: { scheme: 'ckks-threshold' } }] : []),
      ];
  const fed = await EphemeralFederation.start(
    names.map((name, i) => ({ name, data: uciHomoSpec(uciHomoFile(DATASETS, UCI_HOMO_PARTIES[i % UCI_HOMO_PARTIES.length]!)) })),
    { prefix: 'fedcredit-bench-' },
  );
  try {
    // The 1M-parameter MLP trains for about a minute a round on the pure-JS backend: one repetition of 3 rounds.
    const models: [string, object, { rounds: number; reps: number }][] = [
      ['lr', { type: 'logistic' }, { rounds: 5, reps }],
      ['mlp_3k', { type: 'mlp', hidden: [96, 8] }, { rounds: 5, reps }],
      ['mlp_100k', { type: 'mlp', hidden: [256, 256, 128] }, { rounds: 5, reps }],
      ...(quick ? [] : [['mlp_1m', { type: 'mlp', hidden: [1024, 1000] }, { rounds: 3, reps: 1 }] as [string, object, { rounds: number; reps: number }]]),
    ];
    // `--models a,b` measures only those (e.g. `--only horizontal --models lr` for a full LR run in a few minutes).
    const picked = args.includes('--models') ? new Set(args[args.indexOf('--models') + 1]!.split(',')) : undefined;
    for (const [key, model, plan] of models.filter(([k]) => !picked || picked.has(k))) {
      const rounds = quick ? 3 : plan.rounds;
      const times: Record<HorizontalVariant['label'], number[]> = { ckks: [], plaintext: [], 'ckks-threshold': [], 'ckks-threshold-tn': [] };
      let params = 0;
      for (let r = 0; r < (quick ? 1 : plan.reps); r++) {
        for (const { label: scheme, encryption } of variants) {
          const run = await runJob(fed, {
            name: `bench-${key}`,
            kind: 'horizontal',
            purpose: 'benchmark',
            participants: names,
            model,
            training: { rounds, local_epochs: 1, batch_size: 64, learning_rate: 0.01, optimizer: 'adam', seed: 1 },
            encryption,
          });
          run.client.close();
          if (run.last.state !== 'succeeded') throw new Error(`${key}/${scheme}: ${run.last.message}`);
          // Round 1 includes model set-up on every node; later rounds are the steady state.
          const secs = run.events.filter((e) => e.progress && e.progress.round > 1).map((e) => e.progress!.seconds);
          times[scheme].push(median(secs));
          const training = run.events.find((e) => e.stage === 'training' && /parameters/.test(e.message));
          params = Number(/with (\d+) parameters/.exec(training?.message ?? '')?.[1] ?? 0);
        }
      }
      const egress = (await readFile(join(fed.dir, 'fedcredit-state', 'bank-a', 'egress.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { direction: string; kind: string; bytes: number; what: string; job: string });
      const ckksUpdates = egress.filter((e) => e.direction === 'sent' && e.kind === 'contribution' && e.what.includes('update') && e.what.includes('ckks'));
      const bytesPerRound = median(ckksUpdates.map((e) => e.bytes));
      if (tn) {
        const [single, nOfN, tOfN] = [median(times.ckks), median(times['ckks-threshold']), median(times['ckks-threshold-tn'])];
        const at = `horizontal.${key}.n${names.length}`;
        results[`${at}.round_s_ckks`] = +single.toFixed(3);
        results[`${at}.round_s_ckks_threshold`] = +nOfN.toFixed(3);
        results[`${at}.round_s_ckks_threshold_t${tn}`] = +tOfN.toFixed(3);
        results[`${at}.t${tn}_over_n_of_n`] = +(tOfN / nOfN).toFixed(3);
        results[`${at}.t${tn}_over_ckks`] = +(tOfN / single).toFixed(3);
        table.push([
          `horizontal ${key} (${params} params), ${names.length} participants`,
          `round ${tOfN.toFixed(2)}s ${tn}-of-${names.length} vs ${nOfN.toFixed(2)}s ${names.length}-of-${names.length} vs ${single.toFixed(2)}s single key`,
          `t-of-n / N-of-N ${(tOfN / nOfN).toFixed(2)}, t-of-n / single key ${(tOfN / single).toFixed(2)}`,
        ]);
        await rm(join(fed.dir, 'fedcredit-state', 'bank-a', 'egress.jsonl'), { force: true });
        continue;
      }
      const ratio = median(times.ckks) / median(times.plaintext);
      results[`horizontal.${key}.params`] = params;
      results[`horizontal.${key}.round_s_ckks`] = +median(times.ckks).toFixed(3);
      results[`horizontal.${key}.round_s_plaintext`] = +median(times.plaintext).toFixed(3);
      results[`horizontal.${key}.ckks_over_plain`] = +ratio.toFixed(3);
      results[`horizontal.${key}.bytes_per_participant_round`] = bytesPerRound;
      results[`horizontal.${key}.bytes_per_param`] = +(bytesPerRound / params).toFixed(1);
      table.push([
        `horizontal ${key} (${params} params)`,
        `round ${median(times.ckks).toFixed(2)}s CKKS vs ${median(times.plaintext).toFixed(2)}s plain`,
        `ratio ${ratio.toFixed(2)}`,
        `${(bytesPerRound / 1024).toFixed(0)} KiB/participant/round`,
      ]);
      if (times['ckks-threshold'].length > 0) {
        const threshold = median(times['ckks-threshold']);
        results[`horizontal.${key}.round_s_ckks_threshold`] = +threshold.toFixed(3);
        results[`horizontal.${key}.threshold_over_ckks`] = +(threshold / median(times.ckks)).toFixed(3);
        table.push([
          `horizontal ${key}, collective key`,
          `round ${threshold.toFixed(2)}s threshold CKKS vs ${median(times.ckks).toFixed(2)}s single key`,
          `ratio ${(threshold / median(times.ckks)).toFixed(2)} (target 1.25)`,
        ]);
      }
      await rm(join(fed.dir, 'fedcredit-state', 'bank-a', 'egress.jsonl'), { force: true });
    }
  } finally {
    await fed.stop();
  }
}

/**
 * Vertical LR on the UCI hetero split (guest + 1 host), CKKS against the same protocol in the clear and a centralised LR;
 * with `--threshold` also under the collective key (encryption.scheme ckks-threshold, its default batch of 8,192).
 */
async function verticalLr(): Promise<void> {
  const spec = (role: 'guest' | 'host') => uciHeteroSpec(role);
  const fed = await EphemeralFederation.start(
    [
      { name: 'bank', data: spec('guest') },
      { name: 'tax-bureau', data: spec('host') },
    ],
    { prefix: 'fedcredit-bench-' },
  );
  const epochs = quick ? 3 : 6;
  // `ckks-threshold-4096`: the collective key with the single key's batch, to show what the default 8,192 gains.
  type Scheme = 'ckks' | 'plaintext' | 'ckks-threshold' | 'ckks-threshold-4096';
  const schemes: Scheme[] = ['ckks', 'plaintext', ...(args.includes('--threshold') ? (['ckks-threshold', 'ckks-threshold-4096'] as const) : [])];
  const job = (scheme: Scheme) => ({
    name: 'bench-vertical',
    kind: 'vertical-lr',
    purpose: 'benchmark',
    guest: 'bank',
    hosts: ['tax-bureau'],
    alignment: { id_format: 'any', min_intersection: 1000 },
    training: { epochs, ...(scheme === 'ckks-threshold' ? {} : { batch_size: 4096 }), patience: 0, seed: 7, validation_fraction: 0.1, test_fraction: 0.2 },
    encryption: { scheme: scheme === 'ckks-threshold-4096' ? 'ckks-threshold' : scheme },
  });
  try {
    const times: Record<Scheme, number[]> = { ckks: [], plaintext: [], 'ckks-threshold': [], 'ckks-threshold-4096': [] };
    const aucs: Partial<Record<Scheme, number>> = {};
    for (let r = 0; r < (quick ? 1 : reps); r++) {
      for (const scheme of schemes) {
        const run = await runJob(fed, job(scheme));
        run.client.close();
        if (run.last.state !== 'succeeded') throw new Error(`vertical/${scheme}: ${run.last.message}`);
        // Epoch 1 includes key set-up and the first Galois-key load; later epochs are the steady state.
        times[scheme].push(median(run.events.filter((e) => e.progress && e.progress.round > 1).map((e) => e.progress!.seconds)));
        aucs[scheme] = Number(/test AUC ([0-9.]+)/.exec(run.last.message)?.[1]);
      }
    }
    const fedAuc = aucs.ckks!;
    // The centralised yardstick: one epoch of a TensorFlow.js LR with the same batch size on the pooled columns.
    const guest = await loadDataset(spec('guest'));
    const host = await loadDataset(spec('host'));
    const spec0 = VerticalJobSpec.parse(job('ckks'));
    const baselines = verticalBaselines(
      [
        { organisation: 'bank', data: guest, features: guest.features },
        { organisation: 'tax-bureau', data: host, features: host.features },
      ],
      spec0,
    );
    const { tf } = await loadTf();
    const hostRow = new Map(host.ids.map((id, r) => [id, r]));
    const rows = guest.ids.map((id, r) => [r, hostRow.get(id)!] as const).filter(([, h]) => h !== undefined);
    const dim = guest.features.length + host.features.length;
    const x = new Float32Array(rows.length * dim);
    rows.forEach(([g, h], i) => {
      x.set(guest.x.subarray(g * guest.features.length, (g + 1) * guest.features.length), i * dim);
      x.set(host.x.subarray(h * host.features.length, (h + 1) * host.features.length), i * dim + guest.features.length);
    });
    const y = Float32Array.from(rows, ([g]) => guest.y![g]!);
    const centralTimes: number[] = [];
    for (let r = 0; r < 3; r++) {
      const model = buildModel(tf, { type: 'logistic', hidden: [], activation: 'relu' }, dim, 7);
      const t0 = performance.now();
      trainModel(tf, model, x, y, dim, { epochs: 1, batchSize: 4096, learningRate: 0.05, optimizer: 'adam', seed: 7 });
      centralTimes.push((performance.now() - t0) / 1000);
      model.dispose();
    }
    const ckks = median(times.ckks);
    const plain = median(times.plaintext);
    const central = median(centralTimes);
    results['vertical_lr.epoch_s_ckks'] = +ckks.toFixed(3);
    results['vertical_lr.epoch_s_plaintext'] = +plain.toFixed(3);
    results['vertical_lr.epoch_s_central'] = +central.toFixed(3);
    results['vertical_lr.ckks_over_plain'] = +(ckks / plain).toFixed(3);
    results['vertical_lr.ckks_over_central'] = +(ckks / central).toFixed(3);
    results['vertical_lr.auc_federated'] = fedAuc;
    results['vertical_lr.auc_central'] = +baselines.pooled.auc.toFixed(4);
    results['vertical_lr.auc_gap'] = +(baselines.pooled.auc - fedAuc).toFixed(4);
    if (times['ckks-threshold'].length > 0) {
      const collective = median(times['ckks-threshold']);
      const collective4096 = median(times['ckks-threshold-4096']);
      results['vertical_lr.epoch_s_ckks_threshold'] = +collective.toFixed(3);
      results['vertical_lr.epoch_s_ckks_threshold_4096'] = +collective4096.toFixed(3);
      results['vertical_lr.threshold_over_ckks'] = +(collective / ckks).toFixed(3);
      results['vertical_lr.threshold_4096_over_ckks'] = +(collective4096 / ckks).toFixed(3);
      results['vertical_lr.auc_federated_threshold'] = aucs['ckks-threshold']!;
      results['vertical_lr.auc_federated_threshold_4096'] = aucs['ckks-threshold-4096']!;
      table.push([
        'vertical_lr under a collective key',
        `epoch ${collective.toFixed(2)}s (batches of 8,192), ${collective4096.toFixed(2)}s (4,096), against ${ckks.toFixed(2)}s under the single key (4,096)`,
        `ratios ${(collective / ckks).toFixed(2)} / ${(collective4096 / ckks).toFixed(2)}`,
        `test AUC ${aucs['ckks-threshold']!.toFixed(4)} / ${aucs['ckks-threshold-4096']!.toFixed(4)} against ${fedAuc.toFixed(4)} after ${epochs} epochs`,
      ]);
    }
    table.push([
      `vertical_lr (UCI, ${rows.length} rows, guest + 1 host)`,
      `epoch ${ckks.toFixed(2)}s CKKS vs ${plain.toFixed(2)}s plain vs ${central.toFixed(2)}s central`,
      `ratios ${(ckks / plain).toFixed(2)} / ${(ckks / central).toFixed(2)}`,
      `AUC gap ${(baselines.pooled.auc - fedAuc).toFixed(4)}`,
    ]);
  } finally {
    await fed.stop();
  }
}

/** The UCI hetero files' data section for the guest (labels + 13 features) or a host (10 features). */
function uciHeteroSpec(role: 'guest' | 'host', path = join(DATASETS, 'uci_default_credit', `fate_default_credit_hetero_${role}.csv`)) {
  return {
    path,
    delimiter: ',',
    id_column: 'id',
    ...(role === 'guest' ? { label_column: 'y' } : {}),
    features: Array.from({ length: role === 'guest' ? 13 : 10 }, (_, i) => ({ name: `x${i}`, type: 'number' as const, missing: 'impute' as const })),
    duplicate_ids: 'reject' as const,
    missing_values: [''],
  };
}

/** Median CKKS epoch time (epochs after the first) of a vertical job on a running federation. */
async function epochSeconds(fed: EphemeralFederation, hosts: string[], epochs: number): Promise<number> {
  const run = await runJob(fed, {
    name: 'bench-vertical-scale',
    kind: 'vertical-lr',
    purpose: 'benchmark',
    guest: 'bank',
    hosts,
    alignment: { id_format: 'any', min_intersection: 1000 },
    training: { epochs, batch_size: 4096, patience: 0, seed: 7, validation_fraction: 0.1, test_fraction: 0.2, step_timeout_s: 900 },
  });
  run.client.close();
  if (run.last.state !== 'succeeded') throw new Error(`vertical scale-up: ${run.last.message}`);
  return median(run.events.filter((e) => e.progress && e.progress.round > 1).map((e) => e.progress!.seconds));
}

/**
 * How the vertical epoch grows with hosts (1, 3, 6 copies of the UCI host's columns under different names) and
 * with rows (UCI rows resampled with noise to 100k and 1M). The exponent is log(t2/t1) / log(n2/n1): 1 is linear.
 */
async function verticalScale(): Promise<void> {
  const hostsFed = await EphemeralFederation.start([{ name: 'bank', data: uciHeteroSpec('guest') }, ...Array.from({ length: 6 }, (_, i) => ({ name: `host-${i + 1}`, data: uciHeteroSpec('host') }))], {
    prefix: 'fedcredit-bench-',
  });
  const byHosts: Record<number, number> = {};
  try {
    for (const k of [1, 3, 6])
      byHosts[k] = await epochSeconds(
        hostsFed,
        Array.from({ length: k }, (_, i) => `host-${i + 1}`),
        3,
      );
  } finally {
    await hostsFed.stop();
  }
  const hostExponent = scaleExponent([
    [1, byHosts[1]!],
    [6, byHosts[6]!],
  ]);
  results['vertical_lr.scale.hosts_1_epoch_s'] = +byHosts[1]!.toFixed(3);
  results['vertical_lr.scale.hosts_3_epoch_s'] = +byHosts[3]!.toFixed(3);
  results['vertical_lr.scale.hosts_6_epoch_s'] = +byHosts[6]!.toFixed(3);
  results['vertical_lr.scale.hosts_exponent'] = +hostExponent.toFixed(3);
  table.push([
    'vertical_lr by hosts (30k rows)',
    `epoch ${byHosts[1]!.toFixed(2)}s / ${byHosts[3]!.toFixed(2)}s / ${byHosts[6]!.toFixed(2)}s for 1 / 3 / 6 hosts`,
    `exponent ${hostExponent.toFixed(2)}`,
    '',
  ]);

  const guest = await loadDataset(uciHeteroSpec('guest'));
  const host = await loadDataset(uciHeteroSpec('host'));
  const hostRow = new Map(host.ids.map((id, r) => [id, r]));
  const byRows: Record<number, number> = { 30000: results['vertical_lr.epoch_s_ckks'] ?? byHosts[1]! };
  for (const n of [100_000, 1_000_000]) {
    const dir = await mkdtemp(join(tmpdir(), 'fedcredit-bench-rows-'));
    try {
      // Resample UCI rows with Gaussian noise (0.05 sd on the standardised features); fresh ids.
      const rng = new Rng(n);
      const g = ['id,y,' + guest.features.join(',')];
      const h = ['id,' + host.features.join(',')];
      for (let i = 0; i < n; i++) {
        const r = rng.int(guest.rows);
        const hr = hostRow.get(guest.ids[r]!)!;
        const noisy = (x: number) => (x + rng.normal() * 0.05).toFixed(4);
        g.push(`e${i},${guest.y![r]},${Array.from(guest.x.subarray(r * 13, r * 13 + 13), noisy).join(',')}`);
        h.push(`e${i},${Array.from(host.x.subarray(hr * 10, hr * 10 + 10), noisy).join(',')}`);
      }
      await writeFile(join(dir, 'guest.csv'), g.join('\n') + '\n');
      await writeFile(join(dir, 'host.csv'), h.join('\n') + '\n');
      const fed = await EphemeralFederation.start(
        [
          { name: 'bank', data: uciHeteroSpec('guest', join(dir, 'guest.csv')) },
          { name: 'host-1', data: uciHeteroSpec('host', join(dir, 'host.csv')) },
        ],
        { prefix: 'fedcredit-bench-' },
      );
      try {
        byRows[n] = await epochSeconds(fed, ['host-1'], 2);
      } finally {
        await fed.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const rowExponent = scaleExponent([
    [100_000, byRows[100_000]!],
    [1_000_000, byRows[1_000_000]!],
  ]);
  results['vertical_lr.scale.rows_100k_epoch_s'] = +byRows[100_000]!.toFixed(3);
  results['vertical_lr.scale.rows_1m_epoch_s'] = +byRows[1_000_000]!.toFixed(3);
  results['vertical_lr.scale.rows_exponent'] = +rowExponent.toFixed(3);
  table.push(['vertical_lr by rows (1 host)', `epoch ${byRows[100_000]!.toFixed(2)}s / ${byRows[1_000_000]!.toFixed(2)}s for 100k / 1M rows`, `exponent ${rowExponent.toFixed(2)}`, '']);
}

/** A plaintext vertical job whose PSI is what a scenario measures (an hour per step allows 10M ids). */
function psiJob(name: string, guest: string, host: string, minIntersection: number) {
  return {
    name,
    kind: 'vertical-lr',
    purpose: 'benchmark',
    guest,
    hosts: [host],
    alignment: { id_format: 'any', min_intersection: minIntersection },
    training: { epochs: 1, batch_size: 4096, patience: 0, step_timeout_s: 3600 },
    encryption: { scheme: 'plaintext' },
  };
}

/** A bank (label and one feature) and a tax bureau (one feature) of n ids each, half of them shared, in `dir`. */
async function startPsiFederation(dir: string, n: number): Promise<EphemeralFederation> {
  const ids = Array.from({ length: Math.round(1.5 * n) }, (_, i) => `E${String(i).padStart(9, '0')}`);
  const write = async (file: string, list: string[], label: boolean) => {
    const lines = list.map((id, i) => (label ? `${id},${i % 7 === 0 ? 1 : 0},${(i % 13) / 13}` : `${id},${(i % 11) / 11}`));
    await writeFile(join(dir, file), [label ? 'id,y,f' : 'id,h', ...lines].join('\n') + '\n');
  };
  await write('guest.csv', ids.slice(0, n), true);
  await write('host.csv', ids.slice(n / 2, n / 2 + n), false);
  const data = (file: string, label: boolean) => ({
    path: join(dir, file),
    delimiter: ',',
    id_column: 'id',
    ...(label ? { label_column: 'y' } : {}),
    features: [{ name: label ? 'f' : 'h', type: 'number' as const, missing: 'impute' as const }],
    duplicate_ids: 'reject' as const,
    missing_values: [''],
  });
  return EphemeralFederation.start(
    [
      { name: 'bank', data: data('guest.csv', true) },
      { name: 'tax-bureau', data: data('host.csv', false) },
    ],
    { prefix: 'fedcredit-bench-' },
  );
}

/** ECDH PSI between two participant processes over loopback: n x n ids, half shared. */
async function psi(n: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fedcredit-bench-psi-'));
  const fed = await startPsiFederation(dir, n);
  // Each party's peak RSS up to the end of the PSI (training comes after it in the same job).
  let peaks: number[] = [];
  const endOfPsi = (e: JobEvent) => /enterprises shared by all parties/.test(e.message);
  try {
    const run = await runJob(fed, psiJob('bench-psi', 'bank', 'tax-bureau', 1), (e) => {
      if (endOfPsi(e)) peaks = ['bank', 'tax-bureau'].map((p) => procStats(fed.cluster.process(p)!.pid!).peakRssMb);
    });
    run.client.close();
    const start = run.events.find((e) => e.stage === 'psi')!;
    const end = run.events.find(endOfPsi);
    if (!end) throw new Error(`psi ${n}: ${run.last.message}`);
    windows.push({ label: `psi ${n}`, startUs: run.arrivedUs[run.events.indexOf(start)]!, endUs: run.arrivedUs[run.events.indexOf(end)]! });
    const seconds = (end.unixMs - start.unixMs) / 1000;
    const cores = Math.min(2, cpus().length);
    const perCore = (2 * n) / (seconds * cores);
    const key = n >= 1_000_000 ? '1m' : `${n / 1000}k`;
    results[`psi.${key}.seconds`] = +seconds.toFixed(2);
    results[`psi.${key}.ids_per_core_second`] = Math.round(perCore);
    results[`psi.${key}.guest_peak_rss_mb`] = Math.round(peaks[0]!);
    results[`psi.${key}.host_peak_rss_mb`] = Math.round(peaks[1]!);
    if (n === (quick ? 100_000 : 1_000_000) || !results['psi.ids_per_core_second']) results['psi.ids_per_core_second'] = Math.round(perCore);
    table.push([
      `psi ${n} x ${n} ids (50% shared)`,
      `${seconds.toFixed(1)}s over loopback`,
      `${Math.round(perCore)} ids/core-s`,
      `${end.message.replace(/^\D*/, '')}; peak RSS guest ${Math.round(peaks[0]!)} MiB, host ${Math.round(peaks[1]!)} MiB`,
    ]);
  } finally {
    await fed.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Scoring one enterprise with `fedcredit score` against a vertical model whose host holds n ids (the request as the
 * CLI makes it: submit, PSI, masked shares, scores): the first request, which blinds the host's ids for the model
 * (and the guest blinds them again), and the requests after it, which blind only the guest's one id.
 */
async function scoring(n: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fedcredit-bench-scoring-'));
  const fed = await startPsiFederation(dir, n);
  try {
    const trained = await runJob(fed, psiJob('bench-scoring-model', 'bank', 'tax-bureau', 1));
    trained.client.close();
    if (trained.last.state !== 'succeeded') throw new Error(`scoring ${n}: the model did not train: ${trained.last.message}`);
    const transport = await fed.identity('bank', 'submitter');
    const stateDir = join(fed.dir, 'fedcredit-state', 'bank');
    const request = async (id: string) => {
      const started = performance.now();
      await requestScores({ coordinator: fed.cluster.address, transport, organisation: 'bank', stateDir, modelJob: trained.jobId, ids: [id], purpose: 'benchmark' });
      return (performance.now() - started) / 1000;
    };
    // Ids the bank holds, shared with the host (the first n/2 are the bank's alone).
    const id = (i: number) => `E${String(n / 2 + i).padStart(9, '0')}`;
    const first = await request(id(0));
    const later: number[] = [];
    for (let i = 1; i <= reps; i++) later.push(await request(id(i * 17)));
    const key = `${n / 1000}k`;
    results[`scoring.${key}.first_request_s`] = +first.toFixed(2);
    results[`scoring.${key}.single_id_s`] = +median(later).toFixed(2);
    table.push([`scoring 1 id, host of ${n} ids`, `first request ${first.toFixed(2)}s`, `later requests ${median(later).toFixed(2)}s (median of ${reps})`, later.map((t) => t.toFixed(2)).join(', ')]);
  } finally {
    await fed.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A CSV of `rows` enterprises with an id, a 0/1 label and 28 numeric features (30 columns, ~150 bytes a row), the
 * label drawn from a logistic model of the first features so a round has something to learn.
 */
async function writeWideCsv(file: string, rows: number, idPrefix: string, seed: number): Promise<void> {
  const features = 28;
  const out = createWriteStream(file);
  out.write(['id', 'y', ...Array.from({ length: features }, (_, j) => `f${j}`)].join(',') + '\n');
  const rng = new Rng(seed);
  const cells = new Array<string>(features);
  for (let start = 0; start < rows; start += 2000) {
    let chunk = '';
    for (let i = start; i < Math.min(rows, start + 2000); i++) {
      let z = -1.5;
      for (let j = 0; j < features; j++) {
        const v = rng.normal();
        if (j < 6) z += v * (j % 2 === 0 ? 0.8 : -0.5);
        cells[j] = (v * 100).toFixed(2);
      }
      chunk += `${idPrefix}${i},${rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0},${cells.join(',')}\n`;
    }
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(r));
}

function wideSpec(file: string) {
  return {
    path: file,
    delimiter: ',',
    id_column: 'id',
    label_column: 'y',
    features: Array.from({ length: 28 }, (_, j) => ({ name: `f${j}`, type: 'number' as const, missing: 'impute' as const })),
    duplicate_ids: 'reject' as const,
    missing_values: [''],
  };
}

/** Resolves when a participant's log says it reached the coordinator (after it has read its data). */
async function connected(fed: EphemeralFederation, name: string, timeoutMs: number): Promise<void> {
  const log = join(fed.dir, 'logs', `${name}.log`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(log) && (await readFile(log, 'utf8')).includes('connected to coordinator')) return;
    if (fed.cluster.process(name)?.exitCode != null) throw new Error(`${name} exited while reading its data; see ${log}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${name} did not connect within ${timeoutMs / 1000} s; see ${log}`);
}

/**
 * One participant with a large generated CSV (1M, 3M and 10M rows × 30 columns) and a small partner run one
 * horizontal CKKS round of logistic regression with binning (moments, histogram, update and evaluation passes over
 * the rows); then the large participant, as the host of a vertical job, runs the PSI against a guest holding 20,000
 * of its ids. The large participant's peak RSS (VmHWM) in each should stay flat as its rows grow tenfold.
 */
async function memory(): Promise<void> {
  // `--rows 1000000,10000000` measures only those sizes; `--sources csv,postgres` also reads the large participant's
  // rows from a PostgreSQL table holding the same rows (a throwaway server, as the tests start); `--no-psi` skips the PSI.
  const sizes = args.includes('--rows') ? args[args.indexOf('--rows') + 1]!.split(',').map(Number) : quick ? [250_000, 1_000_000] : [1_000_000, 3_000_000, 10_000_000];
  const sources = args.includes('--sources') ? args[args.indexOf('--sources') + 1]!.split(',') : ['csv'];
  const psi = !args.includes('--no-psi');
  const peaks: [number, number][] = [];
  const psiPeaks: [number, number][] = [];
  for (const rows of sizes) {
    const dir = await mkdtemp(join(tmpdir(), 'fedcredit-bench-memory-'));
    try {
      const generated = performance.now();
      await writeWideCsv(join(dir, 'large.csv'), rows, 'L', 1);
      await writeWideCsv(join(dir, 'small.csv'), 20_000, 'S', 2);
      // The vertical guest: 20,000 enterprises that are also the large participant's first 20,000.
      await writeWideCsv(join(dir, 'guest.csv'), 20_000, 'L', 3);
      const csvBytes = statSync(join(dir, 'large.csv')).size;
      console.log(`memory: ${rows} rows written (${(csvBytes / 2 ** 30).toFixed(2)} GiB) in ${((performance.now() - generated) / 1000).toFixed(0)} s`);
      const started = performance.now();
      const fed = await EphemeralFederation.start(
        [
          { name: 'bank-large', data: wideSpec(join(dir, 'large.csv')) },
          { name: 'bank-small', data: wideSpec(join(dir, 'small.csv')) },
          { name: 'bank-guest', data: wideSpec(join(dir, 'guest.csv')) },
        ],
        { prefix: 'fedcredit-bench-' },
      );
      try {
        await connected(fed, 'bank-large', 60_000 + rows / 5);
        await connected(fed, 'bank-small', 60_000);
        await connected(fed, 'bank-guest', 60_000);
        const ingestS = (performance.now() - started) / 1000;
        const afterIngest = procStats(fed.cluster.process('bank-large')!.pid!);
        const run = await runJob(fed, memoryJob('bench-memory'));
        run.client.close();
        if (run.last.state !== 'succeeded') throw new Error(`memory ${rows}: ${run.last.message}`);
        const roundS = run.events.find((e) => e.progress)?.progress?.seconds ?? NaN;
        const stats = procStats(fed.cluster.process('bank-large')!.pid!);
        const key = rows >= 1_000_000 ? `${rows / 1_000_000}m` : `${rows / 1000}k`;
        results[`memory.rows_${key}.peak_rss_mb`] = Math.round(stats.peakRssMb);
        results[`memory.rows_${key}.ingest_peak_rss_mb`] = Math.round(afterIngest.peakRssMb);
        results[`memory.rows_${key}.rss_after_ingest_mb`] = Math.round(afterIngest.rssMb);
        results[`memory.rows_${key}.ingest_s`] = +ingestS.toFixed(1);
        results[`memory.rows_${key}.round_s`] = +roundS.toFixed(1);
        peaks.push([rows, stats.peakRssMb]);
        table.push([
          `memory ${rows} rows × 30 columns (${(csvBytes / 2 ** 30).toFixed(2)} GiB CSV)`,
          `peak RSS ${Math.round(stats.peakRssMb)} MiB`,
          `read in ${ingestS.toFixed(0)} s`,
          `one CKKS round ${roundS.toFixed(0)} s`,
        ]);

        if (sources.includes('postgres')) await memoryFromPostgres(dir, rows, key, stats.peakRssMb);
        if (!psi) continue;
        // The PSI: the peak counts from here (Linux resets VmHWM to the current RSS on "5" to clear_refs).
        const large = fed.cluster.process('bank-large')!.pid!;
        writeFileSync(`/proc/${large}/clear_refs`, '5');
        // min_intersection above the 20,000 shared ids stops the job once the guest has matched them: the PSI runs
        // whole (both sides' blinding, both streams, the guest's join), and the rows are never loaded for training.
        const psiRun = await runJob(fed, psiJob('bench-memory-psi', 'bank-guest', 'bank-large', 20_001));
        psiRun.client.close();
        if (!/share 20000 enterprises, below/.test(psiRun.last.message)) throw new Error(`memory ${rows} PSI: ${psiRun.last.message}`);
        const psiStart = psiRun.events.find((e) => e.stage === 'psi')!;
        const psiS = (psiRun.last.unixMs - psiStart.unixMs) / 1000;
        const psiPeak = procStats(large).peakRssMb;
        const guestPeak = procStats(fed.cluster.process('bank-guest')!.pid!).peakRssMb;
        results[`memory.rows_${key}.psi_peak_rss_mb`] = Math.round(psiPeak);
        results[`memory.rows_${key}.psi_s`] = +psiS.toFixed(1);
        results[`memory.rows_${key}.psi_guest_peak_rss_mb`] = Math.round(guestPeak);
        psiPeaks.push([rows, psiPeak]);
        table.push([`memory PSI: host of ${rows} ids, guest of 20,000`, `peak RSS ${Math.round(psiPeak)} MiB (guest ${Math.round(guestPeak)} MiB)`, `PSI ${psiS.toFixed(0)} s`, '']);
      } catch (err) {
        // A failure at this size is rare and slow to reproduce: keep the nodes' logs (the folder is printed).
        process.env.FEDCREDIT_KEEP_TEST_DIRS = '1';
        throw err;
      } finally {
        await fed.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const [first, last] = [peaks[0]!, peaks.at(-1)!];
  results['memory.peak_rss_mb'] = Math.round(last[1]);
  results['memory.peak_growth'] = +(last[1] / first[1]).toFixed(3);
  table.push(['memory flatness', `${last[0] / first[0]}x the rows`, `peak RSS ×${(last[1] / first[1]).toFixed(2)}`, '']);
  if (psiPeaks.length === 0) return;
  const [psiFirst, psiLast] = [psiPeaks[0]!, psiPeaks.at(-1)!];
  results['memory.psi_peak_rss_mb'] = Math.round(psiLast[1]);
  results['memory.psi_peak_growth'] = +(psiLast[1] / psiFirst[1]).toFixed(3);
  table.push(['memory flatness, PSI', `${psiLast[0] / psiFirst[0]}x the ids`, `peak RSS ×${(psiLast[1] / psiFirst[1]).toFixed(2)}`, '']);
}

/**
 * The memory scenario's PostgreSQL variant: the large participant's rows (the CSV just measured) loaded into a
 * throwaway server's table, read by the participant through its cursor, and the same horizontal round run; its peak
 * RSS beside the CSV path's.
 */
async function memoryFromPostgres(dir: string, rows: number, key: string, csvPeakMb: number): Promise<void> {
  const server = await EphemeralPostgres.start();
  try {
    const loadStarted = performance.now();
    await server.sql('CREATE DATABASE bench');
    await server.loadCsvTable('bench', 'large', join(dir, 'large.csv'), 'id');
    await server.sql('ALTER TABLE large ADD PRIMARY KEY (row_no); ANALYZE large', 'bench');
    await server.createReader('bench_reader', 'bench-reader-password', 'bench');
    await server.sql('GRANT SELECT ON large TO bench_reader', 'bench');
    console.log(`memory: ${rows} rows loaded into PostgreSQL in ${((performance.now() - loadStarted) / 1000).toFixed(0)} s`);
    const { path: _path, ...columns } = wideSpec(join(dir, 'large.csv'));
    const source = {
      kind: 'postgres',
      host: '127.0.0.1',
      port: server.port,
      database: 'bench',
      user: 'bench_reader',
      password_env: 'FEDCREDIT_BENCH_DB_PASSWORD',
      table: 'large',
      order_by: ['row_no'],
      fetch_size: 10_000,
    };
    const started = performance.now();
    const fed = await EphemeralFederation.start(
      [
        { name: 'bank-large', data: DatasetSpec.parse({ ...columns, source }) },
        { name: 'bank-small', data: wideSpec(join(dir, 'small.csv')) },
      ],
      { prefix: 'fedcredit-bench-', env: { FEDCREDIT_BENCH_DB_PASSWORD: 'bench-reader-password' } },
    );
    try {
      await connected(fed, 'bank-large', 60_000 + rows / 5);
      await connected(fed, 'bank-small', 60_000);
      const ingestS = (performance.now() - started) / 1000;
      const afterIngest = procStats(fed.cluster.process('bank-large')!.pid!);
      const run = await runJob(fed, memoryJob('bench-memory-postgres'));
      run.client.close();
      if (run.last.state !== 'succeeded') throw new Error(`memory ${rows} from PostgreSQL: ${run.last.message}`);
      const roundS = run.events.find((e) => e.progress)?.progress?.seconds ?? NaN;
      const stats = procStats(fed.cluster.process('bank-large')!.pid!);
      results[`memory.rows_${key}.postgres.peak_rss_mb`] = Math.round(stats.peakRssMb);
      results[`memory.rows_${key}.postgres.ingest_peak_rss_mb`] = Math.round(afterIngest.peakRssMb);
      results[`memory.rows_${key}.postgres.ingest_s`] = +ingestS.toFixed(1);
      results[`memory.rows_${key}.postgres.round_s`] = +roundS.toFixed(1);
      results[`memory.rows_${key}.postgres.peak_vs_csv`] = +(stats.peakRssMb / csvPeakMb).toFixed(3);
      table.push([
        `memory ${rows} rows × 30 columns from PostgreSQL`,
        `peak RSS ${Math.round(stats.peakRssMb)} MiB (CSV ${Math.round(csvPeakMb)} MiB, ×${(stats.peakRssMb / csvPeakMb).toFixed(2)})`,
        `read in ${ingestS.toFixed(0)} s`,
        `one CKKS round ${roundS.toFixed(0)} s`,
      ]);
    } finally {
      await fed.stop();
    }
  } finally {
    await server.stop();
  }
}

/** A process's peak and current resident set (MiB) and CPU seconds so far, from /proc (Linux). */
function procStats(pid: number): { peakRssMb: number; rssMb: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  // /proc/<pid>/stat: utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { peakRssMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024, cpuS: (Number(fields[11]) + Number(fields[12])) / 100 };
}

/**
 * One horizontal job with N participants: the coordinator is its own process (mutual TLS, as in every scenario
 * here), the N participant nodes run in this process as in-process clients, each with its own certificate and
 * its own gRPC connection. Every participant holds the same amount of data (240 rows of the UCI homo split), so
 * the work per participant is fixed and a round should take time linear in N. Returns the round time (median of
 * rounds 2..R), the coordinator's peak RSS over the whole job, and both processes' CPU seconds per round.
 */
async function coordinatorRun(n: number, slices: string[], rounds: number) {
  const fed = await EphemeralFederation.start([], { prefix: 'fedcredit-bench-coord-' });
  const nodes: ParticipantNode[] = [];
  try {
    const pid = fed.cluster.process('coordinator')!.pid!;
    const startRss = procStats(pid).rssMb;
    const names = Array.from({ length: n }, (_, i) => `bank-${String(i + 1).padStart(3, '0')}`);
    // The participants log as real nodes do (level info), all into one file.
    const dest = pino.destination({ dest: join(fed.dir, 'logs', 'participants.log'), sync: true });
    for (const [i, name] of names.entries()) {
      const config = ParticipantConfig.parse({ organisation: name, coordinator: fed.cluster.address, data: uciHomoSpec(slices[i]!) });
      const log = pino({ level: 'info', base: { component: name }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
      nodes.push(new ParticipantNode({ config, configDir: fed.dir, log, coordinator: fed.cluster.address, transport: await fed.identity(name, 'participant') }));
    }
    await Promise.all(nodes.map((node) => node.start()));
    const client = await fed.client();
    const jobId = await client.submitJob(
      JSON.stringify({
        name: `bench-coordinator-${n}`,
        kind: 'horizontal',
        purpose: 'benchmark',
        participants: names,
        model: { type: 'logistic' },
        training: { rounds, local_epochs: 1, batch_size: 64, learning_rate: 0.01, optimizer: 'adam', seed: 1 },
      }),
      'test-bank',
    );
    const jobStart = performance.now();
    const byRound: { round: number; seconds: number; coordCpu: number; localCpu: number; us: number }[] = [];
    const last = await client.watchJob(jobId, (e) => {
      if (!e.progress) return;
      const cpu = process.cpuUsage();
      byRound.push({ round: e.progress.round, seconds: e.progress.seconds, coordCpu: procStats(pid).cpuS, localCpu: (cpu.user + cpu.system) / 1e6, us: monoUs() });
    });
    if (byRound.length >= 2) windows.push({ label: `coordinator ${n} participants, rounds 2..${byRound.length}`, startUs: byRound[0]!.us, endUs: byRound.at(-1)!.us });
    const jobSeconds = (performance.now() - jobStart) / 1000;
    const after = procStats(pid);
    client.close();
    if (last.state !== 'succeeded') throw new Error(`coordinator scenario, ${n} participants: ${last.message}`);
    const steady = byRound.filter((r) => r.round > 1);
    // CPU seconds between the end of one round and the end of the next (rounds 2..R).
    const deltas = (key: 'coordCpu' | 'localCpu') => byRound.flatMap((r, i) => (i > 0 && r.round > 1 ? [r[key] - byRound[i - 1]![key]] : []));
    return {
      roundSeconds: median(steady.map((r) => r.seconds)),
      coordinatorCpuPerRound: median(deltas('coordCpu')),
      participantsCpuPerRound: median(deltas('localCpu')),
      peakRssMb: after.peakRssMb,
      startRssMb: startRss,
      jobSeconds,
    };
  } finally {
    await Promise.all(nodes.map((node) => node.stop().catch(() => undefined)));
    await fed.stop();
  }
}

/** Issue 8's `coordinator` scenario: N = 10, 25, 50, 100 participants in one horizontal job (--quick: up to 50). */
async function coordinatorScale(): Promise<void> {
  const sizes = quick ? [10, 25, 50] : [10, 25, 50, 100];
  const perParticipant = 240;
  const rounds = quick ? 3 : 4;
  const dir = await mkdtemp(join(tmpdir(), 'fedcredit-bench-coord-data-'));
  try {
    // 24,000 rows (the three UCI homo training files), 240 to each participant: disjoint slices of real rows.
    let header = '';
    const rows: string[] = [];
    for (const part of UCI_HOMO_PARTIES) {
      const lines = (await readFile(uciHomoFile(DATASETS, part), 'utf8')).trim().split('\n');
      header = lines[0]!;
      rows.push(...lines.slice(1));
    }
    const maxN = Math.max(...sizes);
    if (rows.length < maxN * perParticipant) throw new Error(`the UCI homo split has ${rows.length} rows; ${maxN} x ${perParticipant} needed`);
    const slices: string[] = [];
    for (let i = 0; i < maxN; i++) {
      const file = join(dir, `slice-${i}.csv`);
      await writeFile(file, [header, ...rows.slice(i * perParticipant, (i + 1) * perParticipant)].join('\n') + '\n');
      slices.push(file);
    }
    const runs: Record<number, Awaited<ReturnType<typeof coordinatorRun>>[]> = {};
    for (let r = 0; r < (quick ? 1 : reps); r++) {
      // Alternate the order of sizes between repetitions, so drift in the machine's load does not bend the slope.
      for (const n of r % 2 === 0 ? sizes : [...sizes].reverse()) {
        const run = await coordinatorRun(n, slices, rounds);
        console.log(
          `coordinator: ${n} participants, round ${run.roundSeconds.toFixed(2)} s, coordinator peak RSS ${run.peakRssMb.toFixed(0)} MiB, CPU per round ${run.coordinatorCpuPerRound.toFixed(2)} s (coordinator) / ${run.participantsCpuPerRound.toFixed(2)} s (participants); job ${run.jobSeconds.toFixed(1)} s`,
        );
        (runs[n] ??= []).push(run);
      }
    }
    const med = (n: number, key: keyof Awaited<ReturnType<typeof coordinatorRun>>) => median(runs[n]!.map((x) => x[key]));
    for (const n of sizes) {
      results[`coordinator.round_s.p${n}`] = +med(n, 'roundSeconds').toFixed(3);
      results[`coordinator.peak_rss_mb.p${n}`] = +med(n, 'peakRssMb').toFixed(1);
      results[`coordinator.cpu_s_per_round.p${n}`] = +med(n, 'coordinatorCpuPerRound').toFixed(3);
      results[`coordinator.participants_cpu_s_per_round.p${n}`] = +med(n, 'participantsCpuPerRound').toFixed(3);
    }
    results['coordinator.start_rss_mb'] = +median(sizes.map((n) => med(n, 'startRssMb'))).toFixed(1);
    const exponent = scaleExponent(sizes.map((n) => [n, med(n, 'roundSeconds')]));
    const cpuExponent = scaleExponent(sizes.map((n) => [n, med(n, 'coordinatorCpuPerRound')]));
    // CPU seconds do not count time spent waiting for a core, so they show the growth with less of the machine's noise.
    results['coordinator.round_time_exponent'] = +exponent.toFixed(3);
    results['coordinator.cpu_exponent'] = +cpuExponent.toFixed(3);
    results['coordinator.participants_cpu_exponent'] = +scaleExponent(sizes.map((n) => [n, med(n, 'participantsCpuPerRound')])).toFixed(3);
    table.push([
      `coordinator, ${sizes.join(' / ')} participants (LR, CKKS)`,
      `round ${sizes.map((n) => med(n, 'roundSeconds').toFixed(2)).join(' / ')} s`,
      `exponent ${exponent.toFixed(2)} (coordinator CPU ${cpuExponent.toFixed(2)})`,
      `coordinator peak RSS ${sizes.map((n) => med(n, 'peakRssMb').toFixed(0)).join(' / ')} MiB`,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function ledger(): Promise<void> {
  const n = quick ? 10_000 : 100_000;
  const dir = await mkdtemp(join(tmpdir(), 'fedcredit-bench-ledger-'));
  try {
    const l = await Ledger.open(join(dir, 'ledger'), 'coordinator', join(dir, 'key.pem'));
    const started = performance.now();
    const startedUs = monoUs();
    for (let i = 0; i < n; i++) await l.append({ kind: 'bench', jobId: 'job-bench', body: { i, note: 'an event of realistic size with a few fields', round: i % 50 } });
    const appendSeconds = (performance.now() - started) / 1000;
    await l.close();
    const t = performance.now();
    const report = await verifyLedger(join(dir, 'ledger'));
    const verifySeconds = (performance.now() - t) / 1000;
    windows.push({ label: `ledger ${n} appends and verify`, startUs: Math.round(startedUs), endUs: monoUs() });
    if (!report.ok) throw new Error('benchmark ledger does not verify');
    results['ledger.entries'] = n;
    results['ledger.append_per_s_fsync'] = Math.round(n / appendSeconds);
    results['ledger.verify_s'] = +verifySeconds.toFixed(2);
    results['ledger.verify_per_s'] = Math.round(n / verifySeconds);
    table.push([`ledger ${n} entries`, `append ${Math.round(n / appendSeconds)}/s (each fsynced)`, `verify ${verifySeconds.toFixed(2)}s`, `${Math.round(n / verifySeconds)} entries/s`]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Issue 19's `quality` scenario (bench/quality.ts): default job settings on every real data set, vertical and
 * horizontal, against a central WOE logistic regression and each participant alone, on the same held-out rows.
 */
async function quality(): Promise<void> {
  const rows = await qualityBenchmark(DATASETS, (line) => console.log(line));
  for (const r of rows) {
    const key = `quality.${r.dataset}.${r.split}`;
    results[`${key}.federated_auc`] = +r.federated_auc.toFixed(4);
    results[`${key}.federated_ks`] = +r.federated_ks.toFixed(4);
    results[`${key}.central_auc`] = +r.central_auc.toFixed(4);
    results[`${key}.best_alone_auc`] = +r.best_alone_auc.toFixed(4);
    if (r.best_alone_gap_ci95) {
      results[`${key}.best_alone_gap_ci95_low`] = +r.best_alone_gap_ci95[0].toFixed(4);
      results[`${key}.best_alone_gap_ci95_high`] = +r.best_alone_gap_ci95[1].toFixed(4);
    }
    if (r.no_binning_auc !== undefined) results[`${key}.no_binning_auc`] = +r.no_binning_auc.toFixed(4);
    if (r.no_binning_unclipped_auc !== undefined) results[`${key}.no_binning_unclipped_auc`] = +r.no_binning_unclipped_auc.toFixed(4);
    const centralMet = r.federated_auc >= r.central_auc - 0.003;
    const aloneMet = r.split === 'vertical' || r.federated_auc >= r.best_alone_auc;
    table.push([
      key,
      `federated AUC ${r.federated_auc.toFixed(4)} (KS ${r.federated_ks.toFixed(4)}), central ${r.central_auc.toFixed(4)}, best alone ${r.best_alone_auc.toFixed(4)}`,
      `≥ central − 0.003: ${centralMet ? 'met' : 'NOT met'}${r.split === 'horizontal' ? `; ≥ best alone: ${aloneMet ? 'met' : 'NOT met'} (federated − best alone, 95% interval ${r.best_alone_gap_ci95!.map((g) => g.toFixed(4)).join(' to ')})` : ''}`,
      `${r.seconds.toFixed(0)} s`,
    ]);
  }
}

// The participants inherit this process's environment, so they blind with the same X25519 backend.
const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB (${(freemem() / 2 ** 30).toFixed(0)} free), Node ${process.version}, X25519 from ${x25519Backend()}`;
console.log(`fedcredit bench${quick ? ' --quick' : ''} on ${machine}`);
// `--only a,b` runs just those scenarios (names as below); `--scale` adds the scale-up to a --quick run.
const only = args.includes('--only') ? new Set(args[args.indexOf('--only') + 1]!.split(',')) : undefined;
const scenarios: [string, () => Promise<void>][] = [
  ['vertical', verticalLr],
  ['vertical-scale', () => (!quick || args.includes('--scale') || only ? verticalScale() : Promise.resolve())],
  [
    'psi',
    async () => {
      await psi(100_000);
      if (!quick) await psi(1_000_000);
    },
  ],
  ['scoring', () => scoring(140_000)],
  ['horizontal', horizontal],
  ['ledger', ledger],
  ['coordinator', coordinatorScale],
  ['memory', memory],
  ['threshold', () => thresholdBench(quick ? [3, 10] : [3, 10, 100], results, table)],
  ['vertical-threshold', () => verticalThresholdBench(quick ? 3 : 7, results, table)],
  ['arbiter-open', () => arbiterOpenBench(quick ? 5 : 15, results, table)],
  [
    'threshold-tn',
    () =>
      thresholdTnBench(
        [
          [4, 3],
          [10, 6],
        ],
        results,
        table,
      ),
  ],
  ['quality', quality],
  ['boost', () => boostBench(DATASETS, quick, results, table, args)],
];
// `--profile DIR`: each scenario again in its own process tree, every process and worker thread profiled as by
// `node --cpu-prof` (bench/cpu-profile-hook.ts, through NODE_OPTIONS, so the coordinator and participants the
// local cluster starts are profiled too) into DIR/<scenario>, then a summary of where the CPU time went
// (bench/profile-summary.ts) in DIR/summary.md. The profiled run's figures are not the benchmark's.
const profileDir = args.includes('--profile') ? resolve(args[args.indexOf('--profile') + 1]!) : undefined;
if (profileDir) {
  const passOn = args.filter((a, i) => !['--profile', '--only', '--json'].includes(a) && !['--profile', '--only', '--json'].includes(args[i - 1]!));
  const sections: string[] = [];
  for (const [name] of scenarios) {
    // The scale-up runs for tens of minutes: profiled only when asked for by name.
    if (only ? !only.has(name) : name === 'vertical-scale') continue;
    const dir = join(profileDir, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    console.log(`profiling ${name} into ${dir}`);
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...passOn, '--only', name, '--json', join(dir, 'results.json')], {
      stdio: 'inherit',
      // Node 20 refuses --cpu-prof in NODE_OPTIONS: the hook does the same in every process and thread.
      env: {
        ...process.env,
        FEDCREDIT_CPU_PROF_DIR: dir,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${new URL('./cpu-profile-hook.js', import.meta.url).href}`.trim(),
      },
    });
    if (child.status !== 0) throw new Error(`the profiled run of ${name} failed (exit ${child.status ?? child.signal})`);
    await writeFile(join(dir, 'summary.md'), `# \`${process.argv.slice(2).join(' ')}\` on ${machine}, ${new Date().toISOString()}\n\n${summariseScenario(dir, name)}`);
  }
  // DIR/summary.md: every scenario profiled into DIR so far, also by earlier runs (e.g. psi with --quick, the rest without).
  for (const [name] of scenarios) {
    const file = join(profileDir, name, 'summary.md');
    if (existsSync(file)) sections.push(await readFile(file, 'utf8'));
  }
  await writeFile(join(profileDir, 'summary.md'), sections.join('\n'));
  console.log(sections.join('\n'));
  console.log(`summary written to ${join(profileDir, 'summary.md')}`);
} else {
  for (const [name, run] of scenarios) if (!only || only.has(name)) await run();
  for (const row of table) console.log(row.join('  |  '));
  await writeFile(jsonOut, JSON.stringify({ machine, quick, date: new Date().toISOString(), results }, null, 2) + '\n');
  console.log(`figures written to ${jsonOut}`);
  if (process.env.FEDCREDIT_CPU_PROF_DIR) await writeFile(join(process.env.FEDCREDIT_CPU_PROF_DIR, 'windows.json'), JSON.stringify(windows, null, 2) + '\n');
}
