/**
 * The evaluation step of vertical LR: the guest scores the held-out rows jointly, turns the scores into
 * probabilities of default with its calibration (and points, with a scorecard), and computes the aggregates of its
 * report; with a fairness section, per group of a column one party holds (which that party sends, consented to).
 */
import type { VerticalJobSpec } from '../../config/schemas.js';
import type { Scorecard } from '../../credit/scorecard.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import { evaluateCredit, fairnessByGroup } from '../../evaluation.js';
import type { PartyModel } from '../party-model.js';
import type { PeerPort } from './port.js';
import type { TrainingState } from './state.js';
import { guestJointScores, hostJointScores } from './validate.js';

export interface EvaluateInputs {
  model: PartyModel;
  /** The aligned held-out rows. */
  rows: Uint32Array;
  fairness?: VerticalJobSpec['fairness'];
  /** Group of each dataset row, by group column (the party's data.group_columns). */
  groups: Record<string, string[]>;
}

export interface GuestEvaluation {
  /** The guest's own record of the held-out scores (never sent): test-scores.csv. */
  testScores: string;
  report: Record<string, unknown>;
  /** The aggregates for the model report (absent with no held-out rows). */
  evaluation?: ReturnType<typeof evaluateCredit>;
  fairness?: ReturnType<typeof fairnessByGroup>;
}

export async function guestEvaluate(
  state: TrainingState,
  port: PeerPort,
  inputs: EvaluateInputs & { labels: Float64Array; ids: readonly string[]; cutoff: number; scorecard?: Scorecard },
): Promise<GuestEvaluation> {
  const { rows, fairness: fair, labels: y, scorecard: card } = inputs;
  const z = await guestJointScores(port, inputs.model, rows);
  const { a, b } = state.calibration!;
  const pd = z.map((s) => 1 / (1 + Math.exp(-(a * s + b))));
  // With a scorecard, also the points: offset − factor·logit(pd) (the scorecard's sum, before its rounding).
  const points = card ? (i: number) => `,${(card.offset - card.factor * (a * z[i]! + b)).toFixed(card.scaling.decimals)}` : () => '';
  const lines = [`enterprise_id,default_12m,score,pd${card ? ',points' : ''}`];
  rows.forEach((r, i) => lines.push(`${inputs.ids[r]},${y[i]},${z[i]!.toFixed(8)},${pd[i]!.toFixed(8)}${points(i)}`));
  const testScores = lines.join('\n') + '\n';
  if (rows.length === 0) return { testScores, report: { rows: 0, test_auc: null, test_ks: null } };
  // Aggregates only (deciles, confusion at the cut-off, calibration bins): the bank's report, published with the model.
  const evaluation = evaluateCredit(y, pd, inputs.cutoff);
  let fairness: ReturnType<typeof fairnessByGroup> | undefined;
  if (fair) {
    const groups = fair.party === port.self ? Array.from(rows, (r) => inputs.groups[fair.column]![r]!) : await port.receive(fair.party, 'fairness.groups');
    if (groups.length !== rows.length) throw new FedcreditError(ErrorCode.PROTOCOL, `${fair.party} sent ${groups.length} groups for ${rows.length} held-out enterprises`, 'restart the job');
    fairness = fairnessByGroup(fair.column, y, pd, groups, inputs.cutoff, fair.max_gap);
  }
  return { testScores, evaluation, ...(fairness ? { fairness } : {}), report: { rows: rows.length, test_auc: evaluation.auc, test_ks: evaluation.ks, evaluation, ...(fairness ? { fairness } : {}) } };
}

export async function hostEvaluate(port: PeerPort, inputs: EvaluateInputs): Promise<Record<string, unknown>> {
  const { rows, fairness: fair } = inputs;
  if (fair && fair.party === port.self) {
    // The group of each held-out enterprise, for the guest's per-group figures (the job's fairness section, consented to).
    const groups = inputs.groups[fair.column]!;
    await port.send(
      port.guest,
      'fairness.groups',
      Array.from(rows, (r) => groups[r]!),
    );
  }
  await hostJointScores(port, inputs.model, rows, 'evaluate');
  return { rows: rows.length };
}
