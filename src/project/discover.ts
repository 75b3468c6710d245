/**
 * Task discovery: every immediate subdirectory of a suite's directory that
 * holds a task.yaml is a task. Symlinked directories count; a dangling
 * symlink is skipped with a warning (the original panics there). Listing
 * is separate from parsing each file (task-file.ts).
 */
import { readdirSync, statSync } from 'node:fs';
import type { Dirent } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './errors.js';
import type { ConfigWarning } from './errors.js';
import { byCodeUnit } from './env.js';
import type { TaskResult } from './task-file.js';
import type { Task, Where } from './types.js';

/** Where a suite's tasks live. */
export interface SuiteDir {
  /** Suite name with trailing slash. */
  readonly suite: string;
  readonly suiteWhere: Where;
  /** Project directory. */
  readonly dir: string;
  readonly display: (path: string) => string;
}

/** One entry of a suite directory: a task file to parse, or a dangling symlink to warn about. */
export type TaskEntry =
  | { readonly kind: 'file'; readonly suite: string; readonly dirName: string; readonly path: string; readonly display: string }
  | { readonly kind: 'dangling'; readonly dirName: string; readonly display: string };

export function listTaskEntries(s: SuiteDir): TaskEntry[] {
  const suiteDir = join(s.dir, s.suite).replace(/\/+$/, '');
  let dirents: Dirent[];
  try {
    dirents = readdirSync(suiteDir, { withFileTypes: true }).sort((a, b) => byCodeUnit(a.name, b.name));
  } catch (err) {
    throw new ConfigError(`cannot list suite ${s.suite}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? `directory ${s.display(suiteDir)} does not exist` : (err as Error).message}`, s.suiteWhere);
  }
  const entries: TaskEntry[] = [];
  // Paths by concatenation: join() and relative() per task add up over 10,000 tasks.
  const shown = s.display(suiteDir);
  for (const dirent of dirents) {
    const dirName = dirent.name;
    const taskDir = `${suiteDir}/${dirName}`;
    // Only symlinks need a stat (to follow them); a missing task.yaml shows when it is read.
    let isDir = dirent.isDirectory();
    if (dirent.isSymbolicLink()) {
      try {
        isDir = statSync(taskDir).isDirectory();
      } catch {
        entries.push({ kind: 'dangling', dirName, display: `${shown}/${dirName}` });
        continue;
      }
    }
    if (isDir) entries.push({ kind: 'file', suite: s.suite, dirName, path: `${taskDir}/task.yaml`, display: `${shown}/${dirName}/task.yaml` });
  }
  return entries;
}

/** The tasks of parsed entries, in order: warnings collected, the first error thrown. */
export function collectTasks(results: readonly TaskResult[], warnings: ConfigWarning[]): Task[] {
  const tasks: Task[] = [];
  for (const r of results) {
    warnings.push(...r.warnings);
    if (r.error) throw new ConfigError(r.error.detail, r.error.where);
    if (r.task) tasks.push(r.task);
  }
  return tasks;
}
