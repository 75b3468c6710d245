/**
 * From the full matrix to the jobs of a run: the filter, then the manual
 * rules (spec §3.3), then a deterministic order (by name, samples
 * numerically; spec §12).
 */
import { ConfigError } from './errors.js';
import type { Filter } from './filter.js';
import type { Job } from './types.js';

export function selectJobs(all: readonly Job[], filter: Filter): Job[] {
  const hasFilter = filter.args.length > 0;
  const passed = all.filter((job) => filter.pass(job));
  // Each dimension on its own: manual entries stay only if no passing job
  // uses a non-manual one in that dimension.
  const keep = {
    backend: hasFilter && passed.every((j) => j.backend.manual),
    system: hasFilter && passed.every((j) => j.system.manual),
    suite: hasFilter && passed.every((j) => j.suite.manual),
    task: hasFilter && passed.every((j) => j.task.manual),
  };
  const jobs = passed.filter((j) =>
    (keep.backend || !j.backend.manual) && (keep.system || !j.system.manual) &&
    (keep.suite || !j.suite.manual) && (keep.task || !j.task.manual));
  if (jobs.length === 0) {
    throw new ConfigError(hasFilter ? 'nothing matches provider filter' : 'cannot find any tasks');
  }
  return sortJobs(jobs);
}

/**
 * By name without the sample suffix, then by sample number. The key of a
 * sampled job is its base name, `#` and a zero-padded sample: `#` sorts
 * before every character a name can continue with, so comparing keys as
 * plain strings gives exactly that order.
 */
export function sortJobs(jobs: Job[]): Job[] {
  const key = (j: Job): string => (j.task.samples > 1 ? `${j.name.slice(0, j.name.lastIndexOf('#'))}#${String(j.sample).padStart(10, '0')}` : j.name);
  const keyed = jobs.map((job) => [key(job), job] as const);
  keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return keyed.map((k) => k[1]);
}
