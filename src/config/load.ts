import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ErrorCode, FedcreditError } from '../errors.js';

/** Turn a zod issue path into the dotted field name a user sees in their YAML (`data.features[2].name`). */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(top level)';
}

/** The value at a zod issue path in the parsed config, and whether the field is there at all. */
function valueAt(root: unknown, path: readonly PropertyKey[]): { present: boolean; value?: unknown } {
  let at: unknown = root;
  for (const key of path) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key as PropertyKey)) return { present: false };
    at = (at as Record<PropertyKey, unknown>)[key as PropertyKey];
  }
  return { present: at !== undefined, value: at };
}

/**
 * Validate a parsed value against a schema; on failure throw one FedcreditError that lists every problem as
 * `file: field: what was wrong`, so a user fixes them all in one go.
 */
export function validateConfig<S extends z.ZodType>(schema: S, value: unknown, source: string, kind: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    let found = '';
    if (issue.code === 'invalid_type') {
      const at = valueAt(value, issue.path);
      found = !at.present ? ' (the field is missing)' : at.value !== null && typeof at.value === 'object' ? '' : ` (it is ${JSON.stringify(at.value)?.slice(0, 60) ?? String(at.value)})`;
    }
    return `  ${source}: field \`${fieldName(issue.path)}\`: ${issue.message}${found}`;
  });
  throw new FedcreditError(
    ErrorCode.CONFIG_INVALID,
    `invalid ${kind} config:\n${lines.join('\n')}`,
    `edit ${source} and correct the fields listed above; docs/configuration.md describes every field of a ${kind} config`,
  );
}

/** Read and validate a YAML config file. Errors name the file, the field and the fix. */
export function loadYamlConfig<S extends z.ZodType>(file: string, schema: S, kind: string): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `cannot read ${kind} config ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      `check the path given to --config; examples/ has a ${kind} config to start from`,
    );
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `${file} is not valid YAML: ${first.message.split('\n')[0]}`,
      'fix the YAML syntax at the line shown (indentation with spaces, `key: value` pairs)',
    );
  }
  return validateConfig(schema, doc.toJS(), file, kind);
}
