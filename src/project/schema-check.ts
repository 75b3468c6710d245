/**
 * Validation of spread.yaml and task.yaml against the JSON Schemas in
 * schemas/ with ajv. Type errors become one-line ConfigErrors at the
 * offending node; unknown keys become warnings (errors under `strict`),
 * because a typo such as `kil-timeout` silently doing nothing is the most
 * common way such files go wrong.
 */
import type { ErrorObject } from 'ajv';
import { ConfigError } from './errors.js';
import type { ConfigWarning } from './errors.js';
import * as generated from './schema-validators.js';
import { locate, locateKey, whereOfNode } from './yaml-source.js';
import type { YamlSource } from './yaml-source.js';

export type SchemaName = 'spread' | 'task';

interface Validate {
  (value: unknown): boolean;
  errors?: ErrorObject[] | null;
}

interface Compiled {
  readonly validators: Record<SchemaName, Validate>;
  readonly schemas: Record<SchemaName, Record<string, unknown>>;
}

/** The schemas and their validators, precompiled by the build (scripts/build-validators.mjs): no ajv at run time. */
const compiled: Compiled = { validators: { spread: generated.spread, task: generated.task }, schemas: generated.schemas };
const schemaOf = (name: SchemaName): Record<string, unknown> => compiled.schemas[name];

/** Check a parsed file; throws the first error (in file order) and returns the warnings. */
export function checkSchema(src: YamlSource, name: SchemaName, value: unknown, strict = false): ConfigWarning[] {
  const validate = compiled.validators[name];
  if (validate(value)) return [];
  const warnings: ConfigWarning[] = [];
  const errors: { at: number; error: ConfigError }[] = [];
  for (const e of validate.errors ?? []) {
    const path = splitPointer(e.instancePath);
    if (e.keyword === 'additionalProperties') {
      const key = String(e.params['additionalProperty']);
      const { node, via } = locateKey(src, path, key);
      const warning = { message: unknownKeyMessage(key, path, knownKeys(schemaOf(name), e.schemaPath)), where: whereOfNode(src, node, via) };
      if (strict) errors.push({ at: node?.range?.[0] ?? 0, error: new ConfigError(warning.message, warning.where) });
      else warnings.push(warning);
      continue;
    }
    if (e.keyword === 'pattern' && e.schemaPath.includes('propertyNames')) continue;
    const { node, via } = e.keyword === 'propertyNames' ? locateKey(src, path, String(e.params['propertyName'])) : locate(src, path);
    errors.push({ at: node?.range?.[0] ?? 0, error: new ConfigError(describe(e, path), whereOfNode(src, node, via)) });
  }
  errors.sort((a, b) => a.at - b.at);
  if (errors[0]) throw errors[0].error;
  return onePerPlace(warnings);
}

/** A key written once at an anchor and merged into several maps is reported once, at the first use. */
function onePerPlace(warnings: readonly ConfigWarning[]): ConfigWarning[] {
  const seen = new Set<string>();
  return warnings.filter((w) => {
    const id = `${w.where.line}:${w.where.column}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

const splitPointer = (pointer: string): string[] =>
  pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));

function fieldName(path: readonly string[]): string {
  const last = path[path.length - 1];
  const parent = path[path.length - 2];
  if (parent === 'environment') return `environment variable ${last}`;
  if (last === undefined) return 'the file';
  if (/^\d+$/.test(last)) return parent === 'systems' ? 'each system' : `each entry of ${parent ?? 'the list'}`;
  return last;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  array: 'a list', object: 'a map of keys to values', integer: 'a whole number', boolean: 'true or false',
  string: 'text', number: 'a number',
};

function describeType(types: string | string[]): string {
  const list = (Array.isArray(types) ? types : [types]).filter((t) => t !== 'null');
  if (list.includes('string') && list.length >= 2 && !list.includes('array') && !list.includes('object')) return 'a single value (text), not a list or map';
  if (list.includes('object') && list.includes('string')) return 'a name or a one-key map name: {options}';
  return list.map((t) => TYPE_WORDS[t] ?? t).join(' or ');
}

function describe(e: ErrorObject, path: readonly string[]): string {
  const field = fieldName(path);
  switch (e.keyword) {
    case 'type':
      return `${field} must be ${describeType(e.params['type'] as string | string[])}`;
    case 'propertyNames':
      return `invalid variable name: ${JSON.stringify(e.params['propertyName'])} (use letters, digits and _, optionally with a /variant,variant suffix)`;
    case 'minProperties':
    case 'maxProperties':
      return `${field} must be a name or a one-key map name: {options}, not a map of ${countKeys(e)} keys`;
    default:
      return `${field} ${e.message ?? 'is invalid'}`;
  }
}

const countKeys = (e: ErrorObject): string => (e.keyword === 'minProperties' ? 'no' : 'several');

/** The keys allowed where an unknown one was found, from the schema path of the error. */
function knownKeys(schema: Record<string, unknown>, schemaPath: string): string[] {
  let node: unknown = schema;
  for (const part of splitPointer(schemaPath.replace(/^#/, '')).slice(0, -1)) node = (node as Record<string, unknown> | undefined)?.[part];
  return Object.keys(((node as Record<string, unknown> | undefined)?.['properties'] as object | undefined) ?? {});
}

function unknownKeyMessage(key: string, path: readonly string[], known: readonly string[]): string {
  const close = nearest(key, known);
  const where = path.length === 0 ? '' : ` in ${path.join('.')}`;
  return `unknown key ${JSON.stringify(key)}${where}${close ? ` (did you mean ${JSON.stringify(close)}?)` : ' (it is ignored)'}`;
}

/** The known key within edit distance 2 of a typo, if any. */
function nearest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
