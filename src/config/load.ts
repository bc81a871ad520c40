import { readFileSync } from 'node:fs';
import { distance as levenshtein } from 'fastest-levenshtein';
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

/** Zod's internal definition of a schema node: enough of it to find the fields an object accepts. */
interface SchemaNode {
  _zod: { def: { type: string; [k: string]: unknown }; propValues?: Record<string, Set<unknown>> };
}

/**
 * The field names the object at `path` accepts, following the schema through wrappers, lists, maps and unions (a
 * discriminated union by the value's own discriminator); empty when the path leads to no object.
 */
function fieldsAt(schema: SchemaNode, path: readonly PropertyKey[], value: unknown): string[] {
  const def = schema._zod.def;
  if (def.innerType) return fieldsAt(def.innerType as SchemaNode, path, value);
  if (def.type === 'pipe') return fieldsAt(def.in as SchemaNode, path, value);
  if (def.type === 'union') {
    const disc = def.discriminator as string | undefined;
    const own = disc && value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[disc] : undefined;
    const options = (def.options as SchemaNode[]).filter((o) => own === undefined || (o._zod.propValues?.[disc!]?.has(own) ?? true));
    return [...new Set(options.flatMap((o) => fieldsAt(o, path, value)))];
  }
  const [head, ...rest] = path;
  const child = value !== null && typeof value === 'object' && head !== undefined ? (value as Record<PropertyKey, unknown>)[head] : undefined;
  if (def.type === 'object') {
    const shape = def.shape as Record<string, SchemaNode>;
    if (head === undefined) return Object.keys(shape);
    const next = shape[String(head)];
    return next ? fieldsAt(next, rest, child) : [];
  }
  if (head === undefined) return [];
  if (def.type === 'array') return fieldsAt(def.element as SchemaNode, rest, child);
  if (def.type === 'record') return fieldsAt(def.valueType as SchemaNode, rest, child);
  return [];
}

/** The accepted field a misspelt key most likely meant (`lable_column` → `label_column`), if one is close enough. */
export function likelyField(key: string, fields: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: { field: string; distance: number } | undefined;
  for (const field of fields) {
    const distance = levenshtein(lower, field.toLowerCase());
    // Levenshtein counts two letters swapped (`tpye`) as two edits: names of four letters or more allow two. The
    // shorter of the two names sets it, so a short key is not taken for a longer field (`id` for `kind`).
    const shorter = Math.min(lower.length, field.length);
    const allowed = shorter < 4 ? 1 : Math.max(2, Math.floor(shorter / 4));
    if (distance <= allowed && (!best || distance < best.distance)) best = { field, distance };
  }
  return best?.field;
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
    } else if (issue.code === 'unrecognized_keys') {
      const fields = fieldsAt(schema as unknown as SchemaNode, issue.path, value);
      const meant = issue.keys.map((k) => [k, likelyField(k, fields)] as const).filter(([, f]) => f !== undefined);
      found = meant.map(([k, f]) => (issue.keys.length === 1 ? ` (did you mean \`${f}\`?)` : ` ("${k}": did you mean \`${f}\`?)`)).join('');
    }
    return `  ${source}: field \`${fieldName(issue.path)}\`: ${issue.message}${found}`;
  });
  throw new FedcreditError(
    ErrorCode.CONFIG_INVALID,
    `invalid ${kind} config:\n${lines.join('\n')}`,
    `edit ${source} and correct the fields listed above; docs/configuration.md describes every field of a ${kind} config`,
  );
}

/**
 * Read and validate a YAML config file. Errors name the file, the field and the fix; `given` says where the path came
 * from, for the fix of a file that cannot be read.
 */
export function loadYamlConfig<S extends z.ZodType>(file: string, schema: S, kind: string, given = '--config'): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `cannot read ${kind} config ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      `check the path given to ${given}; examples/ has a ${kind} config to start from`,
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
