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
await horizontal();
await ledger();
for (const row of table) console.log(row.join('  |  '));
await writeFile(jsonOut, JSON.stringify({ machine, quick, date: new Date().toISOString(), results }, null, 2) + '\n');
console.log(`figures written to ${jsonOut}`);
