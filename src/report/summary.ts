/**
 * The run's summary (spec §6) as a pure reduction of `result` events, and
 * its rendering with the original's titles, entries and order.
 */
import type { Outcome, RunEvent } from '../events.js';
import { OUTCOMES } from '../events.js';
import type { Job } from '../project/types.js';
import { byCodeUnit } from '../project/env.js';

export type Summary = ReadonlyMap<Outcome, readonly Job[]>;

export function summarize(events: Iterable<RunEvent>): Summary {
  const summary = new Map<Outcome, Job[]>(OUTCOMES.map((o) => [o, []]));
  for (const e of events) if (e.type === 'result') summary.get(e.outcome)!.push(e.job);
  return summary;
}

/** A run succeeds when nothing was aborted and nothing failed. */
export const isSuccessful = (summary: Summary): boolean =>
  OUTCOMES.every((o) => o === 'task-done' || (summary.get(o)?.length ?? 0) === 0);

const TITLES: Readonly<Record<Exclude<Outcome, 'task-done' | 'task-abort'>, string>> = {
  'task-error': 'Failed tasks',
  'task-prepare-error': 'Failed task prepare',
  'task-restore-error': 'Failed task restore',
  'suite-prepare-error': 'Failed suite prepare',
  'suite-restore-error': 'Failed suite restore',
  'backend-prepare-error': 'Failed backend prepare',
  'backend-restore-error': 'Failed backend restore',
  'project-prepare-error': 'Failed project prepare',
  'project-restore-error': 'Failed project restore',
};

/** The entry naming a job in a category: no sample; suite, backend or project for those levels. */
export function entryName(outcome: Outcome, job: Job): string {
  const system = `${job.backend.name}:${job.system.name}`;
  if (outcome.startsWith('suite-')) return `${system}:${job.suite.name}`;
  if (outcome.startsWith('backend-')) return `${system}:${job.backend.name}`;
  if (outcome.startsWith('project-')) return `${system}:project`;
  return `${system}:${job.task.name}${job.variant ? `:${job.variant}` : ''}`;
}

/** The summary messages, one per log line (a category with its entries is one multi-line message). */
export function summaryLines(summary: Summary): string[] {
  const lines = [`Successful tasks: ${summary.get('task-done')!.length}`, `Aborted tasks: ${summary.get('task-abort')!.length}`];
  for (const [outcome, title] of Object.entries(TITLES) as [Outcome, string][]) {
    const jobs = summary.get(outcome)!;
    if (jobs.length === 0) continue;
    const names = jobs.map((j) => entryName(outcome, j)).sort(byCodeUnit);
    lines.push(`${title}: ${names.length}${names.map((n) => `\n    - ${n}`).join('')}`);
  }
  return lines;
}

/** Jobs of a shared run (-queue) that ran again because the runner running them was lost. */
export function retryLines(retried: readonly Job[]): string[] {
  if (retried.length === 0) return [];
  const names = retried.map((j) => entryName('task-done', j)).sort(byCodeUnit);
  return [`Retried after a lost runner: ${names.length}${names.map((n) => `\n    - ${n}`).join('')}`];
}
