/**
 * The environment a job's scripts see (spec §4.3, §4.4): the SPREAD_* block,
 * then the project, backend, system, suite and task environments (with
 * `$(HOST:...)` already evaluated), composed and resolved for the variant.
 * Computed on demand, never stored on the job.
 */
import { composeEnv, resolveVariant } from './env.js';
import type { Evaluated } from './evaluate.js';
import type { Env, Job } from './types.js';

export function spreadVars(job: Job, remotePath: string): Env {
  return [
    ['SPREAD_JOB', job.name],
    ['SPREAD_PROJECT', job.project.name],
    ['SPREAD_PATH', remotePath],
    ['SPREAD_BACKEND', job.backend.name],
    ['SPREAD_SYSTEM', job.system.name],
    ['SPREAD_SUITE', job.suite.name],
    ['SPREAD_TASK', job.task.name],
    ['SPREAD_VARIANT', job.variant],
    ['SPREAD_SAMPLE', String(job.sample)],
  ];
}

/**
 * `remotePath`: the project's path on the machine, when it differs from `path` (local backend, `$SPREAD_WORKER`).
 * `instance`: the variables of one instance of a multi-machine job, after the SPREAD_* block (so values can use them).
 */
export function jobEnv(job: Job, evaluated: Evaluated, remotePath: string = evaluated.remotePath, instance: Env = []): Env {
  const composed = composeEnv([
    instance.length > 0 ? [...spreadVars(job, remotePath), ...instance] : spreadVars(job, remotePath),
    evaluated.env(job.project.env),
    evaluated.env(job.backend.env),
    evaluated.env(job.system.env),
    evaluated.env(job.suite.env),
    evaluated.env(job.task.env),
  ]);
  return resolveVariant(composed, job.variant);
}
