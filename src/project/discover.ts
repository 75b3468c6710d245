/**
 * Task discovery: every immediate subdirectory of a suite's directory that
 * holds a task.yaml is a task. Symlinked directories count; a dangling
 * symlink is skipped with a warning (the original panics there).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './errors.js';
import type { ConfigWarning } from './errors.js';
import { FieldReader } from './field-reader.js';
import { checkSelectionLists } from './selection-lists.js';
import { TASK_NAME } from './names.js';
import { checkSchema } from './schema-check.js';
import { isMap, parseYaml } from './yaml-source.js';
import { byCodeUnit } from './env.js';
import type { Task, Where } from './types.js';

export interface DiscoverInput {
  /** Suite name with trailing slash. */
  readonly suite: string;
  readonly suiteWhere: Where;
  /** Project directory. */
  readonly dir: string;
  readonly display: (path: string) => string;
  readonly backendNames: ReadonlySet<string>;
  readonly warnings: ConfigWarning[];
  readonly strict: boolean | undefined;
}

export function discoverTasks(input: DiscoverInput): Task[] {
  const suiteDir = join(input.dir, input.suite);
  let names: string[];
  try {
    names = readdirSync(suiteDir).sort(byCodeUnit);
  } catch (err) {
    throw new ConfigError(`cannot list suite ${input.suite}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? `directory ${input.display(suiteDir)} does not exist` : (err as Error).message}`, input.suiteWhere);
  }
  const tasks: Task[] = [];
  for (const name of names) {
    const taskDir = join(suiteDir, name);
    let isDir: boolean;
    try {
      isDir = statSync(taskDir).isDirectory();
    } catch {
      input.warnings.push({ message: `skipping ${name}: dangling symlink`, where: { file: input.display(taskDir) } });
      continue;
    }
    if (!isDir) continue;
    const file = join(taskDir, 'task.yaml');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new ConfigError(`cannot read: ${(err as Error).message}`, { file: input.display(file) });
    }
    tasks.push(readTask(input, name, input.display(file), text));
  }
  return tasks;
}

function readTask(input: DiscoverInput, dirName: string, file: string, text: string): Task {
  const src = parseYaml(file, text);
  input.warnings.push(...checkSchema(src, 'task', src.value, input.strict));
  const top = { file, line: 1, column: 1 };
  const r = FieldReader.of(src, src.doc.contents, top);
  const name = input.suite + dirName;
  if (!TASK_NAME.test(name)) throw new ConfigError(`invalid task name: ${JSON.stringify(name)} (rename the directory to lower case letters and digits, with . _ or - between them)`, top);
  if (src.doc.contents !== null && !isMap(src.doc.contents)) throw new ConfigError('task.yaml must be a map of keys such as summary and execute', top);
  const summary = r.str('summary').trim();
  if (summary === '') throw new ConfigError('missing summary (every task needs a one-line summary)', top);
  const lists = checkSelectionLists(r, name, input.backendNames, input.warnings);
  const artifacts = r.list('artifacts');
  for (const path of artifacts) {
    if (!isCleanRelative(path)) {
      throw new ConfigError(`${name} has improper artifact path: ${path} (use a clean path relative to the task directory)`, r.where('artifacts'));
    }
  }
  const samples = r.int('samples') ?? 0;
  return {
    name, suite: input.suite, summary, details: r.str('details'), ...lists,
    env: r.env(), samples: samples === 0 ? 1 : samples,
    prepare: r.script('prepare'), restore: r.script('restore'), execute: r.str('execute'), debug: r.script('debug'),
    artifacts,
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

/** Go's path.Clean for relative paths. */
export function cleanPath(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else out.push(part);
  }
  return (path.startsWith('/') ? '/' : '') + out.join('/') || (path.startsWith('/') ? '/' : '.');
}
