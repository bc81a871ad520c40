/**
 * The evaluation step of vertical LR: the guest scores the held-out rows jointly, turns the scores into
 * probabilities of default with its calibration (and points, with a scorecard), and computes the aggregates of its
 * report; with a fairness section, per group of a column one party holds (which that party sends, consented to).
 */
import type { VerticalJobSpec } from '../../config/schemas.js';
import type { Scorecard } from '../../credit/scorecard.js';
import { testScoresCsv } from '../../credit/test-scores.js';
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
  const logOdds = z.map((s) => a * s + b);
  const pd = logOdds.map((t) => 1 / (1 + Math.exp(-t)));
  // With a scorecard, also the points: offset − factor·logit(pd) (the scorecard's sum, before its rounding).
  const points = card ? Array.from(logOdds, (t) => (card.offset - card.factor * t).toFixed(card.scaling.decimals)) : undefined;
  const testScores = testScoresCsv({ ids: Array.from(rows, (r) => inputs.ids[r]!), labels: y, scores: z, pd, ...(points ? { points } : {}) });
  if (rows.length === 0) return { testScores, report: { rows: 0, test_auc: null, test_ks: null } };
  // Aggregates only (deciles, confusion at the cut-off, calibration bins): the bank's report, published with the model.
  // Ranked on the log-odds: PDs of large scores round to the same float and would tie.
  const evaluation = evaluateCredit(y, pd, inputs.cutoff, logOdds);
  const fairness = await guestFairness(port, fair, { rows, groups: inputs.groups, labels: y, pd, logOdds, cutoff: inputs.cutoff });
  return { testScores, evaluation, ...(fairness ? { fairness } : {}), report: { rows: rows.length, test_auc: evaluation.auc, test_ks: evaluation.ks, evaluation, ...(fairness ? { fairness } : {}) } };
}

export async function hostEvaluate(port: PeerPort, inputs: EvaluateInputs): Promise<Record<string, unknown>> {
  const { rows, fairness: fair } = inputs;
  await hostSendsGroups(port, fair, rows, inputs.groups);
  await hostJointScores(port, inputs.model, rows, 'evaluate');
  return { rows: rows.length };
}

/**
 * The guest's fairness figures on the held-out rows (`rows` index its data; `labels`, `pd` and the `logOdds` AUC and KS rank on are theirs, in order):
 * per group of the job's fairness column, its own or sent by the party that holds it. Undefined without a fairness
 * section. Any vertical job kind's evaluation uses it.
 */
export async function guestFairness(
  port: PeerPort,
  fair: VerticalJobSpec['fairness'],
  inputs: { rows: ArrayLike<number>; groups: Record<string, string[]>; labels: Float64Array; pd: ArrayLike<number>; logOdds: ArrayLike<number>; cutoff: number },
): Promise<ReturnType<typeof fairnessByGroup> | undefined> {
  if (!fair) return undefined;
  const { rows } = inputs;
  const groups = fair.party === port.self ? Array.from(rows, (r) => inputs.groups[fair.column]![r]!) : await port.receive(fair.party, 'fairness.groups');
  if (groups.length !== rows.length) throw new FedcreditError(ErrorCode.PROTOCOL, `${fair.party} sent ${groups.length} groups for ${rows.length} held-out enterprises`, 'restart the job');
  return fairnessByGroup(fair.column, inputs.labels, inputs.pd, groups, inputs.cutoff, fair.max_gap, inputs.logOdds);
}

/** A host that holds the job's fairness column sends the group of each held-out enterprise (consented to by the job's fairness section). */
export async function hostSendsGroups(port: PeerPort, fair: VerticalJobSpec['fairness'], rows: ArrayLike<number>, groups: Record<string, string[]>): Promise<void> {
  if (!fair || fair.party !== port.self) return;
  const column = groups[fair.column]!;
  await port.send(
    port.guest,
    'fairness.groups',
    Array.from(rows, (r) => column[r]!),
  );
}
