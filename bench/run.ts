/**
 * `npm run bench [-- --quick] [-- --json FILE]`: figures measured side by side in one run, variants alternated,
 * medians of repetitions. Prints a table and writes bench-results.json (one figure per key). Never asserts a time.
 * BENCHMARKS.md records the latest results with the machine they ran on.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, freemem, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EphemeralFederation } from '../src/federation/ephemeral.js';
import { Ledger } from '../src/ledger/ledger.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { UCI_HOMO_PARTIES, uciHomoFile, uciHomoSpec } from '../src/data/public-datasets.js';
import { loadDataset } from '../src/data/csv.js';
import { VerticalJobSpec } from '../src/config/schemas.js';
import { verticalBaselines } from '../src/vertical/baseline.js';
import { loadTf } from '../src/model/tf.js';
import { buildModel, trainModel } from '../src/model/network.js';
import { Rng } from '../src/random.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1]! : 'bench-results.json';
const reps = 3;

// Compiled to dist/bench/run.js: three levels up is the folder that holds this repository and shared/.
const DATASETS = fileURLToPath(new URL('../../../shared/datasets/', import.meta.url));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Record<string, number> = {};
const table: string[][] = [];

async function horizontal(): Promise<void> {
  const names = ['bank-a', 'bank-b', 'bank-c'];
  const fed = await EphemeralFederation.start(names.map((name, i) => ({ name, data: uciHomoSpec(uciHomoFile(DATASETS, UCI_HOMO_PARTIES[i]!)) })), { prefix: 'fedcredit-bench-' });
  try {
    const models: [string, object][] = [
      ['lr', { type: 'logistic' }],
      ['mlp_3k', { type: 'mlp', hidden: [96, 8] }],
      ['mlp_100k', { type: 'mlp', hidden: [256, 256, 128] }],
    ];
    const rounds = quick ? 3 : 5;
    for (const [key, model] of models) {
      const times: Record<'ckks' | 'plaintext', number[]> = { ckks: [], plaintext: [] };
      let params = 0;
      for (let r = 0; r < (quick ? 1 : reps); r++) {
        for (const scheme of ['ckks', 'plaintext'] as const) {
          const run = await fed.run({
            name: `bench-${key}`,
            kind: 'horizontal',
            purpose: 'benchmark',
            participants: names,
            model,
            training: { rounds, local_epochs: 1, batch_size: 64, learning_rate: 0.01, optimizer: 'adam', seed: 1 },
            encryption: { scheme },
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
      const ratio = median(times.ckks) / median(times.plaintext);
      results[`horizontal.${key}.params`] = params;
      results[`horizontal.${key}.round_s_ckks`] = +median(times.ckks).toFixed(3);
      results[`horizontal.${key}.round_s_plaintext`] = +median(times.plaintext).toFixed(3);
      results[`horizontal.${key}.ckks_over_plain`] = +ratio.toFixed(3);
      results[`horizontal.${key}.bytes_per_participant_round`] = bytesPerRound;
      results[`horizontal.${key}.bytes_per_param`] = +(bytesPerRound / params).toFixed(1);
      table.push([`horizontal ${key} (${params} params)`, `round ${median(times.ckks).toFixed(2)}s CKKS vs ${median(times.plaintext).toFixed(2)}s plain`, `ratio ${ratio.toFixed(2)}`, `${(bytesPerRound / 1024).toFixed(0)} KiB/participant/round`]);
      await rm(join(fed.dir, 'fedcredit-state', 'bank-a', 'egress.jsonl'), { force: true });
    }
  } finally {
    await fed.stop();
  }
}

/** Vertical LR on the UCI hetero split (guest + 1 host), CKKS against the same protocol in the clear and a centralised LR. */
async function verticalLr(): Promise<void> {
  const spec = (role: 'guest' | 'host') => uciHeteroSpec(role);
  const fed = await EphemeralFederation.start([{ name: 'bank', data: spec('guest') }, { name: 'tax-bureau', data: spec('host') }], { prefix: 'fedcredit-bench-' });
  const epochs = quick ? 3 : 6;
  const job = (scheme: 'ckks' | 'plaintext') => ({
    name: 'bench-vertical',
    kind: 'vertical-lr',
    purpose: 'benchmark',
    guest: 'bank',
    hosts: ['tax-bureau'],
    alignment: { id_format: 'any', min_intersection: 1000 },
    training: { epochs, batch_size: 4096, patience: 0, seed: 7, validation_fraction: 0.1, test_fraction: 0.2 },
    encryption: { scheme },
  });
  try {
    const times: Record<'ckks' | 'plaintext', number[]> = { ckks: [], plaintext: [] };
    let fedAuc = 0;
    for (let r = 0; r < (quick ? 1 : reps); r++) {
      for (const scheme of ['ckks', 'plaintext'] as const) {
        const run = await fed.run(job(scheme));
        run.client.close();
        if (run.last.state !== 'succeeded') throw new Error(`vertical/${scheme}: ${run.last.message}`);
        // Epoch 1 includes key set-up and the first Galois-key load; later epochs are the steady state.
        times[scheme].push(median(run.events.filter((e) => e.progress && e.progress.round > 1).map((e) => e.progress!.seconds)));
        if (scheme === 'ckks') fedAuc = Number(/test AUC ([0-9.]+)/.exec(run.last.message)?.[1]);
      }
    }
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
    table.push([`vertical_lr (UCI, ${rows.length} rows, guest + 1 host)`, `epoch ${ckks.toFixed(2)}s CKKS vs ${plain.toFixed(2)}s plain vs ${central.toFixed(2)}s central`, `ratios ${(ckks / plain).toFixed(2)} / ${(ckks / central).toFixed(2)}`, `AUC gap ${(baselines.pooled.auc - fedAuc).toFixed(4)}`]);
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
  const run = await fed.run({
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
  const hostsFed = await EphemeralFederation.start(
    [{ name: 'bank', data: uciHeteroSpec('guest') }, ...Array.from({ length: 6 }, (_, i) => ({ name: `host-${i + 1}`, data: uciHeteroSpec('host') }))],
    { prefix: 'fedcredit-bench-' },
  );
  const byHosts: Record<number, number> = {};
  try {
    for (const k of [1, 3, 6]) byHosts[k] = await epochSeconds(hostsFed, Array.from({ length: k }, (_, i) => `host-${i + 1}`), 3);
  } finally {
    await hostsFed.stop();
  }
  const hostExponent = Math.log(byHosts[6]! / byHosts[1]!) / Math.log(6);
  results['vertical_lr.scale.hosts_1_epoch_s'] = +byHosts[1]!.toFixed(3);
  results['vertical_lr.scale.hosts_3_epoch_s'] = +byHosts[3]!.toFixed(3);
  results['vertical_lr.scale.hosts_6_epoch_s'] = +byHosts[6]!.toFixed(3);
  results['vertical_lr.scale.hosts_exponent'] = +hostExponent.toFixed(3);
  table.push(['vertical_lr by hosts (30k rows)', `epoch ${byHosts[1]!.toFixed(2)}s / ${byHosts[3]!.toFixed(2)}s / ${byHosts[6]!.toFixed(2)}s for 1 / 3 / 6 hosts`, `exponent ${hostExponent.toFixed(2)}`, '']);

  const guest = await loadDataset(uciHeteroSpec('guest'));
  const host = await loadDataset(uciHeteroSpec('host'));
  const hostRow = new Map(host.ids.map((id, r) => [id, r]));
  const byRows: Record<number, number> = { 30_000: results['vertical_lr.epoch_s_ckks'] ?? byHosts[1]! };
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
  const rowExponent = Math.log(byRows[1_000_000]! / byRows[100_000]!) / Math.log(10);
  results['vertical_lr.scale.rows_100k_epoch_s'] = +byRows[100_000]!.toFixed(3);
  results['vertical_lr.scale.rows_1m_epoch_s'] = +byRows[1_000_000]!.toFixed(3);
  results['vertical_lr.scale.rows_exponent'] = +rowExponent.toFixed(3);
  table.push(['vertical_lr by rows (1 host)', `epoch ${byRows[100_000]!.toFixed(2)}s / ${byRows[1_000_000]!.toFixed(2)}s for 100k / 1M rows`, `exponent ${rowExponent.toFixed(2)}`, '']);
}

/** ECDH PSI between two participant processes over loopback: n x n ids, half shared. */
async function psi(n: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fedcredit-bench-psi-'));
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
  const fed = await EphemeralFederation.start([{ name: 'bank', data: data('guest.csv', true) }, { name: 'tax-bureau', data: data('host.csv', false) }], { prefix: 'fedcredit-bench-' });
  try {
    const run = await fed.run({
      name: 'bench-psi',
      kind: 'vertical-lr',
      purpose: 'benchmark',
      guest: 'bank',
      hosts: ['tax-bureau'],
      alignment: { id_format: 'any', min_intersection: 1 },
      training: { epochs: 1, batch_size: 4096, patience: 0, step_timeout_s: 600 },
      encryption: { scheme: 'plaintext' },
    });
    run.client.close();
    const start = run.events.find((e) => e.stage === 'psi')!;
    const end = run.events.find((e) => /enterprises shared by all parties/.test(e.message));
    if (!end) throw new Error(`psi ${n}: ${run.last.message}`);
    const seconds = (end.unixMs - start.unixMs) / 1000;
    const cores = Math.min(2, cpus().length);
    const perCore = (2 * n) / (seconds * cores);
    const key = n >= 1_000_000 ? '1m' : `${n / 1000}k`;
    results[`psi.${key}.seconds`] = +seconds.toFixed(2);
    results[`psi.${key}.ids_per_core_second`] = Math.round(perCore);
    if (n === (quick ? 100_000 : 1_000_000) || !results['psi.ids_per_core_second']) results['psi.ids_per_core_second'] = Math.round(perCore);
    table.push([`psi ${n} x ${n} ids (50% shared)`, `${seconds.toFixed(1)}s over loopback`, `${Math.round(perCore)} ids/core-s`, end.message.replace(/^\D*/, '')]);
  } finally {
    await fed.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function ledger(): Promise<void> {
  const n = quick ? 10_000 : 100_000;
  const dir = await mkdtemp(join(tmpdir(), 'fedcredit-bench-ledger-'));
  try {
    const l = await Ledger.open(join(dir, 'ledger'), 'coordinator', join(dir, 'key.pem'));
    const started = performance.now();
    for (let i = 0; i < n; i++) await l.append({ kind: 'bench', jobId: 'job-bench', body: { i, note: 'an event of realistic size with a few fields', round: i % 50 } });
    const appendSeconds = (performance.now() - started) / 1000;
    await l.close();
    const t = performance.now();
    const report = await verifyLedger(join(dir, 'ledger'));
    const verifySeconds = (performance.now() - t) / 1000;
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

const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB (${(freemem() / 2 ** 30).toFixed(0)} free), Node ${process.version}`;
console.log(`fedcredit bench${quick ? ' --quick' : ''} on ${machine}`);
// `--only a,b` runs just those scenarios (names as below); `--scale` adds the scale-up to a --quick run.
const only = args.includes('--only') ? new Set(args[args.indexOf('--only') + 1]!.split(',')) : undefined;
const scenarios: [string, () => Promise<void>][] = [
  ['vertical', verticalLr],
  ['vertical-scale', () => (!quick || args.includes('--scale') || only ? verticalScale() : Promise.resolve())],
  ['psi', async () => {
    await psi(100_000);
    if (!quick) await psi(1_000_000);
  }],
  ['horizontal', horizontal],
  ['ledger', ledger],
];
for (const [name, run] of scenarios) if (!only || only.has(name)) await run();
for (const row of table) console.log(row.join('  |  '));
await writeFile(jsonOut, JSON.stringify({ machine, quick, date: new Date().toISOString(), results }, null, 2) + '\n');
console.log(`figures written to ${jsonOut}`);
