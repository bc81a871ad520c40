/**
 * `node dist/bench/large-csv.js [GB]`: write a CSV of about GB gigabytes (default 2; 20 numeric features, an id and
 * a label) to the temp folder, load it through the participant's loader, and report rows, seconds and peak RSS.
 * Shows the file is streamed: peak memory is what the parsed float32 rows need, never the file's text.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '../src/data/csv.js';
import { Rng } from '../src/random.js';

const gigabytes = Number(process.argv[2] ?? 2);
const features = Array.from({ length: 20 }, (_, i) => `f${i}`);
const dir = await mkdtemp(join(tmpdir(), 'fedcredit-large-csv-'));
const file = join(dir, 'large.csv');
try {
  const out = createWriteStream(file);
  out.write(['id', 'y', ...features].join(',') + '\n');
  const rng = new Rng(1);
  let bytes = 0;
  let rows = 0;
  while (bytes < gigabytes * 2 ** 30) {
    let chunk = '';
    for (let k = 0; k < 1000; k++, rows++) chunk += `E${rows},${rng.bernoulli(0.2) ? 1 : 0},${features.map(() => rng.normal(0, 1000).toFixed(4)).join(',')}\n`;
    bytes += chunk.length;
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(r));
  const size = (await stat(file)).size;
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 200);
  const started = performance.now();
  const data = await loadDataset({
    path: file,
    delimiter: ',',
    id_column: 'id',
    label_column: 'y',
    features: features.map((name) => ({ name, type: 'number', missing: 'impute' })),
    duplicate_ids: 'reject',
    missing_values: [''],
  });
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  const floatBytes = data.x.byteLength + (data.y?.byteLength ?? 0);
  console.log(
    `file ${(size / 2 ** 30).toFixed(2)} GiB, ${data.rows} rows x ${features.length} features loaded in ${seconds.toFixed(1)} s ` +
      `(${Math.round(data.rows / seconds)} rows/s); peak RSS ${(peak / 2 ** 30).toFixed(2)} GiB, of which parsed float32 rows ${(floatBytes / 2 ** 30).toFixed(2)} GiB`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
