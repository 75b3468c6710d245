/**
 * One task.yaml: parsed, schema-checked and turned into a Task. Never
 * throws: the result carries the task, the warnings and the first error, so
 * the loader reports them in file order.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import type { TaskEntry } from './discover.js';
import { ConfigError } from './errors.js';
import type { ConfigWarning } from './errors.js';
import { FieldReader } from './field-reader.js';
import { cleanPath, TASK_NAME } from './names.js';
import { checkSchema } from './schema-check.js';
import { checkSelectionLists } from './selection-lists.js';
import type { Instances, Task, Where } from './types.js';
import { decodeYaml, isMap, isScalar, parseYaml } from './yaml-source.js';

export interface TaskOptions {
  readonly backendNames: readonly string[];
  readonly strict?: boolean | undefined;
}

export interface TaskResult {
  readonly task?: Task;
  readonly warnings: readonly ConfigWarning[];
  readonly error?: { readonly detail: string; readonly where?: Where };
}

export function parseTaskEntry(entry: TaskEntry, o: TaskOptions): TaskResult {
  if (entry.kind === 'dangling') return { warnings: [{ message: `skipping ${entry.dirName}: dangling symlink`, where: { file: entry.display } }] };
  const warnings: ConfigWarning[] = [];
  try {
    let bytes: Buffer;
    try {
      bytes = readSmallFile(entry.path);
    } catch (err) {
      // A directory without task.yaml is not a task (the original skips it too).
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { warnings };
      throw new ConfigError(`cannot read: ${(err as Error).message}`, { file: entry.display });
    }
    const text = decodeYaml(entry.display, bytes);
    return { task: readTask(entry, text, o, warnings), warnings };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { warnings, error: { detail: err.detail, ...(err.where ? { where: err.where } : {}) } };
  }
}

/** One buffer for every task file: open, one read, close (readFileSync also stats, and allocates per file). */
const buffer = Buffer.allocUnsafe(64 * 1024);

/** A task file's bytes (valid until the next call: decode them at once); most are small, and there are thousands of them. */
function readSmallFile(path: string): Buffer {
  const fd = openSync(path, 'r');
  let length: number;
  try {
    length = readSync(fd, buffer, 0, buffer.length, null);
  } finally {
    closeSync(fd);
  }
  // A read that fills the buffer may not be the whole file.
  return length < buffer.length ? buffer.subarray(0, length) : readFileSync(path);
}

function readTask(entry: TaskEntry & { kind: 'file' }, text: string, o: TaskOptions, warnings: ConfigWarning[]): Task {
  const file = entry.display;
  const src = parseYaml(file, text);
  warnings.push(...checkSchema(src, 'task', src.value, o.strict));
  const top = { file, line: 1, column: 1 };
  const r = FieldReader.of(src, src.contents, top);
  const name = entry.suite + entry.dirName;
  if (!TASK_NAME.test(name)) throw new ConfigError(`invalid task name: ${JSON.stringify(name)} (rename the directory to lower case letters and digits, with . _ or - between them)`, top);
  if (src.contents !== null && !isMap(src.contents)) throw new ConfigError('task.yaml must be a map of keys such as summary and execute', top);
  const summary = r.str('summary').trim();
  if (summary === '') throw new ConfigError('missing summary (every task needs a one-line summary)', top);
  const lists = checkSelectionLists(r, name, new Set(o.backendNames), warnings);
  const artifacts = r.list('artifacts');
  for (const path of artifacts) {
    if (!isCleanRelative(path)) {
      throw new ConfigError(`${name} has improper artifact path: ${path} (use a clean path relative to the task directory)`, r.where('artifacts'));
    }
  }
  const samples = r.int('samples') ?? 0;
  const instances = readInstances(r, name);
  return {
    name, suite: entry.suite, summary, details: r.str('details'), ...lists,
    env: r.env(), samples: samples === 0 ? 1 : samples,
    prepare: r.script('prepare'), restore: r.script('restore'), execute: r.str('execute'), debug: r.script('debug'),
    artifacts,
    ...(instances ? { instances } : {}),
    warnTimeout: r.timeout('warn-timeout'), killTimeout: r.timeout('kill-timeout'),
    priority: r.int('priority'), manual: r.bool('manual'),
    where: top,
  };
}

/**
 * Relative, already clean as Go's filepath.Clean would leave it, and not
 * climbing out. A trailing slash is tolerated: the original's README writes
 * `some/dir/` although its own check rejects it.
 */
function isCleanRelative(path: string): boolean {
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  if (p.startsWith('/') || p === '..' || p.startsWith('../')) return false;
  return p === cleanPath(p);
}

const ROLE_NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

/**
 * `instances: N` (N machines, told apart by $SPREAD_INSTANCE) or
 * `instances: {server: 1, client: 2}` (the same, with $SPREAD_ROLE naming
 * each one's part, instances numbered in the order the roles are written).
 * One instance is an ordinary task.
 */
function readInstances(r: FieldReader, task: string): Instances | undefined {
  const node = r.raw('instances');
  if (node === null || (isScalar(node) && node.value === null)) return undefined;
  const where = r.where('instances');
  const hint = '(use a whole number of machines such as 3, or roles with counts such as {server: 1, client: 2})';
  const roles: string[] = [];
  let count: number;
  if (isMap(node)) {
    const map = r.map('instances');
    for (const [role, , at] of map.entries()) {
      if (!ROLE_NAME.test(role)) throw new ConfigError(`${task} has invalid role name ${JSON.stringify(role)} in instances (use lower case letters and digits, with - between them)`, at);
      const n = map.int(role);
      if (n === undefined || n < 1) throw new ConfigError(`${task} needs a count of 1 or more for role ${JSON.stringify(role)} in instances`, map.where(role));
      for (let i = 0; i < n; i++) roles.push(role);
    }
    count = roles.length;
    if (count === 0) throw new ConfigError(`${task} has no roles in instances ${hint}`, where);
  } else {
    const n = r.int('instances');
    if (n === undefined || n < 1) throw new ConfigError(`${task} has invalid instances ${hint}`, where);
    count = n;
  }
  return count > 1 ? { count, roles, where } : undefined;
}
