/**
 * `fedcredit demo`: the vertical federation (bank, tax bureau, power company, platform) by default (a logistic
 * regression, or trees with --model gbdt), or the horizontal one (three banks) with --mode horizontal. Writes summary.json with the figures of the run under
 * `vertical` or `horizontal`.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runHorizontalDemo, type HorizontalSummary } from './horizontal.js';
import { runVerticalDemo, type VerticalSummary } from './vertical.js';
import { ErrorCode, FedcreditError } from '../../errors.js';

export interface DemoRunOptions {
  mode: 'vertical' | 'horizontal';
  out: string;
  rounds: number;
  epochs: number;
  /** Horizontal: logistic or mlp; vertical: logistic or gbdt. */
  model: 'logistic' | 'mlp' | 'gbdt';
  /** Vertical gbdt: the trees to grow. */
  trees: number;
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
  const { mode, model } = opts;
  if (mode === 'vertical' && model === 'mlp')
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      'the vertical demo trains a logistic regression or gradient-boosted trees, not an mlp',
      'use --model logistic or --model gbdt (or --mode horizontal --model mlp)',
    );
  if (model === 'gbdt' && opts.plaintext)
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, 'the trees have no plaintext mode: the guest always encrypts its gradients under its own CKKS key', 'leave out --plaintext with --model gbdt');
  if (mode === 'horizontal' && model === 'gbdt')
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, 'the horizontal demo trains a logistic regression or an mlp, not trees', 'use --model gbdt with the vertical demo (the default --mode)');
  const summary: DemoSummary =
    mode === 'vertical'
      ? { mode, vertical: await runVerticalDemo({ out: opts.out, model: model === 'gbdt' ? 'gbdt' : 'logistic', epochs: opts.epochs, trees: opts.trees, plaintext: opts.plaintext, seed: opts.seed }) }
      : { mode, horizontal: await runHorizontalDemo({ out: opts.out, rounds: opts.rounds, model: model === 'mlp' ? 'mlp' : 'logistic', plaintext: opts.plaintext, seed: opts.seed }) };
  await writeFile(join(opts.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  process.stdout.write(`summary: ${join(opts.out, 'summary.json')}\nfinished in ${((Date.now() - started) / 1000).toFixed(0)}s\n`);
  return summary;
}
