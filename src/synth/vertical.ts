/**
 * Synthetic data for vertical federation: four data owners hold different columns about partly overlapping sets
 * of the same small enterprises, keyed by the unified social credit code. Everything is made up by a seeded
 * generator on top of the latent enterprise model of ./sme.ts; see examples/synthetic-data.md.
 *
 *  - bank (guest): its labelled loan book, with the bank columns of the horizontal view;
 *  - tax bureau: VAT invoice figures, tax credit grade, tax arrears;
 *  - power company: electricity use, trend, volatility, bill arrears, contracted capacity and load factor;
 *  - platform (e-commerce / payments): GMV, its trend, refunds, active months, merchant rating.
 *
 * Every enterprise gets one latent monthly sales path for the 12 months before the loan (true revenue, true growth,
 * recent momentum, seasonality, and a stall when trading has nearly stopped). Invoices, electricity and GMV are
 * three noisy lenses on that one path, which is why they carry what the bank cannot see: the true (not declared)
 * growth, the recent momentum, and the early part of the loan-year shock (`Enterprise.shock`, e.g. the main
 * customer leaving), which is already bending sales down when the bank reads a credit file that does not show it
 * yet. Health and tax compliance show through bill arrears, tax grade, tax arrears, late filings, cancelled
 * invoices, refunds and ratings. No feature reads the default outcome or its probability.
 *
 * Deterministic for a seed (byte-identical files). 12,000 bank rows (~95k rows, ~5 MB over the four files) take
 * about a second.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CsvDatasetSpec, FeatureSpec } from '../data/schema.js';
import { Rng, seededShuffle } from '../random.js';
import { BANK_COLUMNS, generateEnterprises, ID_COLUMN, LABEL_COLUMN, POPULATION_PROFILE, type Enterprise, type IndustryCode, type PortfolioProfile } from './sme.js';

export const VERTICAL_PARTIES = ['bank', 'tax-bureau', 'power-company', 'platform'] as const;
export type VerticalParty = (typeof VERTICAL_PARTIES)[number];

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

// ---------------------------------------------------------------------------------------------------------------
// Population and coverage
// ---------------------------------------------------------------------------------------------------------------

/**
 * The bank's loan book: a nationwide bank's inclusive-finance SME lending, drawn from the same population as the
 * other parties' enterprises. Applicants are slightly larger and slightly weaker than the population (firms that
 * need credit); underwriting rejects more than one overdue episode in 24 months and declared debt-to-assets above
 * 0.9, so the book's credit files are cleaner than the applicants' and its remaining risk harder to see.
 */
export const VERTICAL_BANK_PROFILE: PortfolioProfile = {
  ...POPULATION_PROFILE,
  name: 'vertical-bank',
  sizeShift: 0.1,
  healthShift: -0.15,
  individualShare: 0.2,
  screening: { maxOverdue24m: 1, maxDebtToAssets: 0.9 },
};

/** Enterprises outside the bank's book that the other parties hold, per bank row (before coverage). */
const OTHERS_PER_BANK_ROW = 2;

/** Share of an industry's firms with their own electricity account (no shared office or landlord's meter). */
const POWER_COVER: Readonly<Record<IndustryCode, number>> = { A: 0.88, C: 0.97, E: 0.72, F: 0.86, G: 0.86, H: 0.95, I: 0.62, L: 0.66 };

/**
 * Which parties hold an enterprise (besides the bank, which holds exactly its book):
 *  - tax bureau: VAT invoice data for almost every enterprise; individual businesses taxed at a fixed quota
 *    (定期定额) issue few invoices and are often absent;
 *  - power company: firms with their own meter, which depends on the industry (offices share meters);
 *  - platform: online sellers and merchants that take payments through it, the more the larger the online share.
 */
function coverage(e: Enterprise, rng: Rng): { tax: boolean; power: boolean; platform: boolean } {
  const tax = rng.bernoulli(e.kind === 'individual' ? 0.72 : 0.95);
  const power = rng.bernoulli(POWER_COVER[e.industry] * (e.employees < 10 ? 0.93 : 1));
  const platform = rng.bernoulli(sigmoid(0.45 + 1.3 * Math.log(Math.max(e.onlineShare, 1e-3) / 0.15)));
  return { tax, power, platform };
}

// ---------------------------------------------------------------------------------------------------------------
// Latent monthly activity: the one path every party observes through its own lens
// ---------------------------------------------------------------------------------------------------------------

const MONTHS = 12;

/** Amplitude of the seasonal cycle of sales (log scale): harvests, tourism, winter on building sites. */
const SEASONALITY: Readonly<Record<IndustryCode, number>> = { A: 0.3, C: 0.05, E: 0.15, F: 0.08, G: 0.06, H: 0.18, I: 0.03, L: 0.04 };

/** Log-scale effect of one standard deviation of momentum on sales at the end of the 12 months. */
const MOMENTUM_SLOPE = 0.22;

/**
 * Correlation between `trouble`, the part of the loan-year shock already under way before the loan, and the whole
 * shock (`Enterprise.shock`). Trouble bends the last months' sales down, makes stalls likelier and shows in bill and
 * tax arrears, refunds and cancelled invoices. The bank's credit file does not show it yet.
 */
const EARLY_SHOCK = 0.9;
/** How much one standard deviation of trouble lowers recent momentum (in momentum standard deviations). */
const TROUBLE_MOMENTUM = 2;

interface Activity {
  /** True sales per month (10k CNY), months 0..11 with 11 the month before the loan; 0 before registration. */
  sales: Float64Array;
  /** First month the enterprise existed in (0 unless it is less than a year old). */
  firstMonth: number;
  /** Months at the end of the window in which trading has nearly stopped (0 = none). */
  stalled: number;
  /** Standardised early part of the loan-year shock (see EARLY_SHOCK). */
  trouble: number;
}

function drawActivity(e: Enterprise, rng: Rng): Activity {
  const firstMonth = clamp(MONTHS - Math.max(1, Math.floor(e.yearsInBusiness * 12)), 0, MONTHS - 1);
  const trouble = (EARLY_SHOCK * e.shock) / 0.95 + rng.normal(0, Math.sqrt(1 - EARLY_SHOCK ** 2)); // the shock's sd is 0.95
  const recentMomentum = e.momentum - TROUBLE_MOMENTUM * trouble;
  const trend = Math.log(1 + e.revenueGrowth) / 12;
  const amp = SEASONALITY[e.industry];
  const phase = rng.uniform(0, 2 * Math.PI); // loans start in every month of the year
  const noise = 0.08 + 0.06 * Math.max(0, -e.health);
  const raw = new Float64Array(MONTHS);
  let total = 0;
  for (let t = 0; t < MONTHS; t++) {
    const logS = trend * (t - 5.5) + MOMENTUM_SLOPE * recentMomentum * (Math.max(0, t - 5) / 6) + amp * Math.sin((2 * Math.PI * t) / 12 + phase) + rng.normal(0, noise);
    const level = Math.exp(logS);
    raw[t] = level;
    total += level;
  }
  // A stall: orders dried up, the workshop idles. Mostly distressed firms losing momentum.
  const stalled = rng.bernoulli(sigmoid(-3.8 - 1.0 * e.health - 0.7 * e.momentum + 1.0 * trouble)) ? Math.min(6, 1 + rng.poisson(1.2)) : 0;
  const stallLevel = Math.exp(rng.normal(Math.log(0.12), 0.5));
  const sales = new Float64Array(MONTHS);
  for (let t = 0; t < MONTHS; t++) {
    if (t < firstMonth) continue;
    sales[t] = ((e.revenue10k * raw[t]!) / total) * (t >= MONTHS - stalled ? stallLevel : 1);
  }
  return { sales, firstMonth, stalled, trouble };
}

/** A Poisson count: exact for small rates (where zero counts matter), the normal approximation above 12 (faster). */
function count(rng: Rng, lambda: number): number {
  return lambda <= 12 ? rng.poisson(lambda) : Math.max(0, Math.round(rng.normal(lambda, Math.sqrt(lambda))));
}

/** Last 6 months over the 6 before, minus 1; NaN unless the enterprise existed all 12 months with activity in the first 6. */
function halfYearGrowth(series: ArrayLike<number>, firstMonth: number): number {
  if (firstMonth > 0) return Number.NaN;
  let prior = 0;
  let recent = 0;
  for (let t = 0; t < 6; t++) prior += series[t]!;
  for (let t = 6; t < 12; t++) recent += series[t]!;
  return prior > 0 ? clamp(recent / prior - 1, -1, 5) : Number.NaN;
}

// ---------------------------------------------------------------------------------------------------------------
// Party columns
// ---------------------------------------------------------------------------------------------------------------

interface Column {
  name: string;
  type: FeatureSpec['type'];
  /** Decimal places written. */
  digits: number;
  /** Probability a present value is blanked (x1.5 for micro firms, whose records are thinner). */
  missingRate: number;
  /** The value can also be structurally absent (NaN), e.g. a growth rate of a firm younger than a year. */
  structural?: boolean;
}

const TAX_COLUMNS: readonly Column[] = [
  { name: 'invoiced_sales_12m_10k', type: 'number', digits: 1, missingRate: 0.004 },
  { name: 'invoice_growth_6m', type: 'number', digits: 3, missingRate: 0.006, structural: true },
  { name: 'buyer_count_12m', type: 'integer', digits: 0, missingRate: 0.005 },
  { name: 'top_buyer_share', type: 'number', digits: 3, missingRate: 0.006, structural: true },
  { name: 'red_invoice_share', type: 'number', digits: 4, missingRate: 0.008, structural: true },
  { name: 'zero_invoice_months_12m', type: 'integer', digits: 0, missingRate: 0 },
  { name: 'late_filing_months_12m', type: 'integer', digits: 0, missingRate: 0.004 },
  { name: 'tax_grade', type: 'integer', digits: 0, missingRate: 0 },
  { name: 'tax_arrears', type: 'binary', digits: 0, missingRate: 0.003 },
];

const POWER_COLUMNS: readonly Column[] = [
  { name: 'kwh_12m', type: 'integer', digits: 0, missingRate: 0.003 },
  { name: 'kwh_trend_6m', type: 'number', digits: 3, missingRate: 0.006, structural: true },
  { name: 'kwh_volatility', type: 'number', digits: 3, missingRate: 0.006, structural: true },
  { name: 'bill_arrears_months_12m', type: 'integer', digits: 0, missingRate: 0 },
  { name: 'contracted_capacity_kva', type: 'integer', digits: 0, missingRate: 0.01 },
  { name: 'load_factor', type: 'number', digits: 3, missingRate: 0.008 },
];

const PLATFORM_COLUMNS: readonly Column[] = [
  { name: 'gmv_12m_10k', type: 'number', digits: 2, missingRate: 0.004 },
  { name: 'gmv_growth_6m', type: 'number', digits: 3, missingRate: 0.008, structural: true },
  { name: 'refund_rate', type: 'number', digits: 4, missingRate: 0.01 },
  { name: 'active_months_12m', type: 'integer', digits: 0, missingRate: 0 },
  { name: 'merchant_rating', type: 'number', digits: 2, missingRate: 0.01, structural: true },
];

const BANK_AS_COLUMNS: readonly Column[] = BANK_COLUMNS.map((c) => ({ name: c.name, type: c.type, digits: c.digits, missingRate: c.missingRate }));

const COLUMNS: Readonly<Record<VerticalParty, readonly Column[]>> = {
  bank: BANK_AS_COLUMNS,
  'tax-bureau': TAX_COLUMNS,
  'power-company': POWER_COLUMNS,
  platform: PLATFORM_COLUMNS,
};

/** Feature columns of each party's file, in order (after `enterprise_id` and, for the bank, `default_12m`). */
export const VERTICAL_FEATURES: Readonly<Record<VerticalParty, readonly string[]>> = {
  bank: BANK_AS_COLUMNS.map((c) => c.name),
  'tax-bureau': TAX_COLUMNS.map((c) => c.name),
  'power-company': POWER_COLUMNS.map((c) => c.name),
  platform: PLATFORM_COLUMNS.map((c) => c.name),
};

/** Tax credit grades (纳税信用等级) as written in `tax_grade`: higher is better; M = newly registered, not yet rated. */
export const TAX_GRADE_CODES = { A: 4, B: 3, M: 2, C: 1, D: 0 } as const;

/** VAT invoices issued per year relative to invoiced sales, by industry (caterers issue many small ones, builders few big ones). */
const INVOICE_RATE: Readonly<Record<IndustryCode, number>> = { A: 0.6, C: 1, E: 0.3, F: 2, G: 1.5, H: 3, I: 0.7, L: 0.8 };
/** Distinct buyers per invoice^0.7, by industry. */
const BUYER_RATE: Readonly<Record<IndustryCode, number>> = { A: 0.5, C: 0.45, E: 0.35, F: 0.8, G: 0.6, H: 1.0, I: 0.5, L: 0.55 };

function taxRow(e: Enterprise, a: Activity, rng: Rng): number[] {
  const invoicedShare = 1 - e.uninvoicedShare;
  const perYear = 6 * Math.pow(Math.max(e.revenue10k * invoicedShare, 0.5), 0.75) * INVOICE_RATE[e.industry] * rng.lognormal(0, 0.5);
  const monthlyMean = e.revenue10k / MONTHS;
  const amount = new Float64Array(MONTHS);
  let invoices = 0;
  let zeroMonths = 0;
  for (let t = 0; t < MONTHS; t++) {
    const sales = a.sales[t]!;
    const n = sales > 0 ? count(rng, ((perYear / MONTHS) * sales) / monthlyMean) : 0;
    invoices += n;
    if (n === 0) zeroMonths++;
    else amount[t] = sales * invoicedShare * rng.lognormal(0, 0.1);
  }
  let invoiced = 0;
  for (const v of amount) invoiced += v;
  const buyers = invoices === 0 ? 0 : clamp(Math.round(Math.pow(invoices, 0.7) * BUYER_RATE[e.industry] * rng.lognormal(0, 0.35)), 1, invoices);
  // Customer concentration: distressed firms more often hang on one big buyer.
  const topShare = buyers === 0 ? Number.NaN : buyers === 1 ? 1 : 1 / buyers + (1 - 1 / buyers) * sigmoid(0.2 - 0.35 * e.health - 0.3 * Math.log(buyers) + rng.normal(0, 0.8));
  // Red-letter (cancelled or reversed) invoices: returns and disputes, and invoices issued to dress up sales.
  const redShare = invoices === 0 ? Number.NaN : clamp(0.012 * Math.exp(-0.35 * e.health - 0.2 * e.taxCompliance + 0.9 * (e.misreports ? 1 : 0) + 0.3 * a.trouble + rng.normal(0, 0.6)), 0, 0.5);
  // Months whose VAT return was filed late (逾期申报): sloppy bookkeeping, and firms in trouble stop filing on time.
  const lateFilings = Math.min(MONTHS - a.firstMonth, rng.poisson(Math.exp(-2.2 - 0.5 * e.taxCompliance - 0.4 * e.health + 0.5 * a.trouble)));
  const arrears = rng.bernoulli(sigmoid(-3.4 - 0.8 * e.health - 0.7 * e.taxCompliance + 0.5 * a.trouble)) ? 1 : 0;
  const score = 81 + 7 * e.taxCompliance + 3 * e.health - 15 * arrears + rng.normal(0, 5);
  const serious = rng.bernoulli(sigmoid(-5.2 - 1.2 * e.taxCompliance + 1.2 * (e.misreports ? 1 : 0)));
  const grade = serious
    ? TAX_GRADE_CODES.D
    : e.yearsInBusiness < 1.25
      ? TAX_GRADE_CODES.M
      : score >= 90
        ? TAX_GRADE_CODES.A
        : score >= 70
          ? TAX_GRADE_CODES.B
          : score >= 40
            ? TAX_GRADE_CODES.C
            : TAX_GRADE_CODES.D;
  return [invoiced, halfYearGrowth(amount, a.firstMonth), buyers, topShare, redShare, zeroMonths, lateFilings, grade, arrears];
}

function powerRow(e: Enterprise, a: Activity, rng: Rng): number[] {
  const baseLoad = e.employees * 120 * rng.lognormal(0, 0.4); // kWh a month for lights, offices, standby
  const kwh = new Float64Array(MONTHS);
  let total = 0;
  for (let t = a.firstMonth; t < MONTHS; t++) {
    const idle = t >= MONTHS - a.stalled ? 0.7 : 1;
    const used = baseLoad * idle + e.energyIntensity * a.sales[t]! * rng.lognormal(0, 0.07);
    kwh[t] = used;
    total += used;
  }
  const alive = MONTHS - a.firstMonth;
  let volatility = Number.NaN;
  if (alive >= 3) {
    const mean = total / alive;
    let ss = 0;
    for (let t = a.firstMonth; t < MONTHS; t++) ss += (kwh[t]! - mean) ** 2;
    volatility = mean > 0 ? Math.sqrt(ss / (alive - 1)) / mean : Number.NaN;
  }
  const arrearsRate = Math.exp(-1.6 - 0.9 * e.health - 0.3 * e.momentum + 0.5 * a.trouble) + 0.25 * a.stalled;
  const arrearsMonths = Math.min(alive, rng.poisson(arrearsRate));
  // Capacity was contracted at connection for the load then expected; the load factor falls when activity does.
  const annualAtConnection = (e.employees * 120 * 12 + e.energyIntensity * e.revenue10k) * Math.pow(1 + e.revenueGrowth, -Math.min(e.yearsInBusiness, 4) / 2);
  // A firm that outgrew its capacity had to have it raised (增容): the peak month's average load, x1.3 for peaks.
  let peakMonth = 0;
  for (let t = a.firstMonth; t < MONTHS; t++) peakMonth = Math.max(peakMonth, kwh[t]!);
  const capacity = Math.max(5, Math.round((annualAtConnection / (8760 * 0.3)) * rng.lognormal(0, 0.3)), Math.ceil((peakMonth / 730) * 1.3));
  const loadFactor = (total * (MONTHS / alive)) / (capacity * 8760);
  return [total, halfYearGrowth(kwh, a.firstMonth), volatility, arrearsMonths, capacity, loadFactor];
}

/** Average order value (10k CNY) and typical refund rate, by industry. */
const ORDER_VALUE: Readonly<Record<IndustryCode, number>> = { A: 0.015, C: 0.2, E: 0.5, F: 0.02, G: 0.05, H: 0.008, I: 0.1, L: 0.1 };
const REFUND_RATE: Readonly<Record<IndustryCode, number>> = { A: 0.04, C: 0.05, E: 0.02, F: 0.06, G: 0.02, H: 0.015, I: 0.03, L: 0.03 };

function platformRow(e: Enterprise, a: Activity, rng: Rng): number[] {
  const orderValue = ORDER_VALUE[e.industry] * rng.lognormal(0, 0.5);
  const gmv = new Float64Array(MONTHS);
  let total = 0;
  let orders = 0;
  let active = 0;
  for (let t = 0; t < MONTHS; t++) {
    const sales = a.sales[t]!;
    if (sales <= 0) continue;
    const online = sales * e.onlineShare * rng.lognormal(0, 0.15);
    const n = count(rng, online / orderValue);
    if (n === 0) continue;
    gmv[t] = online;
    total += online;
    orders += n;
    active++;
  }
  const baseRefund = REFUND_RATE[e.industry];
  const refund = clamp(baseRefund * Math.exp(-0.35 * e.health + 0.25 * a.trouble + rng.normal(0, 0.45)) + (a.stalled > 0 ? 0.05 : 0), 0, 0.9);
  // Stores with fewer than 10 orders show no rating.
  const rating = orders < 10 ? Number.NaN : clamp(4.55 + 0.12 * e.health - 2 * (refund - baseRefund) + rng.normal(0, 0.18), 1, 5);
  return [total, halfYearGrowth(gmv, a.firstMonth), refund, active, rating];
}

function bankRow(e: Enterprise): number[] {
  return BANK_COLUMNS.map((c) => c.value(e));
}

// ---------------------------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------------------------

export interface VerticalSynthOptions {
  seed: number;
  /** Rows of the bank's labelled loan book. Default 12,000. The other parties' files scale with it. */
  bankRows?: number;
}

export interface VerticalPartyData {
  party: VerticalParty;
  /** Feature columns, in file order. */
  features: string[];
  /** Ids in file order (each party's own order; files are not aligned). */
  ids: string[];
  /** Feature values as written (rounded), row-major in file order; NaN where the cell is empty. */
  x: number[][];
  /** Labels in file order: the bank only. */
  y?: (0 | 1)[];
  /** Text columns in file order, written after the features (the tax bureau's registered industry section). */
  groups: Record<string, string[]>;
  /** Row of each id in `ids` / `x`. */
  rowOf: Map<string, number>;
  /** The `data` section of this party's participant config; `spec.path` is the file's base name. */
  spec: CsvDatasetSpec;
}

/** One enterprise of the four-way intersection: its id, label and each party's feature vector (file order, NaN = missing). */
export interface VerticalJoinedRow {
  id: string;
  label: 0 | 1;
  x: Record<VerticalParty, number[]>;
}

export interface VerticalData {
  /** One entry per party, in `VERTICAL_PARTIES` order. */
  parties: VerticalPartyData[];
  /** Every enterprise in at least one file, with its latent state (for oracles and checks; no party sees it). */
  enterprises: Enterprise[];
  /** The enterprises all four parties hold, sorted by id. */
  intersection: VerticalJoinedRow[];
}

/** The tax bureau's registered industry (GB/T 4754 section letter): a text column to group reports by, never a feature. */
export const INDUSTRY_COLUMN = 'industry';

function datasetSpec(party: VerticalParty, path: string): CsvDatasetSpec {
  return {
    path,
    delimiter: ',',
    id_column: ID_COLUMN,
    ...(party === 'bank' ? { label_column: LABEL_COLUMN } : {}),
    ...(party === 'tax-bureau' ? { group_columns: [INDUSTRY_COLUMN] } : {}),
    // A column that can be empty is imputed; one the generator always fills is checked (an empty cell = a broken file).
    features: COLUMNS[party].map((c) => ({
      name: c.name,
      type: c.type,
      missing: c.missingRate > 0 || c.structural ? ('impute' as const) : ('reject' as const),
    })),
    duplicate_ids: 'reject',
    missing_values: ['', 'NA', 'N/A', 'NaN', 'null', 'NULL'],
  };
}

const round = (x: number, digits: number): number => {
  const scale = 10 ** digits;
  const r = Math.round(x * scale) / scale;
  return Object.is(r, -0) ? 0 : r;
};

/** Generate the four parties' rows in memory (what `writeVerticalSynth` writes). */
export function generateVertical(opts: VerticalSynthOptions): VerticalData {
  const bankRows = opts.bankRows ?? 12_000;
  if (!Number.isInteger(bankRows) || bankRows < 1) throw new RangeError(`bankRows must be a positive integer, got ${bankRows}`);
  const taken = new Set<string>();
  const book = generateEnterprises(bankRows, new Rng(opts.seed, 1), VERTICAL_BANK_PROFILE, taken);
  const others = generateEnterprises(OTHERS_PER_BANK_ROW * bankRows, new Rng(opts.seed, 2), POPULATION_PROFILE, taken);

  // Who holds whom. Enterprises outside the book that no party holds are not part of the data.
  const coverRng = new Rng(opts.seed, 3);
  const holders: { e: Enterprise; held: Record<VerticalParty, boolean> }[] = [];
  for (const [k, e] of [...book, ...others].entries()) {
    const c = coverage(e, coverRng);
    const held = { bank: k < bankRows, 'tax-bureau': c.tax, 'power-company': c.power, platform: c.platform };
    if (held.bank || c.tax || c.power || c.platform) holders.push({ e, held });
  }

  const activityRng = new Rng(opts.seed, 4);
  const activity = holders.map(({ e }) => drawActivity(e, activityRng));

  const parties = VERTICAL_PARTIES.map((party, k): VerticalPartyData => {
    const valueRng = new Rng(opts.seed, 10 + k);
    const missingRng = new Rng(opts.seed, 20 + k);
    const columns = COLUMNS[party];
    const members: Enterprise[] = [];
    const rows: number[][] = [];
    holders.forEach(({ e, held }, i) => {
      if (!held[party]) return;
      const a = activity[i]!; // one activity per holder
      const raw = party === 'bank' ? bankRow(e) : party === 'tax-bureau' ? taxRow(e, a, valueRng) : party === 'power-company' ? powerRow(e, a, valueRng) : platformRow(e, a, valueRng);
      const thin = e.employees < 10 ? 1.5 : 1;
      if (raw.length !== columns.length) throw new Error(`${party} drew ${raw.length} values for its ${columns.length} columns`);
      for (const [j, column] of columns.entries()) {
        // Always draw, so the stream does not depend on which values are structurally absent.
        const blank = missingRng.next() < column.missingRate * thin;
        const value = raw[j]!;
        raw[j] = blank || !Number.isFinite(value) ? Number.NaN : round(value, column.digits);
      }
      rows.push(raw);
      members.push(e);
    });
    // Each party lists its enterprises in its own order.
    const order = seededShuffle(members.length, new Rng(opts.seed, 30 + k));
    const ids: string[] = [];
    const x: number[][] = [];
    const y: (0 | 1)[] = [];
    const industry: string[] = [];
    const rowOf = new Map<string, number>();
    for (const i of order) {
      const member = members[i]!; // order is a permutation of the members' indices
      rowOf.set(member.id, ids.length);
      ids.push(member.id);
      x.push(rows[i]!);
      y.push(member.default12m);
      industry.push(member.industry);
    }
    return {
      party,
      features: [...VERTICAL_FEATURES[party]],
      ids,
      x,
      ...(party === 'bank' ? { y } : {}),
      groups: party === 'tax-bureau' ? { [INDUSTRY_COLUMN]: industry } : {},
      rowOf,
      spec: datasetSpec(party, `${party}.csv`),
    };
  });

  const intersection: VerticalJoinedRow[] = [];
  for (const { e, held } of holders) {
    if (!VERTICAL_PARTIES.every((p) => held[p])) continue;
    const x = {} as Record<VerticalParty, number[]>;
    for (const p of parties) x[p.party] = p.x[p.rowOf.get(e.id)!]!;
    intersection.push({ id: e.id, label: e.default12m, x });
  }
  intersection.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { parties, enterprises: holders.map((h) => h.e), intersection };
}

/** The CSV text of one party. Values are already rounded to their column's digits (and -0 is 0), so they print as is. */
function partyCsv(p: VerticalPartyData): string {
  const groups = Object.entries(p.groups);
  const lines = [[ID_COLUMN, ...(p.y ? [LABEL_COLUMN] : []), ...p.features, ...groups.map(([name]) => name)].join(',')];
  for (const [r, id] of p.ids.entries()) {
    let line = p.y ? `${id},${p.y[r]}` : id;
    for (const value of p.x[r]!) line += Number.isNaN(value) ? ',' : `,${value}`;
    for (const [, values] of groups) line += `,${values[r]}`;
    lines.push(line);
  }
  return lines.join('\n') + '\n';
}

export interface VerticalSynthResult {
  /** One entry per party, in `VERTICAL_PARTIES` order. `file` is the written path; `spec.path` its base name. */
  parties: { party: string; file: string; spec: CsvDatasetSpec; rows: number; features: string[] }[];
  /** Distinct enterprises over the four files. */
  population: number;
  /** Enterprises in all four files. */
  intersection: number;
}

/** Write `<outDir>/bank.csv`, `tax-bureau.csv`, `power-company.csv` and `platform.csv`. */
export async function writeVerticalSynth(outDir: string, opts: VerticalSynthOptions): Promise<VerticalSynthResult> {
  const data = generateVertical(opts);
  await mkdir(outDir, { recursive: true });
  const parties: VerticalSynthResult['parties'] = [];
  for (const p of data.parties) {
    const file = join(outDir, p.spec.path);
    await writeFile(file, partyCsv(p), 'utf8');
    parties.push({ party: p.party, file, spec: p.spec, rows: p.ids.length, features: [...p.features] });
  }
  return { parties, population: data.enterprises.length, intersection: data.intersection.length };
}
