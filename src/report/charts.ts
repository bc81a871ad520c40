/**
 * Charts for reports, rendered server-side to SVG with Vega-Lite (no browser, no network): the SVG is inlined so
 * a report is one self-contained file.
 */
import type { TopLevelSpec } from 'vega-lite';

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Loaded on the first chart, not with the CLI: every coordinator and participant process imports the report
  // commands, and Vega with Vega-Lite is a third of its start-up time.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A line chart of one or more series against a shared x axis. */
export function lineChart(title: string, xTitle: string, yTitle: string, series: Series[]): Promise<string> {
  const values = series.flatMap((s) => s.points.map((p) => ({ series: s.name, x: p.x, y: p.y })));
  return renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 480,
    height: 220,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: xTitle, axis: { tickMinStep: 1 } },
      y: { field: 'y', type: 'quantitative', title: yTitle, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  });
}

/* ---- Credit-model charts (the bank's model report). Each takes plain points, computed by the caller. ---- */

export interface XY {
  x: number;
  y: number;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
/** Goods and bads keep the same colours in every chart. */
const CLASS_COLOURS = { domain: ['goods', 'bads'], range: ['#4c78a8', '#e45756'] };
const GREY = '#888';
const fixed = (v: number, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');

/** The ROC curve of a model (false against true positive rate) with the diagonal of a random ranking. */
export function rocChart(points: XY[], auc: number): Promise<string> {
  return renderSvg({
    $schema: SCHEMA,
    title: 'ROC curve',
    width: 300,
    height: 300,
    layer: [
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: 'line', color: GREY, strokeDash: [4, 4], strokeWidth: 1 },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
      },
      {
        data: { values: points },
        mark: { type: 'line', color: CLASS_COLOURS.range[0], strokeWidth: 2 },
        encoding: {
          x: { field: 'x', type: 'quantitative', title: 'false positive rate (goods declined)', scale: { domain: [0, 1] } },
          y: { field: 'y', type: 'quantitative', title: 'true positive rate (bads declined)', scale: { domain: [0, 1] } },
        },
      },
      {
        data: { values: [{ x: 0.97, y: 0.04, text: `AUC = ${fixed(auc)}` }] },
        mark: { type: 'text', align: 'right', baseline: 'bottom', fontSize: 13, fontWeight: 'bold' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, text: { field: 'text' } },
      },
    ],
  });
}

/**
 * The Kolmogorov-Smirnov chart: cumulative share of goods and of bads at or below each threshold, with the largest
 * gap between the two (the KS statistic) drawn as a vertical bar.
 */
export function ksChart(goods: XY[], bads: XY[], gap: { x: number; goods: number; bads: number }, xTitle: string, domain?: [number, number]): Promise<string> {
  const values = [...goods.map((p) => ({ ...p, class: 'goods' })), ...bads.map((p) => ({ ...p, class: 'bads' }))];
  const ks = Math.abs(gap.goods - gap.bads);
  const mid = (gap.goods + gap.bads) / 2;
  const xs = values.map((v) => v.x);
  const [lo, hi] = domain ?? [Math.min(...xs), Math.max(...xs)];
  // Put the label on the side of the bar with more room.
  const right = gap.x < (lo + hi) / 2;
  return renderSvg({
    $schema: SCHEMA,
    title: 'Kolmogorov-Smirnov',
    width: 420,
    height: 300,
    layer: [
      {
        data: { values },
        mark: { type: 'line', strokeWidth: 2, interpolate: 'step-after', clip: true },
        encoding: {
          x: { field: 'x', type: 'quantitative', title: xTitle, scale: { zero: false, nice: false, ...(domain ? { domain } : {}) } },
          y: { field: 'y', type: 'quantitative', title: 'cumulative share at or below threshold', scale: { domain: [0, 1] } },
          color: { field: 'class', type: 'nominal', title: null, scale: CLASS_COLOURS, legend: { orient: 'top' } },
        },
      },
      {
        data: { values: [{ x: gap.x, y: gap.goods, y2: gap.bads }] },
        mark: { type: 'rule', color: '#222', strokeWidth: 2 },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, y2: { field: 'y2' } },
      },
      {
        data: { values: [{ x: gap.x, y: mid, text: `KS = ${fixed(ks)}` }] },
        mark: { type: 'text', align: right ? 'left' : 'right', dx: right ? 6 : -6, fontSize: 13, fontWeight: 'bold' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, text: { field: 'text' } },
      },
    ],
  });
}

export interface HistogramBin {
  x0: number;
  x1: number;
  /** Share of the class in this bin (each class sums to 1). */
  share: number;
  class: 'goods' | 'bads';
}

/** Overlaid histograms of goods and bads, each normalised to its own total; `marker` draws a labelled vertical line. */
export function distributionChart(bins: HistogramBin[], xTitle: string, marker?: { x: number; label: string }): Promise<string> {
  const markerLayers = marker
    ? [
        { data: { values: [marker] }, mark: { type: 'rule' as const, color: '#222', strokeDash: [5, 3] }, encoding: { x: { field: 'x', type: 'quantitative' as const } } },
        {
          data: { values: [marker] },
          mark: { type: 'text' as const, align: 'left' as const, baseline: 'top' as const, dx: 4, y: 2, fontSize: 11 },
          encoding: { x: { field: 'x', type: 'quantitative' as const }, text: { field: 'label' } },
        },
      ]
    : [];
  return renderSvg({
    $schema: SCHEMA,
    title: 'Distribution of goods and bads',
    width: 640,
    height: 260,
    layer: [
      {
        data: { values: bins },
        mark: { type: 'rect', opacity: 0.55, stroke: 'white', strokeWidth: 0.5 },
        encoding: {
          x: { field: 'x0', type: 'quantitative', title: xTitle, scale: { zero: false, nice: false } },
          x2: { field: 'x1' },
          y: { field: 'share', type: 'quantitative', title: 'share of the class', axis: { format: '.0%' } },
          y2: { datum: 0 },
          color: { field: 'class', type: 'nominal', title: null, scale: CLASS_COLOURS, legend: { orient: 'top' } },
        },
      },
      ...markerLayers,
    ],
  });
}

/** Lift by decile (bars, riskiest decile first) beside the cumulative gain curve with the random-ranking diagonal. */
export function liftGainChart(deciles: { decile: number; lift: number; cumulativeGain: number }[]): Promise<string> {
  const groups = deciles.length;
  const gain = [{ x: 0, y: 0 }, ...deciles.map((d) => ({ x: d.decile / groups, y: d.cumulativeGain }))];
  return renderSvg({
    $schema: SCHEMA,
    hconcat: [
      {
        title: 'Lift by decile',
        width: 260,
        height: 240,
        layer: [
          {
            data: { values: deciles },
            mark: { type: 'bar', color: CLASS_COLOURS.range[1] },
            encoding: {
              x: { field: 'decile', type: 'ordinal', title: 'decile (1 = riskiest)', axis: { labelAngle: 0 } },
              y: { field: 'lift', type: 'quantitative', title: 'default rate / overall rate' },
            },
          },
          { data: { values: [{ y: 1 }] }, mark: { type: 'rule', color: '#222', strokeDash: [4, 4] }, encoding: { y: { field: 'y', type: 'quantitative' } } },
        ],
      },
      {
        title: 'Cumulative gain',
        width: 260,
        height: 240,
        layer: [
          {
            data: {
              values: [
                { x: 0, y: 0 },
                { x: 1, y: 1 },
              ],
            },
            mark: { type: 'line', color: GREY, strokeDash: [4, 4], strokeWidth: 1 },
            encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
          },
          {
            data: { values: gain },
            mark: { type: 'line', point: { color: CLASS_COLOURS.range[1] }, color: CLASS_COLOURS.range[1], strokeWidth: 2 },
            encoding: {
              x: { field: 'x', type: 'quantitative', title: 'share of applicants declined (riskiest first)', axis: { format: '.0%' }, scale: { domain: [0, 1] } },
              y: { field: 'y', type: 'quantitative', title: 'share of defaults caught', axis: { format: '.0%' }, scale: { domain: [0, 1] } },
            },
          },
        ],
      },
    ],
  });
}

/** Mean predicted PD against the observed default rate per bin, with the line of perfect calibration. */
export function calibrationChart(bins: { meanPd: number; observedRate: number; count: number }[]): Promise<string> {
  const top = Math.min(1, Math.max(0.05, ...bins.map((b) => Math.max(b.meanPd, b.observedRate))) * 1.05);
  return renderSvg({
    $schema: SCHEMA,
    title: 'Calibration',
    width: 300,
    height: 300,
    layer: [
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: top, y: top },
          ],
        },
        mark: { type: 'line', color: GREY, strokeDash: [4, 4], strokeWidth: 1 },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
      },
      {
        data: { values: bins },
        mark: { type: 'line', point: { size: 45 }, color: CLASS_COLOURS.range[0], strokeWidth: 2 },
        encoding: {
          x: { field: 'meanPd', type: 'quantitative', title: 'mean predicted PD', axis: { format: '.0%' }, scale: { domain: [0, top], nice: false } },
          y: { field: 'observedRate', type: 'quantitative', title: 'observed default rate', axis: { format: '.0%' }, scale: { domain: [0, top], nice: false } },
        },
      },
    ],
  });
}

/** Information value per feature (horizontal bars, highest first), selected features coloured, strength cut-offs dashed. */
export function ivChart(rows: { feature: string; party: string; iv: number; selected: boolean }[]): Promise<string> {
  const values = rows.map((r) => ({ label: `${r.feature} (${r.party})`, iv: r.iv, status: r.selected ? 'selected' : 'not selected' }));
  return renderSvg({
    $schema: SCHEMA,
    title: 'Information value',
    width: 300,
    height: { step: 16 },
    layer: [
      {
        data: { values },
        mark: { type: 'bar' },
        encoding: {
          y: { field: 'label', type: 'nominal', title: null, sort: { field: 'iv', order: 'descending' }, axis: { labelLimit: 220 } },
          x: { field: 'iv', type: 'quantitative', title: 'information value' },
          color: { field: 'status', type: 'nominal', title: null, scale: { domain: ['selected', 'not selected'], range: ['#4c78a8', '#bab0ac'] }, legend: { orient: 'top' } },
        },
      },
      {
        data: { values: [{ x: 0.02 }, { x: 0.1 }, { x: 0.3 }] },
        mark: { type: 'rule', color: '#222', strokeDash: [3, 3], opacity: 0.6 },
        encoding: { x: { field: 'x', type: 'quantitative' } },
      },
    ],
  });
}

/** A share per feature (horizontal bars, largest first), coloured by the party that holds the feature. */
export function importanceChart(rows: { label: string; party: string; value: number }[]): Promise<string> {
  return renderSvg({
    $schema: SCHEMA,
    title: 'Gain importance',
    width: 300,
    height: { step: 16 },
    data: { values: rows },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'label', type: 'nominal', title: null, sort: { field: 'value', order: 'descending' }, axis: { labelLimit: 220 } },
      x: { field: 'value', type: 'quantitative', title: 'share of total gain', axis: { format: '%' } },
      color: { field: 'party', type: 'nominal', title: null, legend: { orient: 'top' } },
    },
  });
}
