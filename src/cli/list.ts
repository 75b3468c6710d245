/** `spread -list`: the jobs a run would execute, one name per line. */
import type { Filter } from '../project/filter.js';
import { expandJobs } from '../project/expand.js';
import { evaluateProject } from '../project/evaluate.js';
import type { HostRunner } from '../project/evaluate.js';
import { selectJobs } from '../project/select.js';
import type { Job, Project } from '../project/types.js';

export async function listJobs(project: Project, filter: Filter, runHost: HostRunner): Promise<string> {
  const all = expandJobs(project);
  // The original evaluates $(HOST:...) even for -list, and fails on errors there.
  await evaluateProject(project, all, runHost);
  const jobs = selectJobs(all, filter);
  return jobs.map(listLine).join('\n') + '\n';
}

/** A job's line: its name, and for a multi-machine task how many machines run it (the name alone is the filter). */
const listLine = (job: Job): string => (job.task.instances ? `${job.name} (${job.task.instances.count} instances)` : job.name);
