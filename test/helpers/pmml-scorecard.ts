/**
 * An independent reader and evaluator of PMML 4.4 Scorecard models, for tests. It knows nothing of fedcredit's
 * scorecard code (it imports nothing from src/credit): it parses the XML with fast-xml-parser and follows the PMML
 * semantics, so that a test can check that what we write means what we think it means.
 *
 * Semantics implemented (https://dmg.org/pmml/v4-4/Scorecard.html):
 * - score = initialScore + Σ over Characteristics of the partialScore of the FIRST Attribute whose predicate is TRUE
 *   (no true Attribute: the record cannot be scored, an Error);
 * - predicates with three-valued logic: a comparison on a missing value is UNKNOWN, isMissing / isNotMissing are
 *   never unknown, and/or/xor propagate UNKNOWN as PMML prescribes; a value is missing when it is NaN or absent;
 * - reason codes: per selected Attribute, difference = baselineScore − partialScore (pointsBelow) or partialScore −
 *   baselineScore (pointsAbove), baselineScore from the Characteristic or else the Scorecard, reason code from the
 *   Attribute or else the Characteristic; differences summed per reason code; negative totals dropped (as JPMML
 *   does); ranked by total, largest first, ties in document order (a stable sort); as many as the Output declares
 *   reasonCode OutputFields.
 */
import { XMLParser } from 'fast-xml-parser';

type Node = Record<string, unknown>;
type Truth = boolean | null;

export interface PmmlPredicate {
  kind: 'simple' | 'compound' | 'set' | 'true' | 'false';
  field?: string;
  operator?: string;
  value?: number;
  /** SimpleSetPredicate: its Array's values. */
  values?: string[];
  booleanOperator?: string;
  children?: PmmlPredicate[];
}

export interface PmmlAttribute {
  partialScore: number;
  reasonCode: string | null;
  predicate: PmmlPredicate;
}

export interface PmmlCharacteristic {
  name: string | null;
  reasonCode: string | null;
  baselineScore: number | null;
  attributes: PmmlAttribute[];
}

export interface PmmlScorecardModel {
  /** The root element's attributes and the parsed tree, for structural checks. */
  version: string;
  xmlns: string;
  tree: Node;
  /** `values`: the DataField's Value list (valid values), when it has one. */
  dataFields: { name: string; optype: string; dataType: string; values?: string[] }[];
  miningFields: { name: string; usageType: string; invalidValueTreatment: string | null }[];
  outputFields: { name: string; feature: string; rank: number | null }[];
  scorecard: {
    modelName: string | null;
    functionName: string;
    initialScore: number;
    useReasonCodes: boolean;
    reasonCodeAlgorithm: string;
    baselineMethod: string;
    baselineScore: number | null;
  };
  characteristics: PmmlCharacteristic[];
}

const ARRAYS = new Set(['DataField', 'MiningField', 'OutputField', 'Characteristic', 'Attribute', 'SimplePredicate', 'SimpleSetPredicate', 'CompoundPredicate', 'True', 'False', 'Value']);

/** The values of a PMML string Array: space-separated, double-quoted when needed, \" and \\ escaped inside quotes. */
function arrayValues(text: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}

function number(text: unknown, what: string): number {
  if (typeof text !== 'string') throw new Error(`${what} is missing`);
  const t = text.trim();
  const x = t === 'INF' ? Number.POSITIVE_INFINITY : t === '-INF' ? Number.NEGATIVE_INFINITY : Number(t);
  if (t === '' || Number.isNaN(x)) throw new Error(`${what} is not a number: ${JSON.stringify(text)}`);
  return x;
}

function optionalNumber(text: unknown, what: string): number | null {
  return text === undefined ? null : number(text, what);
}

function str(node: Node, name: string): string | null {
  const v = node[`@_${name}`];
  return typeof v === 'string' ? v : null;
}

function children(node: Node, tag: string): Node[] {
  const v = node[tag];
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((c) => (typeof c === 'object' && c !== null ? (c as Node) : {}));
}

function only(node: Node, tag: string): Node {
  const list = children(node, tag);
  if (list.length !== 1) throw new Error(`expected one <${tag}>, found ${list.length}`);
  return list[0]!;
}

/** The predicates directly inside `node`. Mixed kinds lose their document order here, which only `surrogate` needs. */
function predicatesIn(node: Node): PmmlPredicate[] {
  const out: PmmlPredicate[] = [];
  for (const s of children(node, 'SimplePredicate')) {
    const value = str(s, 'value');
    out.push({ kind: 'simple', field: str(s, 'field') ?? '', operator: str(s, 'operator') ?? '', ...(value === null ? {} : { value: number(value, 'SimplePredicate/@value') }) });
  }
  for (const c of children(node, 'CompoundPredicate')) {
    out.push({ kind: 'compound', booleanOperator: str(c, 'booleanOperator') ?? '', children: predicatesIn(c) });
  }
  for (const p of children(node, 'SimpleSetPredicate')) {
    const array = only(p, 'Array');
    const text = typeof array['#text'] === 'string' ? array['#text'] : '';
    const values = arrayValues(text);
    if (Number(str(array, 'n')) !== values.length) throw new Error(`an Array says n=${str(array, 'n')} but holds ${values.length} values`);
    out.push({ kind: 'set', field: str(p, 'field') ?? '', booleanOperator: str(p, 'booleanOperator') ?? '', values });
  }
  for (const _ of children(node, 'True')) out.push({ kind: 'true' });
  for (const _ of children(node, 'False')) out.push({ kind: 'false' });
  return out;
}

export function readPmmlScorecard(xml: string): PmmlScorecardModel {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseAttributeValue: false,
    parseTagValue: false,
    isArray: (name, _jpath, _leaf, isAttribute) => !isAttribute && ARRAYS.has(name),
  });
  const tree = parser.parse(xml, true) as Node;
  const pmml = only(tree, 'PMML');
  const sc = only(pmml, 'Scorecard');
  const characteristics = children(only(sc, 'Characteristics'), 'Characteristic').map(
    (c): PmmlCharacteristic => ({
      name: str(c, 'name'),
      reasonCode: str(c, 'reasonCode'),
      baselineScore: optionalNumber(c['@_baselineScore'], 'Characteristic/@baselineScore'),
      attributes: children(c, 'Attribute').map((a): PmmlAttribute => {
        const predicates = predicatesIn(a);
        if (predicates.length !== 1) throw new Error(`an Attribute holds ${predicates.length} predicates; it must hold one`);
        return { partialScore: number(a['@_partialScore'], 'Attribute/@partialScore'), reasonCode: str(a, 'reasonCode'), predicate: predicates[0]! };
      }),
    }),
  );
  const output = children(sc, 'Output')[0];
  return {
    version: str(pmml, 'version') ?? '',
    xmlns: str(pmml, 'xmlns') ?? '',
    tree,
    dataFields: children(only(pmml, 'DataDictionary'), 'DataField').map((f) => {
      const values = children(f, 'Value').map((v) => str(v, 'value') ?? '');
      return { name: str(f, 'name') ?? '', optype: str(f, 'optype') ?? '', dataType: str(f, 'dataType') ?? '', ...(values.length > 0 ? { values } : {}) };
    }),
    miningFields: children(only(sc, 'MiningSchema'), 'MiningField').map((f) => ({
      name: str(f, 'name') ?? '',
      usageType: str(f, 'usageType') ?? 'active',
      invalidValueTreatment: str(f, 'invalidValueTreatment'),
    })),
    outputFields: output
      ? children(output, 'OutputField').map((f) => ({ name: str(f, 'name') ?? '', feature: str(f, 'feature') ?? 'predictedValue', rank: optionalNumber(f['@_rank'], 'OutputField/@rank') }))
      : [],
    scorecard: {
      modelName: str(sc, 'modelName'),
      functionName: str(sc, 'functionName') ?? '',
      initialScore: optionalNumber(sc['@_initialScore'], 'Scorecard/@initialScore') ?? 0,
      useReasonCodes: (str(sc, 'useReasonCodes') ?? 'true') === 'true',
      reasonCodeAlgorithm: str(sc, 'reasonCodeAlgorithm') ?? 'pointsBelow',
      baselineMethod: str(sc, 'baselineMethod') ?? 'other',
      baselineScore: optionalNumber(sc['@_baselineScore'], 'Scorecard/@baselineScore'),
    },
    characteristics,
  };
}

type PmmlRecord = Record<string, number | string | undefined>;

function evaluatePredicate(p: PmmlPredicate, record: PmmlRecord): Truth {
  switch (p.kind) {
    case 'true':
      return true;
    case 'false':
      return false;
    case 'set': {
      const raw = record[p.field!];
      if (raw === undefined || (typeof raw === 'number' && Number.isNaN(raw))) return null;
      const inSet = p.values!.includes(String(raw));
      if (p.booleanOperator === 'isIn') return inSet;
      if (p.booleanOperator === 'isNotIn') return !inSet;
      throw new Error(`SimpleSetPredicate booleanOperator ${p.booleanOperator} is not supported`);
    }
    case 'simple': {
      const raw = record[p.field!];
      const missing = raw === undefined || (typeof raw === 'number' && Number.isNaN(raw));
      if (p.operator === 'isMissing') return missing;
      if (p.operator === 'isNotMissing') return !missing;
      if (missing) return null;
      if (typeof raw !== 'number') throw new Error(`SimplePredicate ${p.operator} on ${p.field} compares a number with ${JSON.stringify(raw)}`);
      const x = raw;
      const v = p.value;
      if (v === undefined) throw new Error(`SimplePredicate ${p.operator} on ${p.field} has no value`);
      switch (p.operator) {
        case 'equal':
          return x === v;
        case 'notEqual':
          return x !== v;
        case 'lessThan':
          return x < v;
        case 'lessOrEqual':
          return x <= v;
        case 'greaterThan':
          return x > v;
        case 'greaterOrEqual':
          return x >= v;
        default:
          throw new Error(`unknown SimplePredicate operator ${p.operator}`);
      }
    }
    case 'compound': {
      const values = p.children!.map((c) => evaluatePredicate(c, record));
      switch (p.booleanOperator) {
        case 'and':
          if (values.includes(false)) return false;
          return values.includes(null) ? null : true;
        case 'or':
          if (values.includes(true)) return true;
          return values.includes(null) ? null : false;
        case 'xor':
          if (values.includes(null)) return null;
          return values.filter((v) => v).length % 2 === 1;
        default:
          throw new Error(`CompoundPredicate booleanOperator ${p.booleanOperator} is not supported by this test evaluator`);
      }
    }
  }
}

/** Score and reason codes of one record ({field: value}; NaN or absent = missing). A value outside a DataField's
 * Value list, where the MiningField says returnInvalid, is an Error (the record is invalid). */
export function evaluatePmmlScorecard(model: PmmlScorecardModel, record: PmmlRecord): { score: number; reasonCodes: string[] } {
  const sc = model.scorecard;
  for (const f of model.dataFields) {
    const raw = record[f.name];
    const invalid = f.values && raw !== undefined && !(typeof raw === 'number' && Number.isNaN(raw)) && !f.values.includes(String(raw));
    if (invalid && model.miningFields.find((m) => m.name === f.name)?.invalidValueTreatment === 'returnInvalid')
      throw new Error(`${f.name}: ${JSON.stringify(raw)} is not a valid value: the record is invalid`);
  }
  let score = sc.initialScore;
  const reasonPoints = new Map<string, number>();
  for (const c of model.characteristics) {
    const hit = c.attributes.find((a) => evaluatePredicate(a.predicate, record) === true);
    if (!hit) throw new Error(`no Attribute of Characteristic ${c.name ?? '?'} is true: the record cannot be scored`);
    score += hit.partialScore;
    if (!sc.useReasonCodes) continue;
    const baseline = c.baselineScore ?? sc.baselineScore;
    const code = hit.reasonCode ?? c.reasonCode;
    if (baseline === null || code === null) throw new Error(`Characteristic ${c.name ?? '?'} lacks a baselineScore or reasonCode`);
    const difference = sc.reasonCodeAlgorithm === 'pointsAbove' ? hit.partialScore - baseline : baseline - hit.partialScore;
    reasonPoints.set(code, (reasonPoints.get(code) ?? 0) + difference);
  }
  const wanted = model.outputFields.filter((f) => f.feature === 'reasonCode').length;
  const reasonCodes = [...reasonPoints.entries()]
    .filter(([, points]) => points >= 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, wanted)
    .map(([code]) => code);
  return { score, reasonCodes };
}
