/**
 * Job progress for people: a progress bar over training rounds on a terminal, plain lines elsewhere (logs, CI,
 * pipes). Both show round k of n, the participants in the round, training loss, validation AUC and seconds. A
 * vertical epoch has no training loss (no party sees the whole model's loss): its lines show the validation AUC alone.
 */
import cliProgress from 'cli-progress';
import type { JobEvent } from '../wire/messages.js';

export interface ProgressRenderer {
  onEvent(e: JobEvent): void;
  stop(): void;
}

const fixed4 = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : '-');

/** Vertical jobs report epochs, which carry no training loss. */
const hasLoss = (p: NonNullable<JobEvent['progress']>) => p.unit !== 'epoch';

function roundLine(e: JobEvent): string {
  const p = e.progress!;
  const dropped = p.dropped.length ? `  dropped: ${p.dropped.join('; ')}` : '';
  const loss = hasLoss(p) ? `  loss ${fixed4(p.trainLoss)}` : '';
  return `${p.unit || 'round'} ${p.round}/${p.rounds}  participants ${p.participants.length} (${p.participants.join(', ')})${loss}  val AUC ${fixed4(p.validationAuc)}  ${p.seconds.toFixed(1)}s${dropped}`;
}

export function createProgressRenderer(out: NodeJS.WriteStream = process.stdout): ProgressRenderer {
  if (!out.isTTY) {
    return {
      onEvent: (e) => out.write(`[${e.state}] ${e.progress ? roundLine(e) : `${e.stage}: ${e.message}`}\n`),
      stop: () => undefined,
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  return {
    onEvent: (e) => {
      if (e.progress) {
        const p = e.progress;
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              format: `training [{bar}] ${p.unit || 'round'} {value}/{total} | {n} participants | ${hasLoss(p) ? 'loss {loss} | ' : ''}val AUC {auc} | {secs}s/${p.unit || 'round'}`,
              stream: out,
              hideCursor: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.rounds, 0, { n: 0, loss: '-', auc: '-', secs: '-' });
        }
        bar.update(p.round, { n: p.participants.length, loss: fixed4(p.trainLoss), auc: fixed4(p.validationAuc), secs: p.seconds.toFixed(1) });
        if (p.dropped.length) {
          bar.stop();
          out.write(`  dropped in round ${p.round}: ${p.dropped.join('; ')}\n`);
          bar = undefined;
        }
        return;
      }
      if (bar) {
        bar.stop();
        bar = undefined;
      }
      out.write(`${e.stage}: ${e.message}\n`);
    },
    stop: () => bar?.stop(),
  };
}
