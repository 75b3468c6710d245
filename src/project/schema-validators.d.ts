/**
 * The module scripts/build-validators.mjs writes at build time into
 * dist/src/project/schema-validators.js: ajv's standalone validators of
 * schemas/*.schema.json, and the schemas themselves (for messages).
 */
import type { ErrorObject } from 'ajv';

interface Validate {
  (value: unknown): boolean;
  errors?: ErrorObject[] | null;
}

export declare const spread: Validate;
export declare const task: Validate;
export declare const schemas: { readonly spread: Record<string, unknown>; readonly task: Record<string, unknown> };
