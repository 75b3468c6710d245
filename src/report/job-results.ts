/**
 * Per-job results gathered from the event stream, for the machine-readable
 * reports: each selected job's outcome, time, machine, and the first script
 * that failed for it (at any level) with its error and output.
 */
import type { Outcome, Reporter } from '../events.js';
import type { Job, Level } from '../project/types.js';

export interface Failure {
  readonly level: Level;
  readonly verb: string;
  readonly context: string;
  readonly error: string;
  readonly output: string;
}

export interface JobResult {
  readonly job: Job;
  /** Every outcome recorded for the job, in order (a done per repeat, restore errors...). */
  readonly outcomes: Outcome[];
  machine?: string;
  durationMs: number;
  failure?: Failure;
  /** A shared run (-queue) lost the runner that first ran the job: that runner's name. */
  lostRunner?: string;
}

export interface RunRecord {
  startedAt: number;
  endedAt: number;
  seed: number;
  interrupted: boolean;
  readonly jobs: Map<Job, JobResult>;
}

/** The result entry of a job, created empty on first use. */
export function resultFor(results: Map<Job, JobResult>, job: Job): JobResult {
  let r = results.get(job);
  if (!r) results.set(job, (r = { job, outcomes: [], durationMs: 0 }));
  return r;
}

/** A reporter that fills a RunRecord; `onEnd` is called with it at the end of the run. */
export function recordRun(onEnd: (record: RunRecord) => void, now: () => number = Date.now): Reporter {
  const record: RunRecord = { startedAt: now(), endedAt: 0, seed: 0, interrupted: false, jobs: new Map() };
  const resultOf = (job: Job): JobResult => resultFor(record.jobs, job);
  return {
    'run-start': (e) => {
      record.startedAt = e.at;
      record.seed = e.seed;
      for (const job of e.jobs) resultOf(job);
    },
    'script-end': (e) => {
      if (e.ok) return;
      const r = resultOf(e.job);
      r.failure ??= { level: e.level, verb: e.verb, context: e.context, error: e.error ?? '', output: e.output };
    },
    // A flake hunt's reports show the failure that matched, not the first one.
    'hunt-failure': (e) => {
      if (e.matched) resultOf(e.job).failure = { level: e.level, verb: e.verb, context: e.context, error: e.error, output: e.output };
    },
    result: (e) => void resultOf(e.job).outcomes.push(e.outcome),
    'job-retry': (e) => {
      const r = resultOf(e.job);
      r.lostRunner = e.lostRunner;
      // The lost attempt's failure is not the job's: the retry decides.
      delete r.failure;
    },
    'job-end': (e) => {
      const r = resultOf(e.job);
      r.machine = e.machine;
      r.durationMs = e.durationMs;
    },
    'run-end': (e) => {
      record.endedAt = e.at;
      record.interrupted = e.interrupted;
      onEnd(record);
    },
  };
}

export type JobStatus = 'passed' | 'failed' | 'aborted';

/**
 * What happened to a job, from its outcomes: failed if its prepare,
 * execute or restore failed in any repeat; passed if it ran and nothing of
 * its own failed; aborted if it never ran (a suite, backend or project
 * failure, a lost machine, an interrupted run).
 */
export function jobStatus(r: JobResult): JobStatus {
  const own = r.outcomes.filter((o) => o.startsWith('task-'));
  if (own.some((o) => o === 'task-error' || o === 'task-prepare-error' || o === 'task-restore-error')) return 'failed';
  return own.includes('task-done') ? 'passed' : 'aborted';
}
