import { expect } from 'vitest';
import { FedcreditError } from '../../src/errors.js';

/** Run `fn`, expect it to throw a FedcreditError with this code (and message pattern); return the error. */
export function expectCode(fn: () => unknown, code: string, pattern?: RegExp): FedcreditError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `a FedcreditError ${code} should be thrown`).toBeInstanceOf(FedcreditError);
  expect((caught as FedcreditError).code).toBe(code);
  if (pattern) expect((caught as FedcreditError).message).toMatch(pattern);
  return caught as FedcreditError;
}
