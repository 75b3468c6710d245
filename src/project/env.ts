/**
 * Environment composition (spec §4.3): ordered pairs, where a later definition
 * of the same key replaces the value and moves the key to the end, then
 * variant resolution, which turns `FOO/a,b` into `FOO` for variants a and b.
 */
import { splitVariants } from './names.js';
import type { Env } from './types.js';

export const EMPTY_ENV: Env = Object.freeze([]);

/** Set a key: a later definition wins and moves last. */
export const setVar = (env: Env, key: string, value: string): Env =>
  [...env.filter(([k]) => k !== key), [key, value] as const];

export const getVar = (env: Env, key: string): string | undefined => {
  for (let i = env.length - 1; i >= 0; i--) if (env[i]![0] === key) return env[i]![1];
  return undefined;
};

/** Concatenate levels in cascade order with set semantics. */
export function composeEnv(levels: readonly Env[]): Env {
  const map = new Map<string, string>();
  for (const level of levels) {
    for (const [k, v] of level) {
      map.delete(k);
      map.set(k, v);
    }
  }
  return [...map];
}

/**
 * Resolve the variant on a composed environment. A key whose suffix lists the
 * variant becomes the bare name in its own position and removes the bare key
 * wherever it was; keys suffixed for other variants go away. Where two
 * spellings match (`FOO/a` and `FOO/a,b`) the later one wins (spec §12).
 */
export function resolveVariant(env: Env, variant: string): Env {
  const winner = new Map<string, number>();
  const parts = env.map(([k]) => splitVariants(k));
  parts.forEach(([name, variants], i) => {
    if (variants.includes(variant)) winner.set(name, i);
  });
  const out: [string, string][] = [];
  env.forEach(([, value], i) => {
    const [name, variants] = parts[i]!;
    if (variants.length === 0) {
      if (!winner.has(name)) out.push([name, value]);
    } else if (winner.get(name) === i) {
      out.push([name, value]);
    }
  });
  return out;
}

/** The variant suffixes used by an environment's keys, sorted and unique. */
export function envVariants(env: Env): string[] {
  const seen = new Set<string>();
  for (const [k] of env) for (const v of splitVariants(k)[1]) seen.add(v);
  return [...seen].sort(byCodeUnit);
}

export const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * `export K="V"`, or `export K=V` when V is empty or starts with a quote.
 * Values are not escaped: `$VAR`, backticks and `$(...)` expand on the
 * machine, as the original does (its issue #27; kept for compatibility).
 */
export const exportLine = ([key, value]: readonly [string, string]): string =>
  value === '' || value.startsWith('"') || value.startsWith("'") ? `export ${key}=${value}` : `export ${key}="${value}"`;
