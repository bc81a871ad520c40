/**
 * `fedcredit demo`: the vertical federation (bank, tax bureau, power company, platform) by default, or the
 * horizontal one (three banks) with --mode horizontal. Writes summary.json with the figures of the run under
 * `vertical` or `horizontal`.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runHorizontalDemo, type HorizontalSummary } from './horizontal.js';
import { runVerticalDemo, type VerticalSummary } from './vertical.js';

export interface DemoRunOptions {
  mode: 'vertical' | 'horizontal';
  out: string;
  rounds: number;
  epochs: number;
  model: 'logistic' | 'mlp';
  plaintext: boolean;
  seed: number;
}

export interface DemoSummary {
  mode: 'vertical' | 'horizontal';
  vertical?: VerticalSummary;
  horizontal?: HorizontalSummary;
}

export async function runDemo(opts: DemoRunOptions): Promise<DemoSummary> {
  const started = Date.now();
  const summary: DemoSummary =
    opts.mode === 'vertical'
      ? { mode: 'vertical', vertical: await runVerticalDemo({ out: opts.out, epochs: opts.epochs, plaintext: opts.plaintext, seed: opts.seed }) }
      : { mode: 'horizontal', horizontal: await runHorizontalDemo({ out: opts.out, rounds: opts.rounds, model: opts.model, plaintext: opts.plaintext, seed: opts.seed }) };
  await writeFile(join(opts.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  process.stdout.write(`summary: ${join(opts.out, 'summary.json')}\nfinished in ${((Date.now() - started) / 1000).toFixed(0)}s\n`);
  return summary;
}
