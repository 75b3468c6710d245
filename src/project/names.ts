/** The original's name rules, in one place. */

export const PROJECT_OR_BACKEND_NAME = /^[a-z0-9]+(?:[-._][a-z0-9]+)*$/;
/** A dash is mandatory; `*` is allowed so lists can hold globs. */
export const SYSTEM_NAME = /^[a-z*]+-[a-z0-9*]+(?:[-.][a-z0-9*]+)*$/;
export const SUITE_NAME = /^(?:[a-z0-9]+(?:[-._][a-z0-9]+)*\/)+$/;
export const TASK_NAME = /^(?:[a-z0-9]+(?:[-._][a-z0-9]+)*\/)+[a-z0-9]+(?:[-._][a-z0-9]+)*$/;
/** `NAME` or `NAME/variant,variant`; variant suffixes use only [A-Za-z0-9_]. */
export const ENV_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*(?:\/[a-zA-Z0-9_]+(?:,[a-zA-Z0-9_]+)*)?$/;

/** `FOO/a,b` -> ['FOO', ['a', 'b']]; `FOO` -> ['FOO', []]. */
export function splitVariants(key: string): [name: string, variants: string[]] {
  const i = key.lastIndexOf('/');
  return i < 0 ? [key, []] : [key.slice(0, i), key.slice(i + 1).split(',')];
}

/** Strip one leading `+` or `-` from a list entry. */
export const bareEntry = (entry: string): string =>
  entry.startsWith('+') || entry.startsWith('-') ? entry.slice(1) : entry;

/**
 * Go's path.Clean, which the original applies to the remote path and
 * artifact paths: no empty or `.` parts, `..` resolved, never above `/`.
 */
export function cleanPath(path: string): string {
  const rooted = path.startsWith('/');
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else if (part !== '..' || !rooted) out.push(part);
  }
  return rooted ? `/${out.join('/')}` : out.join('/') || '.';
}
