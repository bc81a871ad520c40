/**
 * A fedcredit scorecard as a PMML 4.4 Scorecard model (https://dmg.org/pmml/v4-4/Scorecard.html), so that any PMML
 * engine scores an application exactly as `scoreRecord` does and gives the same reason codes.
 *
 * Layout: one continuous double DataField and active MiningField per numeric feature (missing values reach the
 * predicates as missing; invalid ones are kept as they are), one categorical string DataField per categorical
 * feature, an Output with the score and reason codes of rank 1 … k, and one Characteristic per feature, in the card's
 * order. Its Attributes are, in order: the missing bin (isMissing), then each special value (equal), then the
 * numeric bins ascending (lessOrEqual upper; greaterThan lower AND lessOrEqual upper; greaterThan lower), so the
 * first true Attribute is the bin `binIndex` picks. A categorical feature's Attributes after the missing one are its
 * bins (SimpleSetPredicate isIn the bin's levels), then the unseen treatment: a last Attribute <True/> with 0 points
 * (neutral) or the points of the named level's bin; for `reject`, the DataField lists the levels seen in training
 * and the MiningField returns invalid for any other (invalidValueTreatment="returnInvalid").
 * partialScore = the bin's points and initialScore = basePoints.
 *
 * An enterprise a party does not hold (vertical scoring): with `notHeldParties`, one more DataField per such party,
 * `not_held_by_<party>` (1 when the party holds no record of the enterprise), and each of its features' first
 * Attribute scores notHeldPoints when it is 1, as fedcredit's scoring does; left out or missing, the party is taken
 * to hold the record. fedcredit never gives such a feature as a reason; a PMML engine ranks it like any other.
 *
 * Reason codes: reasonCodeAlgorithm="pointsBelow" with baselineMethod="max"; each Characteristic's baselineScore is
 * the highest points of its bins (the card's baselineScore) and its reasonCode is the feature name, so the engine
 * ranks features by baseline − points, as `reasonCodes` does. Characteristics follow the card's order (by feature
 * name), which is also how engines that sort stably break ties.
 */
import type { Scorecard } from './scorecard.js';

/** Characters XML 1.0 cannot carry at all (controls other than tab, LF and CR; lone surrogates; U+FFFE/U+FFFF). */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** Text for an attribute value in double quotes. Tab, LF and CR are written as character references so that
 * attribute-value normalisation does not turn them into spaces. */
function attr(value: string): string {
  if (NOT_XML.test(value)) throw new RangeError(`${JSON.stringify(value)} holds a character XML cannot represent`);
  return value.replace(/[&<>"'\t\n\r]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&apos;';
      default:
        return `&#${c.charCodeAt(0)};`;
    }
  });
}

/** A double in xs:double form: the shortest string that reads back to the same double, INF / -INF for infinities. */
function num(x: number): string {
  if (Number.isNaN(x)) throw new RangeError('a scorecard number is NaN and cannot be written to PMML');
  if (x === Number.POSITIVE_INFINITY) return 'INF';
  if (x === Number.NEGATIVE_INFINITY) return '-INF';
  return String(x);
}

/** The PMML field that says a party holds no record of the enterprise. */
export const notHeldField = (party: string): string => `not_held_by_${party}`;

export function scorecardToPmml(card: Scorecard, opts: { modelName?: string; reasonCodes?: number; notHeldParties?: string[] } = {}): string {
  const k = opts.reasonCodes ?? 3;
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`reasonCodes must be an integer ≥ 0, got ${k}`);
  if (card.features.length === 0) throw new RangeError('a scorecard without features cannot be written to PMML (it needs one Characteristic or more)');
  const modelName = opts.modelName ?? 'fedcredit-scorecard';
  const s = card.scaling;
  const lines: string[] = [];
  const out = (depth: number, text: string) => lines.push(`${'  '.repeat(depth)}${text}`);

  out(0, '<?xml version="1.0" encoding="UTF-8"?>');
  out(0, '<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">');
  out(1, `<Header description="${attr(`fedcredit points scorecard: ${s.baseScore} points at odds ${s.baseOdds}:1, ${s.pdo} points to double the odds`)}">`);
  out(2, '<Application name="fedcredit"/>');
  out(1, '</Header>');
  const notHeldParties = (opts.notHeldParties ?? []).filter((p) => card.features.some((f) => f.party === p));
  out(1, `<DataDictionary numberOfFields="${card.features.length + notHeldParties.length}">`);
  const levelsOf = (f: Scorecard['features'][number]) => f.bins.flatMap((b) => b.categories ?? []);
  const categorical = (f: Scorecard['features'][number]) => f.bins.some((b) => b.categories);
  for (const f of card.features) {
    if (!categorical(f)) {
      out(2, `<DataField name="${attr(f.feature)}" optype="continuous" dataType="double"/>`);
    } else if (f.unseen === 'reject') {
      out(2, `<DataField name="${attr(f.feature)}" optype="categorical" dataType="string">`);
      for (const level of levelsOf(f)) out(3, `<Value value="${attr(level)}"/>`);
      out(2, '</DataField>');
    } else {
      out(2, `<DataField name="${attr(f.feature)}" optype="categorical" dataType="string"/>`);
    }
  }
  for (const p of notHeldParties) out(2, `<DataField name="${attr(notHeldField(p))}" optype="categorical" dataType="integer"/>`);
  out(1, '</DataDictionary>');
  out(
    1,
    `<Scorecard modelName="${attr(modelName)}" functionName="regression" algorithmName="${attr('logistic regression on WOE')}" initialScore="${num(card.basePoints)}" useReasonCodes="true" reasonCodeAlgorithm="pointsBelow" baselineMethod="max">`,
  );
  out(2, '<MiningSchema>');
  for (const f of card.features) out(3, `<MiningField name="${attr(f.feature)}" usageType="active" invalidValueTreatment="${categorical(f) && f.unseen === 'reject' ? 'returnInvalid' : 'asIs'}"/>`);
  for (const p of notHeldParties) out(3, `<MiningField name="${attr(notHeldField(p))}" usageType="active" invalidValueTreatment="asIs"/>`);
  out(2, '</MiningSchema>');
  out(2, '<Output>');
  out(3, '<OutputField name="score" feature="predictedValue" dataType="double" optype="continuous"/>');
  for (let r = 1; r <= k; r++) out(3, `<OutputField name="reasonCode${r}" feature="reasonCode" rank="${r}" dataType="string" optype="categorical"/>`);
  out(2, '</Output>');
  out(2, '<Characteristics>');
  for (const f of card.features) {
    const field = attr(f.feature);
    out(3, `<Characteristic name="${attr(`${f.feature} points`)}" reasonCode="${field}" baselineScore="${num(f.baselineScore)}">`);
    if (notHeldParties.includes(f.party)) {
      out(4, `<Attribute partialScore="${num(f.notHeldPoints ?? 0)}">`);
      out(5, `<SimplePredicate field="${attr(notHeldField(f.party))}" operator="equal" value="1"/>`);
      out(4, '</Attribute>');
    }
    const missing = f.bins[f.bins.length - 1]!;
    out(4, `<Attribute partialScore="${num(missing.points)}">`);
    out(5, `<SimplePredicate field="${field}" operator="isMissing"/>`);
    out(4, '</Attribute>');
    for (const b of f.bins.slice(0, -1).filter((x) => x.special !== undefined)) {
      out(4, `<Attribute partialScore="${num(b.points)}">`);
      out(5, `<SimplePredicate field="${field}" operator="equal" value="${num(b.special!)}"/>`);
      out(4, '</Attribute>');
    }
    for (const b of f.bins.slice(0, -1).filter((x) => x.special === undefined)) {
      out(4, `<Attribute partialScore="${num(b.points)}">`);
      if (b.categories) {
        out(5, `<SimpleSetPredicate field="${field}" booleanOperator="isIn">`);
        out(6, `<Array n="${b.categories.length}" type="string">${b.categories.map((c) => `"${attr(c.replace(/\\/g, '\\\\').replace(/"/g, '\\"'))}"`).join(' ')}</Array>`);
        out(5, '</SimpleSetPredicate>');
      } else if (b.lower === null && b.upper === null) out(5, '<True/>');
      else if (b.lower === null) out(5, `<SimplePredicate field="${field}" operator="lessOrEqual" value="${num(b.upper!)}"/>`);
      else if (b.upper === null) out(5, `<SimplePredicate field="${field}" operator="greaterThan" value="${num(b.lower)}"/>`);
      else {
        out(5, '<CompoundPredicate booleanOperator="and">');
        out(6, `<SimplePredicate field="${field}" operator="greaterThan" value="${num(b.lower)}"/>`);
        out(6, `<SimplePredicate field="${field}" operator="lessOrEqual" value="${num(b.upper)}"/>`);
        out(5, '</CompoundPredicate>');
      }
      out(4, '</Attribute>');
    }
    if (categorical(f) && f.unseen !== 'reject') {
      // A level seen in no bin: neutral (0 points) or the bin of the level the job named.
      const target = f.unseen && f.unseen !== 'neutral' ? f.bins.find((b) => b.categories?.includes(f.unseen!)) : undefined;
      out(4, `<Attribute partialScore="${num(target ? target.points : 0)}">`);
      out(5, '<True/>');
      out(4, '</Attribute>');
    }
    out(3, '</Characteristic>');
  }
  out(2, '</Characteristics>');
  out(1, '</Scorecard>');
  out(0, '</PMML>');
  return `${lines.join('\n')}\n`;
}
