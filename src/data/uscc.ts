/**
 * Unified social credit code (统一社会信用代码, GB 32100-2015): the 18-character identifier of Chinese enterprises,
 * used as the join key of vertical federation.
 */

/**
 * The 31 characters a USCC may use, in the order of their numeric value 0..30: digits, then capital letters
 * without I, O, S, V, Z (easily confused with digits or other letters).
 */
export const USCC_CHARSET = '0123456789ABCDEFGHJKLMNPQRTUWXY';

/**
 * Weights of positions 1..17: W_i = 3^(i-1) mod 31, i.e. 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10,
 * 30, 28. The check character (position 18) has value C = 31 - (sum of value_i * W_i mod 31), with C = 31 written
 * as 0; the modulus 31 is prime and no weight is 0 mod 31, so any single changed character changes the check.
 */
const USCC_WEIGHTS: readonly number[] = Array.from({ length: 17 }, (_, i) => {
  let w = 1;
  for (let k = 0; k < i; k++) w = (w * 3) % 31;
  return w;
});

/** The organisation-code part (positions 9-17) follows GB 11714: 8 body characters and a mod-11 check character. */
const ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2] as const;

function orgCharValue(ch: string): number {
  // GB 11714 values: digits are themselves, letters A..Z are 10..35 (the whole Latin alphabet).
  const code = ch.charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 90) return code - 55;
  throw new RangeError(`'${ch}' is not a GB 11714 code character`);
}

/** GB 11714 check character for an 8-character organisation-code body: 11 - (sum mod 11), 10 -> 'X', 11 -> '0'. */
export function orgCodeCheckChar(body8: string): string {
  if (body8.length !== 8) throw new RangeError(`an organisation code body has 8 characters, got ${body8.length}`);
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += orgCharValue(body8[i]!) * ORG_WEIGHTS[i]!;
  const c = 11 - (sum % 11);
  return c === 10 ? 'X' : c === 11 ? '0' : String(c);
}

/** The GB 32100-2015 check character for the first 17 characters of a USCC. */
export function usccCheckChar(first17: string): string {
  if (first17.length !== 17) throw new RangeError(`a USCC has 17 characters before its check character, got ${first17.length}`);
  let sum = 0;
  for (let i = 0; i < 17; i++) {
    const v = USCC_CHARSET.indexOf(first17[i]!);
    if (v < 0) throw new RangeError(`'${first17[i]}' (position ${i + 1}) is not a USCC character`);
    sum += v * USCC_WEIGHTS[i]!;
  }
  return USCC_CHARSET[(31 - (sum % 31)) % 31]!;
}

export interface UsccParts {
  /** Position 1, registration authority: '9' = market regulation (工商), '1' = institutional staffing, '5' = civil affairs, ... */
  authority: string;
  /** Position 2, entity type under that authority: for '9', '1' = enterprise, '2' = individual business, '3' = farmers' cooperative. */
  entityType: string;
  /** Positions 3-8: GB/T 2260 administrative division code of the registering authority. */
  division: string;
  /** Positions 9-16: organisation-code body (8 characters); position 17, its GB 11714 check, is computed. */
  orgBody: string;
}

/**
 * Build a USCC. Given the first 17 characters as a string, appends the check character; given the parts, also
 * computes the organisation-code check character (position 17) first.
 */
export function uscc(first17OrParts: string | UsccParts): string {
  let first17: string;
  if (typeof first17OrParts === 'string') {
    first17 = first17OrParts;
  } else {
    const { authority, entityType, division, orgBody } = first17OrParts;
    if (!/^\d{6}$/.test(division)) throw new RangeError(`the division code has 6 digits, got '${division}'`);
    first17 = authority + entityType + division + orgBody + orgCodeCheckChar(orgBody);
  }
  return first17 + usccCheckChar(first17);
}

const USCC_PATTERN = /^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$/;

/** True when `code` has the GB 32100-2015 shape (18 characters of the USCC set, digits at 3-8) and check character. */
export function isValidUscc(code: string): boolean {
  if (typeof code !== 'string' || !USCC_PATTERN.test(code)) return false;
  return usccCheckChar(code.slice(0, 17)) === code[17];
}
