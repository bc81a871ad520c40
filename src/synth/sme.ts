/**
 * Synthetic credit data for small and micro enterprises (SMEs) in China. Everything here is made up by a seeded
 * generator; no row describes a real enterprise. See examples/synthetic-data.md for the generating process.
 *
 * One latent model per enterprise (`generateEnterprises`) feeds every party's view:
 *  - horizontal federation (now): three banks hold the same columns for disjoint borrowers (`writeHorizontalSynth`);
 *  - vertical federation: bank, tax bureau, power company and e-commerce/payment platform each see a different
 *    slice of partly overlapping sets of the same enterprises, joined on the unified social credit code
 *    (`writeVerticalSynth` in ./vertical.ts, built on the latent fields here: true vs declared revenue, recent
 *    momentum, tax compliance, energy intensity, online sales share).
 *
 * Deterministic: the same seed gives byte-identical files. Fast: ~10k rows in well under a second.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CsvDatasetSpec } from '../data/schema.js';
import { USCC_CHARSET, uscc } from '../data/uscc.js';
import { Rng } from '../random.js';

export { Rng };
/** Re-exported from their new home, src/data/uscc.ts, for existing importers. */
export { USCC_CHARSET, isValidUscc, orgCodeCheckChar, uscc, usccCheckChar, type UsccParts } from '../data/uscc.js';

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
const logit = (p: number): number => Math.log(p / (1 - p));
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

// ---------------------------------------------------------------------------------------------------------------
// Industries and regions
// ---------------------------------------------------------------------------------------------------------------

/** Sections of the Chinese industry classification GB/T 4754-2017 that most SME loans go to. */
export type IndustryCode = 'A' | 'C' | 'E' | 'F' | 'G' | 'H' | 'I' | 'L';

export interface Industry {
  code: IndustryCode;
  name: string;
  /** Published-style industry risk index: historical non-performing ratio of SME loans to the industry (decimal). */
  riskIndex: number;
  /** True industry effect on the log-odds of default (not identical to the index: the index is a noisy proxy). */
  riskLogit: number;
  /** Mean of log(employees) for an enterprise of this industry. */
  logEmployees: number;
  /** Revenue per employee, 10k CNY per year. */
  revenuePerEmployee: number;
  /** Typical revenue growth and its spread (decimals). */
  growthMean: number;
  growthSd: number;
  /** Typical debt-to-assets ratio. */
  leverageNorm: number;
  /** Share of loans with collateral. */
  collateralShare: number;
  /** Electricity use, kWh per 10k CNY of revenue (for the power company's view). */
  energyIntensity: number;
  /** Share of sales that go through e-commerce / payment platforms (for the platform's view). */
  onlineShare: number;
  /** Share of sales not invoiced (cash sales), for the tax bureau's view. */
  uninvoicedShare: number;
}

export const INDUSTRIES: Readonly<Record<IndustryCode, Industry>> = {
  A: {
    code: 'A',
    name: 'agriculture, forestry, animal husbandry and fishery',
    riskIndex: 0.058,
    riskLogit: 0.3,
    logEmployees: 2.2,
    revenuePerEmployee: 22,
    growthMean: 0.03,
    growthSd: 0.2,
    leverageNorm: 0.45,
    collateralShare: 0.55,
    energyIntensity: 260,
    onlineShare: 0.12,
    uninvoicedShare: 0.3,
  },
  C: {
    code: 'C',
    name: 'manufacturing',
    riskIndex: 0.049,
    riskLogit: 0.1,
    logEmployees: 3.4,
    revenuePerEmployee: 55,
    growthMean: 0.04,
    growthSd: 0.17,
    leverageNorm: 0.55,
    collateralShare: 0.7,
    energyIntensity: 900,
    onlineShare: 0.08,
    uninvoicedShare: 0.05,
  },
  E: {
    code: 'E',
    name: 'construction',
    riskIndex: 0.064,
    riskLogit: 0.45,
    logEmployees: 3.2,
    revenuePerEmployee: 48,
    growthMean: -0.01,
    growthSd: 0.22,
    leverageNorm: 0.65,
    collateralShare: 0.6,
    energyIntensity: 120,
    onlineShare: 0.02,
    uninvoicedShare: 0.08,
  },
  F: {
    code: 'F',
    name: 'wholesale and retail trade',
    riskIndex: 0.052,
    riskLogit: 0.15,
    logEmployees: 2.3,
    revenuePerEmployee: 120,
    growthMean: 0.05,
    growthSd: 0.2,
    leverageNorm: 0.58,
    collateralShare: 0.45,
    energyIntensity: 90,
    onlineShare: 0.38,
    uninvoicedShare: 0.15,
  },
  G: {
    code: 'G',
    name: 'transport, storage and postal services',
    riskIndex: 0.045,
    riskLogit: 0.05,
    logEmployees: 2.8,
    revenuePerEmployee: 40,
    growthMean: 0.04,
    growthSd: 0.16,
    leverageNorm: 0.55,
    collateralShare: 0.6,
    energyIntensity: 180,
    onlineShare: 0.15,
    uninvoicedShare: 0.07,
  },
  H: {
    code: 'H',
    name: 'accommodation and catering',
    riskIndex: 0.071,
    riskLogit: 0.6,
    logEmployees: 2.4,
    revenuePerEmployee: 16,
    growthMean: 0.03,
    growthSd: 0.26,
    leverageNorm: 0.5,
    collateralShare: 0.3,
    energyIntensity: 320,
    onlineShare: 0.32,
    uninvoicedShare: 0.3,
  },
  I: {
    code: 'I',
    name: 'information transmission, software and IT services',
    riskIndex: 0.033,
    riskLogit: -0.25,
    logEmployees: 2.9,
    revenuePerEmployee: 38,
    growthMean: 0.09,
    growthSd: 0.28,
    leverageNorm: 0.38,
    collateralShare: 0.2,
    energyIntensity: 60,
    onlineShare: 0.2,
    uninvoicedShare: 0.03,
  },
  L: {
    code: 'L',
    name: 'leasing and business services',
    riskIndex: 0.041,
    riskLogit: 0.0,
    logEmployees: 2.5,
    revenuePerEmployee: 32,
    growthMean: 0.05,
    growthSd: 0.22,
    leverageNorm: 0.5,
    collateralShare: 0.35,
    energyIntensity: 70,
    onlineShare: 0.1,
    uninvoicedShare: 0.1,
  },
};

export const INDUSTRY_CODES = Object.keys(INDUSTRIES) as IndustryCode[];

export interface Province {
  /** GB/T 2260 two-digit province prefix. */
  code: string;
  name: string;
  /** Regional credit environment not captured by growth (e.g. the north-east's weaker repayment record), logit. */
  riskLogit: number;
  /** County- or city-level divisions (GB/T 2260 codes) with an illustrative local real GDP growth rate. */
  divisions: readonly { code: string; gdpGrowth: number }[];
}

/**
 * Provinces and a few registering divisions in each. Growth rates are illustrative values of the order of recent
 * local real GDP growth, not official statistics.
 */
export const PROVINCES: readonly Province[] = [
  {
    code: '31',
    name: 'Shanghai',
    riskLogit: -0.1,
    divisions: [
      { code: '310115', gdpGrowth: 0.052 },
      { code: '310112', gdpGrowth: 0.047 },
      { code: '310114', gdpGrowth: 0.049 },
    ],
  },
  {
    code: '32',
    name: 'Jiangsu',
    riskLogit: -0.1,
    divisions: [
      { code: '320102', gdpGrowth: 0.056 },
      { code: '320505', gdpGrowth: 0.061 },
      { code: '320211', gdpGrowth: 0.058 },
      { code: '320583', gdpGrowth: 0.06 },
    ],
  },
  {
    code: '33',
    name: 'Zhejiang',
    riskLogit: -0.1,
    divisions: [
      { code: '330106', gdpGrowth: 0.062 },
      { code: '330212', gdpGrowth: 0.058 },
      { code: '330782', gdpGrowth: 0.066 },
    ],
  },
  {
    code: '35',
    name: 'Fujian',
    riskLogit: 0.0,
    divisions: [
      { code: '350102', gdpGrowth: 0.045 },
      { code: '350203', gdpGrowth: 0.05 },
      { code: '350582', gdpGrowth: 0.043 },
    ],
  },
  {
    code: '44',
    name: 'Guangdong',
    riskLogit: 0.0,
    divisions: [
      { code: '440305', gdpGrowth: 0.055 },
      { code: '440106', gdpGrowth: 0.045 },
      { code: '441900', gdpGrowth: 0.042 },
    ],
  },
  {
    code: '37',
    name: 'Shandong',
    riskLogit: 0.0,
    divisions: [
      { code: '370202', gdpGrowth: 0.06 },
      { code: '370102', gdpGrowth: 0.059 },
    ],
  },
  {
    code: '50',
    name: 'Chongqing',
    riskLogit: 0.05,
    divisions: [
      { code: '500103', gdpGrowth: 0.058 },
      { code: '500112', gdpGrowth: 0.064 },
    ],
  },
  {
    code: '51',
    name: 'Sichuan',
    riskLogit: 0.05,
    divisions: [
      { code: '510107', gdpGrowth: 0.062 },
      { code: '510104', gdpGrowth: 0.057 },
      { code: '510781', gdpGrowth: 0.052 },
    ],
  },
  {
    code: '61',
    name: 'Shaanxi',
    riskLogit: 0.05,
    divisions: [
      { code: '610113', gdpGrowth: 0.046 },
      { code: '610103', gdpGrowth: 0.04 },
    ],
  },
  {
    code: '53',
    name: 'Yunnan',
    riskLogit: 0.15,
    divisions: [
      { code: '530102', gdpGrowth: 0.041 },
      { code: '530112', gdpGrowth: 0.045 },
    ],
  },
  {
    code: '52',
    name: 'Guizhou',
    riskLogit: 0.2,
    divisions: [
      { code: '520102', gdpGrowth: 0.047 },
      { code: '520115', gdpGrowth: 0.051 },
    ],
  },
  {
    code: '62',
    name: 'Gansu',
    riskLogit: 0.15,
    divisions: [
      { code: '620102', gdpGrowth: 0.061 },
      { code: '620103', gdpGrowth: 0.058 },
    ],
  },
  {
    code: '21',
    name: 'Liaoning',
    riskLogit: 0.3,
    divisions: [
      { code: '210102', gdpGrowth: 0.05 },
      { code: '210204', gdpGrowth: 0.054 },
    ],
  },
  { code: '22', name: 'Jilin', riskLogit: 0.3, divisions: [{ code: '220102', gdpGrowth: 0.058 }] },
  {
    code: '23',
    name: 'Heilongjiang',
    riskLogit: 0.35,
    divisions: [
      { code: '230102', gdpGrowth: 0.028 },
      { code: '230103', gdpGrowth: 0.024 },
    ],
  },
  {
    code: '13',
    name: 'Hebei',
    riskLogit: 0.1,
    divisions: [
      { code: '130102', gdpGrowth: 0.054 },
      { code: '130203', gdpGrowth: 0.052 },
    ],
  },
  {
    code: '11',
    name: 'Beijing',
    riskLogit: -0.15,
    divisions: [
      { code: '110105', gdpGrowth: 0.051 },
      { code: '110108', gdpGrowth: 0.055 },
    ],
  },
  { code: '12', name: 'Tianjin', riskLogit: 0.1, divisions: [{ code: '120116', gdpGrowth: 0.043 }] },
  { code: '15', name: 'Inner Mongolia', riskLogit: 0.15, divisions: [{ code: '150102', gdpGrowth: 0.07 }] },
];

// ---------------------------------------------------------------------------------------------------------------
// Portfolio profiles: who a bank lends to
// ---------------------------------------------------------------------------------------------------------------

export interface PortfolioProfile {
  name: string;
  /** Relative weight of each province (by GB/T 2260 prefix); provinces not listed get `otherProvinceWeight`. */
  provinceWeights: Readonly<Record<string, number>>;
  otherProvinceWeight: number;
  /** Relative weight of each industry; industries not listed get weight 0. */
  industryWeights: Readonly<Partial<Record<IndustryCode, number>>>;
  /** Shift of log(employees): > 0 means larger firms. */
  sizeShift: number;
  /** Multiplier on the age distribution. */
  ageScale: number;
  /** Mean of the latent financial health of the applicants this lender attracts. */
  healthShift: number;
  /** Share of individual businesses (个体工商户, USCC prefix 92). */
  individualShare: number;
  /**
   * How the lender asks for collateral. 'standard': by industry and size (established manufacturers pledge plant,
   * micro firms cannot). 'risk-based': the loan officer asks for collateral from the applicants the officer doubts,
   * so in this portfolio collateral goes with higher risk (the "observed risk" pattern of relationship lending).
   */
  collateralPolicy: 'standard' | 'risk-based';
  /** Underwriting rules: applicants that break any rule never become borrowers (rejection sampling). */
  screening?: {
    maxOverdue24m?: number;
    maxDebtToAssets?: number;
    minYearsInBusiness?: number;
    rejectOwnerOverdue?: boolean;
  };
}

/** The whole population of SMEs (no lender, no screening): the base for vertical federation. */
export const POPULATION_PROFILE: PortfolioProfile = {
  name: 'population',
  provinceWeights: { '32': 3, '33': 3, '44': 3, '37': 2.5, '51': 2, '31': 1.5, '35': 1.5, '13': 1.5, '11': 1 },
  otherProvinceWeight: 1,
  industryWeights: { A: 0.08, C: 0.22, E: 0.1, F: 0.3, G: 0.07, H: 0.1, I: 0.06, L: 0.07 },
  sizeShift: 0,
  ageScale: 1,
  healthShift: 0,
  individualShare: 0.25,
  collateralPolicy: 'standard',
};

/** The three demo banks' lending portfolios. */
export const BANK_PROFILES: Readonly<Record<string, PortfolioProfile>> = {
  // A city commercial bank in the Yangtze River Delta: larger, older manufacturers, traders and IT firms; strict
  // underwriting (at most one overdue episode in 24 months, no over-leveraged statements, owner's personal credit
  // clean), so it never sees the riskiest tail and cannot learn from repeated arrears or owners' personal records.
  'bank-east': {
    name: 'bank-east',
    provinceWeights: { '31': 3, '32': 5, '33': 5, '35': 1.5, '44': 1.5, '37': 1 },
    otherProvinceWeight: 0.05,
    industryWeights: { C: 0.36, F: 0.28, I: 0.14, L: 0.1, G: 0.06, E: 0.04, H: 0.02 },
    sizeShift: 0.4,
    ageScale: 1.15,
    healthShift: -0.2,
    individualShare: 0.08,
    collateralPolicy: 'standard',
    screening: { maxOverdue24m: 1, maxDebtToAssets: 0.85, rejectOwnerOverdue: true },
  },
  // A rural commercial bank in the south-west with an inclusive-finance mandate: micro firms, individual businesses,
  // farms and restaurants, young firms, no hard screening rules (its officers know the borrowers, hence the better
  // latent health than the applicant pool would suggest) and collateral asked from the doubtful cases.
  'bank-west': {
    name: 'bank-west',
    provinceWeights: { '51': 5, '50': 4, '61': 2, '53': 1.5, '52': 1.5, '62': 1 },
    otherProvinceWeight: 0.03,
    industryWeights: { A: 0.22, H: 0.22, F: 0.3, C: 0.1, G: 0.07, E: 0.05, L: 0.04 },
    sizeShift: -0.6,
    ageScale: 0.7,
    healthShift: 0.3,
    individualShare: 0.5,
    collateralPolicy: 'risk-based',
  },
  // A joint-stock bank's branches in the north and north-east: old-economy manufacturing, construction and
  // logistics, hardly any restaurants or farms and no IT; requires three years of operating history, so it never
  // sees the young firms where default risk is highest.
  'bank-north': {
    name: 'bank-north',
    provinceWeights: { '21': 3, '22': 2, '23': 2, '13': 3, '11': 1.5, '12': 1.5, '15': 1 },
    otherProvinceWeight: 0.03,
    industryWeights: { C: 0.4, E: 0.24, G: 0.16, F: 0.18, A: 0.01, H: 0.01 },
    sizeShift: 0.1,
    ageScale: 1.4,
    healthShift: 0,
    individualShare: 0.15,
    collateralPolicy: 'standard',
    screening: { minYearsInBusiness: 3 },
  },
};

// ---------------------------------------------------------------------------------------------------------------
// Latent enterprise model
// ---------------------------------------------------------------------------------------------------------------

export type EntityKind = 'enterprise' | 'individual' | 'cooperative';

export interface Enterprise {
  /** 18-character unified social credit code. */
  id: string;
  kind: EntityKind;
  industry: IndustryCode;
  province: string;
  /** GB/T 2260 code of the registering division (also positions 3-8 of `id`). */
  division: string;
  regionGdpGrowth: number;
  yearsInBusiness: number;
  employees: number;
  /** Latent financial health, ~N(profile shift, 1); higher is healthier. Never observed directly. */
  health: number;
  /** Latent activity momentum over the last 6 months (standardised); seen later in invoices and electricity. */
  momentum: number;
  /** Latent tax compliance (standardised); drives the tax grade in the vertical view. */
  taxCompliance: number;
  /** True annual revenue (10k CNY) and true year-on-year growth. */
  revenue10k: number;
  revenueGrowth: number;
  /** Whether the firm inflates the figures it gives its bank, and those declared figures. */
  misreports: boolean;
  declaredRevenue10k: number;
  declaredRevenueGrowth: number;
  /** Enterprise-level versions of the industry's electricity intensity, online share and uninvoiced share. */
  energyIntensity: number;
  onlineShare: number;
  uninvoicedShare: number;
  // Credit-file facts (as of the loan date). The balance-sheet ratios exist twice: the true ones (which drive default)
  // and the ones in the statements the firm hands its bank. Audited accounts of larger firms are close to the truth;
  // the self-prepared accounts of micro firms and individual businesses are much noisier, and window-dressers
  // understate leverage.
  debtToAssets: number;
  currentRatio: number;
  statementDebtToAssets: number;
  statementCurrentRatio: number;
  overdueCount24m: number;
  inquiries6m: number;
  creditUtilisation: number;
  loanAmount10k: number;
  collateralRatio: number;
  ownerOverdue24m: 0 | 1;
  bankRelationshipYears: number;
  /**
   * The idiosyncratic part of the default log-odds, N(0, 0.95): events of the loan year that no credit file shows
   * (the main customer leaves, the owner falls ill). The bank never sees it; in the vertical view part of it is
   * already under way before the loan and shows in monthly invoices, electricity and sales (./vertical.ts).
   */
  shock: number;
  /** True probability of default within 12 months and the drawn outcome. */
  pd: number;
  default12m: 0 | 1;
}

/** Base log-odds of default; with the effects below, the unscreened population defaults at about 15% a year. */
const DEFAULT_INTERCEPT = -3.55;

/** Draw the latent state and credit facts of one applicant (unscreened). */
function drawApplicant(rng: Rng, profile: PortfolioProfile, industryWeights: number[], provinceWeights: number[]): Omit<Enterprise, 'id'> {
  const industry = rng.pickWeighted(INDUSTRY_CODES, industryWeights);
  const ind = INDUSTRIES[industry];
  const prov = rng.pickWeighted(PROVINCES, provinceWeights);
  const div = rng.pick(prov.divisions);

  const u = rng.next();
  const kind: EntityKind = u < profile.individualShare ? 'individual' : industry === 'A' && u < profile.individualShare + 0.3 ? 'cooperative' : 'enterprise';

  // Age: right-skewed, mean ~7 years, few firms over 25. Survivorship makes older firms a little healthier.
  const yearsInBusiness = clamp(0.3 + rng.gamma(1.7, 4.0) * profile.ageScale, 0.3, 40);
  const health = rng.normal(profile.healthShift, 1) + 0.15 * (Math.log(yearsInBusiness) - 1.7);
  const momentum = 0.45 * health + rng.normal(0, 0.9);
  const taxCompliance = 0.5 * health + rng.normal(0, 0.85);

  // Size: log-normal employees; individual businesses are much smaller. Revenue follows headcount and health.
  const logEmp = ind.logEmployees + profile.sizeShift + 0.35 * Math.log(yearsInBusiness + 1) - 0.5 + 0.12 * health + (kind === 'individual' ? -1.1 : 0) + rng.normal(0, 0.75);
  const employees = Math.round(clamp(Math.exp(logEmp), 1, 950));
  const revenue10k = Math.max(3, employees * ind.revenuePerEmployee * Math.exp(0.18 * health + rng.normal(0, 0.45)));

  // Growth: industry trend, local economy, firm health, young firms grow faster, recent momentum.
  const revenueGrowth = clamp(ind.growthMean + 1.5 * (div.gdpGrowth - 0.05) + 0.07 * health + 0.05 * momentum + 0.2 * Math.exp(-yearsInBusiness / 2) + rng.normal(0, ind.growthSd), -0.75, 2.5);

  // Window dressing: distressed firms more often inflate what they tell the bank (tax and power data will not move).
  const misreports = rng.bernoulli(sigmoid(-2.9 - 1.1 * health));
  const inflateGrowth = misreports ? Math.abs(rng.normal(0.18, 0.1)) : 0;
  const declaredRevenueGrowth = clamp(revenueGrowth + inflateGrowth + rng.normal(0, 0.03), -0.75, 2.5);
  const declaredRevenue10k = revenue10k * (misreports ? 1 + rng.uniform(0.1, 0.4) : Math.exp(rng.normal(0, 0.05)));

  const energyIntensity = ind.energyIntensity * rng.lognormal(0, 0.35);
  const onlineShare = clamp(ind.onlineShare * rng.lognormal(0, 0.6), 0, 0.95);
  const uninvoicedShare = clamp(ind.uninvoicedShare * rng.lognormal(0, 0.5) * (kind === 'individual' ? 1.5 : 1), 0, 0.7);

  // Balance sheet and credit file.
  const micro = employees < 10 ? 1 : 0;
  const debtToAssets = clamp(1.05 * sigmoid(logit(ind.leverageNorm) - 0.8 * health + rng.normal(0, 0.4)), 0.02, 1.04);
  const currentRatio = clamp(Math.exp(0.25 + 0.35 * health - 0.7 * (debtToAssets - 0.5) + rng.normal(0, 0.28)), 0.15, 8);
  const informal = kind === 'individual' || employees < 20;
  const statementNoise = informal ? 1.0 : 0.15;
  const statementDebtToAssets = clamp(1.05 * sigmoid(logit(clamp(debtToAssets / 1.05, 0.01, 0.99)) + rng.normal(misreports ? -0.5 : 0, statementNoise)), 0.02, 1.04);
  const statementCurrentRatio = clamp(currentRatio * Math.exp(rng.normal(misreports ? 0.25 : 0, statementNoise * 0.8)), 0.15, 8);
  const overdueCount24m = Math.min(12, rng.poisson(Math.exp(-1.75 - 0.8 * health + 0.25 * micro)));
  const inquiries6m = Math.min(15, rng.poisson(Math.exp(0.25 - 0.3 * health + 0.2 * (revenueGrowth > 0.3 ? 1 : 0))));
  const creditUtilisation = clamp(sigmoid(0.2 - 0.75 * health + rng.normal(0, 0.8)), 0, 1);
  const loanAmount10k = Math.max(5, Math.round(revenue10k * Math.exp(Math.log(0.22) + 0.2 * Math.max(0, -health) + rng.normal(0, 0.45))));
  const officerDoubt = -health + rng.normal(0, 0.7); // soft information from the loan officer's visit
  const collateralised = rng.bernoulli(
    profile.collateralPolicy === 'risk-based' ? sigmoid(-0.6 + 1.3 * officerDoubt) : clamp(ind.collateralShare - 0.2 * micro + 0.05 * Math.log1p(yearsInBusiness) - 0.05, 0.05, 0.95),
  );
  const collateralRatio = collateralised ? clamp(rng.gamma(5, 0.26), 0.2, 4) : 0;
  const ownerOverdue24m: 0 | 1 = rng.bernoulli(sigmoid(-2.5 - 0.7 * health)) ? 1 : 0;
  const bankRelationshipYears = yearsInBusiness * rng.beta(2, 1.6);

  // Default within 12 months: logistic in latent health and observable drivers, with nonlinear terms.
  const shock = rng.normal(0, 0.95); // idiosyncratic shocks the bank cannot observe
  const z =
    DEFAULT_INTERCEPT +
    ind.riskLogit +
    prov.riskLogit -
    0.95 * health -
    0.45 * momentum +
    2.0 * Math.exp(-yearsInBusiness / 2) - // young firms are much riskier; the effect fades after ~5 years
    0.2 * (Math.log(revenue10k) - 6) -
    8 * (div.gdpGrowth - 0.05) +
    // Shrinking revenue hurts, strongly, except where a bad year is normal (harvests, seasonal catering).
    (industry === 'A' || industry === 'H' ? 0.8 : 2.6) * Math.max(0, -revenueGrowth) +
    0.8 * Math.max(0, revenueGrowth - 0.6) + // very fast growth is also risky
    2.5 * Math.max(0, debtToAssets - 0.7) * (creditUtilisation > 0.85 ? 2 : 1) + // leverage x maxed-out lines
    0.45 * Math.min(overdueCount24m, 4) +
    0.1 * Math.min(inquiries6m, 8) +
    (kind === 'individual' ? 1.0 : micro ? 0.7 : 0.3) * ownerOverdue24m + // the owner's own record matters most for the smallest
    0.6 * Math.max(0, Math.log(loanAmount10k / revenue10k / 0.3)) - // loan large relative to the business
    0.25 * (collateralRatio >= 1 ? 1 : 0) -
    0.12 * Math.log1p(bankRelationshipYears) +
    (micro && industry === 'H' ? 0.35 : 0) + // micro restaurants fail often
    shock;
  const pd = sigmoid(z);
  const default12m: 0 | 1 = rng.bernoulli(pd) ? 1 : 0;

  return {
    kind,
    industry,
    province: prov.code,
    division: div.code,
    regionGdpGrowth: div.gdpGrowth,
    yearsInBusiness,
    employees,
    health,
    momentum,
    taxCompliance,
    revenue10k,
    revenueGrowth,
    misreports,
    declaredRevenue10k,
    declaredRevenueGrowth,
    energyIntensity,
    onlineShare,
    uninvoicedShare,
    debtToAssets,
    currentRatio,
    statementDebtToAssets,
    statementCurrentRatio,
    overdueCount24m,
    inquiries6m,
    creditUtilisation,
    loanAmount10k,
    collateralRatio,
    ownerOverdue24m,
    bankRelationshipYears,
    shock,
    pd,
    default12m,
  };
}

function passesScreening(e: Omit<Enterprise, 'id'>, profile: PortfolioProfile): boolean {
  const s = profile.screening;
  if (!s) return true;
  if (s.maxOverdue24m !== undefined && e.overdueCount24m > s.maxOverdue24m) return false;
  if (s.maxDebtToAssets !== undefined && e.statementDebtToAssets > s.maxDebtToAssets) return false;
  if (s.minYearsInBusiness !== undefined && e.yearsInBusiness < s.minYearsInBusiness) return false;
  if (s.rejectOwnerOverdue && e.ownerOverdue24m === 1) return false;
  return true;
}

const DIGITS = '0123456789';

/** A realistic-looking USCC: firms registered after the 2015 reform get an 'MA…' body, older ones a numeric body. */
function drawUscc(rng: Rng, e: Omit<Enterprise, 'id'>, taken: Set<string>): string {
  const entityType = e.kind === 'individual' ? '2' : e.kind === 'cooperative' ? '3' : '1';
  for (;;) {
    let body: string;
    if (e.yearsInBusiness < 8.5) {
      body = 'MA';
      for (let i = 0; i < 6; i++) body += USCC_CHARSET[rng.int(USCC_CHARSET.length)];
    } else {
      body = '';
      for (let i = 0; i < 8; i++) body += DIGITS[rng.int(10)];
    }
    const code = uscc({ authority: '9', entityType, division: e.division, orgBody: body });
    if (!taken.has(code)) {
      taken.add(code);
      return code;
    }
  }
}

/**
 * Draw `n` enterprises from a portfolio profile (default: the whole SME population). A profile with screening
 * rules yields only applicants that pass them, i.e. the lender's borrowers. Ids are unique within the call and
 * against `taken`, which is updated (pass one set to several calls to keep their enterprises disjoint).
 */
export function generateEnterprises(n: number, rng: Rng, profile: PortfolioProfile = POPULATION_PROFILE, taken: Set<string> = new Set()): Enterprise[] {
  const industryWeights = INDUSTRY_CODES.map((c) => profile.industryWeights[c] ?? 0);
  const provinceWeights = PROVINCES.map((p) => profile.provinceWeights[p.code] ?? profile.otherProvinceWeight);
  const out: Enterprise[] = [];
  let attempts = 0;
  while (out.length < n) {
    if (++attempts > 50 * n + 1000) throw new Error(`profile ${profile.name}: screening rejects almost every applicant`);
    const e = drawApplicant(rng, profile, industryWeights, provinceWeights);
    if (!passesScreening(e, profile)) continue;
    out.push({ id: drawUscc(rng, e, taken), ...e });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Bank view (horizontal federation)
// ---------------------------------------------------------------------------------------------------------------

export const ID_COLUMN = 'enterprise_id';
export const LABEL_COLUMN = 'default_12m';

/** One column of the bank view: how to read it off an enterprise and write it. */
export interface BankColumn {
  name: string;
  type: 'number' | 'integer' | 'binary';
  /** Decimal places written. */
  digits: number;
  /** Probability the cell is empty (micro firms x1.5: their files are thinner). */
  missingRate: number;
  value: (e: Enterprise) => number;
}

/** The columns every bank holds, in file order after the id and label (also the bank's view in vertical data). */
export const BANK_COLUMNS: readonly BankColumn[] = [
  { name: 'years_in_business', type: 'number', digits: 1, missingRate: 0, value: (e) => e.yearsInBusiness },
  { name: 'employees', type: 'integer', digits: 0, missingRate: 0.004, value: (e) => e.employees },
  { name: 'annual_revenue_10k', type: 'number', digits: 1, missingRate: 0.006, value: (e) => e.declaredRevenue10k },
  { name: 'revenue_growth', type: 'number', digits: 3, missingRate: 0.012, value: (e) => e.declaredRevenueGrowth },
  { name: 'debt_to_assets', type: 'number', digits: 3, missingRate: 0.01, value: (e) => e.statementDebtToAssets },
  { name: 'current_ratio', type: 'number', digits: 2, missingRate: 0.015, value: (e) => e.statementCurrentRatio },
  { name: 'overdue_count_24m', type: 'integer', digits: 0, missingRate: 0, value: (e) => e.overdueCount24m },
  { name: 'credit_utilisation', type: 'number', digits: 3, missingRate: 0.005, value: (e) => e.creditUtilisation },
  { name: 'inquiries_6m', type: 'integer', digits: 0, missingRate: 0, value: (e) => e.inquiries6m },
  { name: 'loan_amount_10k', type: 'number', digits: 0, missingRate: 0, value: (e) => e.loanAmount10k },
  { name: 'collateral_ratio', type: 'number', digits: 2, missingRate: 0.008, value: (e) => e.collateralRatio },
  { name: 'owner_overdue_24m', type: 'binary', digits: 0, missingRate: 0.006, value: (e) => e.ownerOverdue24m },
  { name: 'bank_relationship_years', type: 'number', digits: 1, missingRate: 0.004, value: (e) => e.bankRelationshipYears },
  { name: 'industry_risk', type: 'number', digits: 3, missingRate: 0, value: (e) => INDUSTRIES[e.industry].riskIndex },
  { name: 'region_gdp_growth', type: 'number', digits: 3, missingRate: 0, value: (e) => e.regionGdpGrowth },
];

/** Feature column names of the bank files, in order. */
export const BANK_FEATURES: readonly string[] = BANK_COLUMNS.map((c) => c.name);

function formatNumber(x: number, digits: number): string {
  const scale = 10 ** digits;
  const r = Math.round(x * scale) / scale;
  return Object.is(r, -0) ? '0' : String(r);
}

/** One CSV line of the bank view; empty cells mark missing values. */
function bankCsvLine(e: Enterprise, rng: Rng): string {
  const cells: string[] = [e.id, String(e.default12m)];
  const thin = e.employees < 10 ? 1.5 : 1;
  for (const col of BANK_COLUMNS) {
    // Always draw, so that the stream does not depend on which cells end up missing.
    const missing = rng.next() < col.missingRate * thin;
    cells.push(missing ? '' : formatNumber(col.value(e), col.digits));
  }
  return cells.join(',');
}

export function bankDatasetSpec(path: string): CsvDatasetSpec {
  return {
    path,
    delimiter: ',',
    id_column: ID_COLUMN,
    label_column: LABEL_COLUMN,
    features: BANK_COLUMNS.map((c) => ({ name: c.name, type: c.type, missing: 'impute' as const })),
    duplicate_ids: 'reject',
    missing_values: ['', 'NA', 'N/A', 'NaN', 'null', 'NULL'],
  };
}

function bankCsv(rows: readonly Enterprise[], rng: Rng): string {
  const lines = [[ID_COLUMN, LABEL_COLUMN, ...BANK_FEATURES].join(',')];
  for (const e of rows) lines.push(bankCsvLine(e, rng));
  return lines.join('\n') + '\n';
}

export interface HorizontalSynthOptions {
  seed: number;
  /** Rows of bank-east, bank-west, bank-north. Default [3000, 2200, 1600]. */
  rowsPerBank?: number[];
  /** Rows of the held-out test set, drawn from the union of the banks' borrower populations. Default 3000. */
  testRows?: number;
}

export interface SynthFile {
  party: string;
  /** Absolute or outDir-relative path of the written file. */
  path: string;
  rows: number;
  badRate: number;
  /** The `data` section of a participant config; `spec.path` is the file's base name. */
  spec: CsvDatasetSpec;
}

export interface HorizontalSynthResult {
  parties: SynthFile[];
  test: SynthFile;
  features: string[];
}

export const HORIZONTAL_BANKS = ['bank-east', 'bank-west', 'bank-north'] as const;

/** Generate the three banks' borrowers and a held-out test set (all in memory). */
export function generateHorizontal(opts: HorizontalSynthOptions): { banks: { party: string; rows: Enterprise[] }[]; test: Enterprise[] } {
  const rowsPerBank = opts.rowsPerBank ?? [3000, 2200, 1600];
  const testRows = opts.testRows ?? 3000;
  if (rowsPerBank.length !== HORIZONTAL_BANKS.length) {
    throw new RangeError(`rowsPerBank needs ${HORIZONTAL_BANKS.length} entries (${HORIZONTAL_BANKS.join(', ')}), got ${rowsPerBank.length}`);
  }
  for (const n of [...rowsPerBank, testRows]) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`row counts must be positive integers, got ${n}`);
  }
  const taken = new Set<string>();
  // Each bank and the test set draw from their own sub-stream of the seed.
  const banks = HORIZONTAL_BANKS.map((party, k) => ({
    party,
    rows: generateEnterprises(rowsPerBank[k]!, new Rng(opts.seed, k + 1), BANK_PROFILES[party], taken),
  }));
  // Test set: the union population, i.e. each row comes from bank k's borrower population with probability
  // proportional to that bank's size; the rows are then shuffled.
  const testRng = new Rng(opts.seed, 100);
  const counts = HORIZONTAL_BANKS.map(() => 0);
  for (let i = 0; i < testRows; i++) counts[testRng.categorical(rowsPerBank)]!++;
  const test: Enterprise[] = [];
  HORIZONTAL_BANKS.forEach((party, k) => {
    test.push(...generateEnterprises(counts[k]!, testRng, BANK_PROFILES[party], taken));
  });
  for (let i = test.length - 1; i > 0; i--) {
    const j = testRng.int(i + 1);
    [test[i], test[j]] = [test[j]!, test[i]!];
  }
  return { banks, test };
}

function badRate(rows: readonly Enterprise[]): number {
  let bad = 0;
  for (const e of rows) bad += e.default12m;
  return rows.length ? bad / rows.length : 0;
}

/**
 * Write `<outDir>/bank-east.csv`, `bank-west.csv`, `bank-north.csv` (same columns, disjoint enterprises, different
 * portfolios) and `<outDir>/test.csv` (held out, from the union population).
 */
export async function writeHorizontalSynth(outDir: string, opts: HorizontalSynthOptions): Promise<HorizontalSynthResult> {
  const { banks, test } = generateHorizontal(opts);
  await mkdir(outDir, { recursive: true });
  const files: { party: string; rows: Enterprise[] }[] = [...banks, { party: 'test', rows: test }];
  const written: SynthFile[] = [];
  for (const [k, { party, rows }] of files.entries()) {
    const name = `${party}.csv`;
    const path = join(outDir, name);
    await writeFile(path, bankCsv(rows, new Rng(opts.seed, 200 + k)), 'utf8');
    written.push({ party, path, rows: rows.length, badRate: badRate(rows), spec: bankDatasetSpec(name) });
  }
  return { parties: written.slice(0, banks.length), test: written[banks.length]!, features: [...BANK_FEATURES] };
}
