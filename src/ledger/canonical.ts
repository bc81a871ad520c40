/**
 * Canonical JSON of an entry body: the same value always gives the same string, so the string can be signed.
 *
 *   - objects: keys sorted by UTF-16 code units (JavaScript's default sort), no whitespace, properties whose value
 *     is `undefined` left out (as JSON.stringify does);
 *   - numbers: as JavaScript prints them (JSON.stringify: 1, 0.1, 1e+21, -0 as 0); NaN and ±Infinity are refused;
 *   - strings, true, false, null: as JSON.stringify writes them;
 *   - anything else (Uint8Array and other binary, bigint, Date, Map, class instances, functions, `undefined` in an
 *     array, cycles) is refused: callers hex-encode bytes and convert the rest to plain JSON values first.
 */
import { LedgerError } from './errors.js';

export function canonicalJson(value: unknown): string {
  return write(value, 'body', new Set());
}

function refuse(path: string, why: string): never {
  throw new LedgerError('invalid_event', `cannot record ${path}: ${why}`);
}

function write(value: unknown, path: string, open: Set<object>): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) refuse(path, `${value} is not a JSON number (record null or a string instead)`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) refuse(path, 'binary data is not allowed in a ledger body; hex-encode it, or store it as a blob');
      if (open.has(value)) refuse(path, 'the value contains a cycle');
      open.add(value);
      try {
        if (Array.isArray(value)) return `[${value.map((v, i) => (v === undefined ? refuse(`${path}[${i}]`, 'undefined is not a JSON value') : write(v, `${path}[${i}]`, open))).join(',')}]`;
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) refuse(path, `a ${proto?.constructor?.name ?? 'non-plain'} object is not a plain JSON object; convert it first`);
        const obj = value as Record<string, unknown>;
        const keys = Object.keys(obj)
          .filter((k) => obj[k] !== undefined)
          .sort();
        return `{${keys.map((k) => `${JSON.stringify(k)}:${write(obj[k], `${path}.${k}`, open)}`).join(',')}}`;
      } finally {
        open.delete(value);
      }
    }
    default:
      return refuse(path, `a ${typeof value} is not a JSON value`);
  }
}
