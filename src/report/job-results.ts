/**
 * Per-job results gathered from the event stream, for the machine-readable
 * reports and the progress line: each selected job's outcomes, time,
 * machine, its status, and the failure or reason behind that status; plus
 * the failures of project, backend and suite scripts, which belong to no
 * single job. One rule decides a job's status, so the console summary,
 * JUnit and JSON can never disagree (see `jobStatus`).
 */
import { join } from 'node:path';
import type { AbortReason, Outcome, Reporter, Verb } from '../events.js';
import { outputText } from '../output.js';
import type { Job, Level } from '../project/types.js';
import { jobLogPath, logPath } from './log-names.js';
import { entryName } from './summary.js';

/** A failed script: where, why in one line, and its output (as text: bytes that are not UTF-8 as \xNN, bounded). */
export interface Failure {
  readonly level: Level;
  readonly verb: Verb;
  /** `backend:system`, `backend:system:suite/` or the job name, by level. */
  readonly context: string;
  readonly machine: string;
  /** One line: `exit status 1`, the ERROR message, `kill-timeout reached`... */
  readonly reason: string;
  readonly output: string;
}

/** A task-level script of a job, for the job's output in reports. */
export interface ScriptRun {
  readonly verb: Verb;
  readonly machine: string;
  readonly ok: boolean;
  readonly reason?: string;
  readonly durationMs: number;
  readonly output: string;
}

export interface JobResult {
  readonly job: Job;
  /** Every outcome recorded for the job, in order (a done per repeat, restore errors...). */
  readonly outcomes: Outcome[];
  machine?: string;
  startedAt?: number;
  durationMs: number;
  /** The task failure that decided the job (with -repeat-until: the matching one). */
  failure?: Failure;
  /** The project, backend or suite failure that kept the job from running. */
  levelFailure?: Failure;
  /** Why it was aborted, as the runner says. */
  why?: AbortReason;
  /** Its task scripts (every repeat), in order. */
  readonly scripts: ScriptRun[];
  /** A shared run (-queue) lost the runner that first ran the job: that runner's name. */
  lostRunner?: string;
  /** The -logs file with the job's full output, when -logs is given. */
  log?: string;
}

/** A project, backend or suite script failure: a summary entry of its own. */
export interface LevelFailure extends Failure {
  readonly outcome: Outcome;
  /** The summary's entry: `backend:system:suite/`, `backend:system:backend`, `backend:system:project`. */
  readonly entry: string;
  /** The job it was run for. */
  readonly job: Job;
}

export interface RunRecord {
  startedAt: number;
  endedAt: number;
  seed: number;
  interrupted: boolean;
  readonly jobs: Map<Job, JobResult>;
  readonly levels: LevelFailure[];
}

/** The result entry of a job, created empty on first use. */
export function resultFor(results: Map<Job, JobResult>, job: Job): JobResult {
  let r = results.get(job);
  if (!r) results.set(job, (r = { job, outcomes: [], durationMs: 0, scripts: [] }));
  return r;
}

const OWN_FAILURES: readonly Outcome[] = ['task-error', 'task-prepare-error', 'task-restore-error'];

/** A reporter that fills a RunRecord; `onEnd` is called with it at the end of the run. `logs` is the -logs directory. */
export function recordRun(onEnd: (record: RunRecord) => void | Promise<void>, now: () => number = Date.now, logs?: string): Reporter {
  const record: RunRecord = { startedAt: now(), endedAt: 0, seed: 0, interrupted: false, jobs: new Map(), levels: [] };
  const resultOf = (job: Job): JobResult => resultFor(record.jobs, job);
  /** The latest failed script of each job, at any level: the next failure result is about it. */
  const lastFailed = new Map<Job, Failure>();
  /** Jobs whose latest own failure is in the repeat now running: a restore failure after it is secondary. */
  const failedThisRepeat = new Set<Job>();
  /** Jobs whose failure a flake hunt matched: failures of runs that end after it on other machines do not replace it. */
  const matched = new Set<Job>();
  return {
    'run-start': (e) => {
      record.startedAt = e.at;
      record.seed = e.seed;
      for (const job of e.jobs) {
        const r = resultOf(job);
        if (logs !== undefined) r.log = join(logs, jobLogPath(job));
      }
    },
    'job-start': (e) => {
      const r = resultOf(e.job);
      r.startedAt ??= e.at;
      r.machine = e.machine;
    },
    'script-start': (e) => {
      if (e.level === 'task' && e.verb !== 'restoring') failedThisRepeat.delete(e.job);
    },
    'script-end': (e) => {
      const reason = e.reason ?? (e.ok ? '' : 'failed');
      // Elided output names the -logs file that has all of it.
      const output = outputText(e.output, logs === undefined ? undefined : join(logs, logPath(e)));
      if (e.level === 'task') {
        resultOf(e.job).scripts.push({ verb: e.verb, machine: e.machine, ok: e.ok, durationMs: e.durationMs, output, ...(e.ok ? {} : { reason }) });
      }
      if (!e.ok) lastFailed.set(e.job, { level: e.level, verb: e.verb, context: e.context, machine: e.machine, reason, output });
    },
    result: (e) => {
      const r = resultOf(e.job);
      r.outcomes.push(e.outcome);
      if (e.why) r.why = e.why;
      const failed = lastFailed.get(e.job);
      if (e.outcome === 'task-error' || e.outcome === 'task-prepare-error') {
        if (failed && !matched.has(e.job)) r.failure = failed;
        failedThisRepeat.add(e.job);
      } else if (e.outcome === 'task-restore-error') {
        if (failed && !failedThisRepeat.has(e.job)) r.failure = failed;
      } else if (e.outcome !== 'task-done' && e.outcome !== 'task-abort' && failed) {
        record.levels.push({ ...failed, outcome: e.outcome, entry: entryName(e.outcome, e.job), job: e.job });
        if (e.outcome.endsWith('-prepare-error')) r.levelFailure = failed;
      }
    },
    'hunt-failure': (e) => {
      if (!e.matched) return;
      matched.add(e.job);
      resultOf(e.job).failure = { level: e.level, verb: e.verb, context: e.context, machine: e.machine, reason: e.reason ?? 'failed', output: e.output };
    },
    'job-retry': (e) => {
      const r = resultOf(e.job);
      r.lostRunner = e.lostRunner;
      // The lost attempt is not the job's: the retry decides.
      delete r.failure;
      delete r.levelFailure;
      delete r.why;
      r.scripts.length = 0;
    },
    'job-end': (e) => {
      const r = resultOf(e.job);
      r.machine = e.machine;
      r.durationMs = e.durationMs;
    },
    'run-end': (e) => {
      record.endedAt = e.at;
      record.interrupted = e.interrupted;
      return onEnd(record);
    },
  };
}

/**
 * - `passed`: it ran, and none of its own scripts failed in any repeat (the
 *   console counts it under "Successful tasks");
 * - `failed`: its prepare, execute or restore failed ("Failed tasks", "Failed
 *   task prepare", "Failed task restore");
 * - `error`: it did not run, or was cut while running, because of the
 *   infrastructure: allocation, connection, a project, backend or suite
 *   script, a lost worker, a script killed by a second signal ("Aborted tasks");
 * - `skipped`: it did not run because the run was interrupted before it, or
 *   -abend stopped its worker, or -restore ran only restores ("Aborted tasks"
 *   for the first two).
 */
export type JobStatus = 'passed' | 'failed' | 'error' | 'skipped';

export function jobStatus(r: JobResult): JobStatus {
  if (r.outcomes.some((o) => OWN_FAILURES.includes(o))) return 'failed';
  if (r.outcomes.includes('task-done')) return 'passed';
  if (r.why) return r.why.kind === 'error' ? 'error' : 'skipped';
  return r.levelFailure ? 'error' : 'skipped';
}

/** The failure as the console logs it: `Error executing <ctx> (<machine>) : <reason>`, in one line. */
export const failureLine = (f: Failure): string => `Error ${f.verb} ${f.context} (${f.machine}) : ${f.reason}`;

/** Why a job is not `passed`, in one line; '' for a passed job. */
export function statusReason(r: JobResult): string {
  switch (jobStatus(r)) {
    case 'passed':
      return '';
    case 'failed':
      return r.failure ? failureLine(r.failure) : 'failed';
    default:
      return r.why?.message ?? (r.levelFailure ? `not run: ${failureLine(r.levelFailure)}` : 'not run');
  }
}
