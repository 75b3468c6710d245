/**
 * -junit, -json and -html: their paths checked before the run starts (parent
 * directories created, the place writable), the reports written when the run
 * ends, each whole or not at all (a temporary file renamed), and each on its
 * own: one that fails is told on stderr and makes the run unsuccessful, but
 * never stops the other or the run.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Reporter } from '../events.js';
import { isolate } from '../report/isolate.js';
import { jsonReporter } from '../report/json.js';
import { junitReporter } from '../report/junit.js';
import { logsReporter } from '../report/logs.js';
import { htmlReporter } from '../report/html/reporter.js';
import type { PastJob } from '../report/html/collect.js';
import { writeAtomically } from '../run/write-atomically.js';
import { UsageError } from './options.js';

export interface ReportFiles {
  readonly reporters: readonly Reporter[];
  /** One line per report that could not be written. */
  readonly errors: readonly string[];
}

const KINDS = [
  { flag: 'junit', title: 'JUnit', make: junitReporter },
  { flag: 'json', title: 'JSON', make: jsonReporter },
] as const;

/** What history knew of a job before the run (for the HTML report's trends and flaky jobs). */
export type PastJobs = (jobName: string) => PastJob | undefined;

/**
 * Checks the report paths now (throws a UsageError naming the flag) and
 * returns their reporters; with `logs` (-logs=DIR), the logs reporter too,
 * and the reports point at its files.
 */
export function reportFiles(values: Record<string, unknown>, cwd: string, past?: PastJobs, logs?: string): ReportFiles {
  const errors: string[] = [];
  const reporters: Reporter[] = [];
  const host = hostname();
  for (const { flag, title, make } of KINDS) {
    const value = values[flag];
    if (typeof value !== 'string' || value === '') continue;
    const path = resolve(cwd, value);
    checkWritable(flag, path);
    const write = (text: string) => writeAtomically(path, text);
    reporters.push(isolate(make(write, { hostname: host, ...(logs ? { logs } : {}) }), (err) => errors.push(`cannot write ${title} report ${value}: ${err.message}`)));
  }
  if (logs !== undefined) {
    try {
      reporters.push(logsReporter({ dir: logs, warn: (message) => errors.push(message) }));
    } catch (err) {
      throw new UsageError(`-logs=${logs}: ${(err as Error).message}`);
    }
  }
  const html = values['html'];
  if (typeof html === 'string' && html !== '') {
    const path = resolve(cwd, html);
    checkWritable('html', path);
    const report = htmlReporter({ file: path, write: (text) => writeAtomically(path, text), ...(past ? { past } : {}) });
    reporters.push(isolate(report, (err) => errors.push(`cannot write HTML report ${html}: ${err.message}`)));
  }
  return { reporters, errors };
}

function checkWritable(flag: string, path: string): void {
  const fail = (why: string) => new UsageError(`-${flag}=${path}: ${why}`);
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw fail(`cannot create directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
    if (!isDir) accessSync(path, constants.W_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fail(`cannot write the file: ${(err as NodeJS.ErrnoException).code}`);
  }
  if (isDir) throw fail('is a directory');
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw fail(`cannot write in ${dir}: ${(err as NodeJS.ErrnoException).code}`);
  }
}

