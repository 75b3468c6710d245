/**
 * Where -logs puts each script's output, relative to the logs directory:
 * names CI artifact uploaders accept (project/safe-names.ts: `:` as `__`).
 *
 *     <backend>__<system>__<suite>/<task>[__<variant>][#N].log    a job: its task prepare, execute,
 *                                                               restore and debug, every repeat
 *     <backend>__<system>__<suite>/<task>...@instance-<I>.log    instance I of a multi-machine job
 *     <backend>__<system>__<suite>/@suite-<worker>.log           suite prepare and restore on a worker
 *     <backend>__<system>@backend-<worker>.log                   backend prepare and restore on a worker
 *     <backend>__<system>@project-<worker>.log                   project prepare and restore on a worker
 *
 * `@` never appears in a name, so level files never collide with jobs; the
 * worker number keeps machines of one system apart.
 */
import type { ScriptRef } from '../events.js';
import { safeName } from '../project/safe-names.js';
import type { Job } from '../project/types.js';

/** The log of a job's own scripts. */
export const jobLogPath = (job: Job): string => `${safeName(job.name)}.log`;

export function logPath(ref: Pick<ScriptRef, 'job' | 'level' | 'context' | 'worker' | 'instance'>): string {
  if (ref.level === 'task') return ref.instance === undefined ? jobLogPath(ref.job) : `${safeName(ref.job.name)}@instance-${ref.instance}.log`;
  const worker = ref.worker ?? 1;
  if (ref.level === 'suite') return `${safeName(ref.context)}@suite-${worker}.log`;
  return `${safeName(ref.context)}@${ref.level}-${worker}.log`;
}
