/**
 * The JSON report (`-json=FILE`): the run and every job, for scripts and
 * dashboards. Stable field names; times in milliseconds.
 */
import type { Reporter } from '../events.js';
import { jobStatus, recordRun } from './job-results.js';
import type { RunRecord } from './job-results.js';

export const JSON_REPORT_VERSION = 1;

export function renderJson(record: RunRecord): string {
  const jobs = [...record.jobs.values()].map((r) => ({
    name: r.job.name,
    backend: r.job.backend.name,
    system: r.job.system.name,
    suite: r.job.suite.name,
    task: r.job.task.name,
    variant: r.job.variant,
    sample: r.job.sample,
    status: jobStatus(r),
    outcomes: r.outcomes,
    machine: r.machine ?? null,
    durationMs: r.durationMs,
    failure: r.failure ?? null,
    ...(r.lostRunner !== undefined ? { retriedAfterLostRunner: r.lostRunner } : {}),
  }));
  const count = (status: string) => jobs.filter((j) => j.status === status).length;
  return `${JSON.stringify({
    version: JSON_REPORT_VERSION,
    startedAt: new Date(record.startedAt).toISOString(),
    durationMs: record.endedAt - record.startedAt,
    seed: record.seed,
    interrupted: record.interrupted,
    totals: { jobs: jobs.length, passed: count('passed'), failed: count('failed'), aborted: count('aborted') },
    jobs,
  }, null, 2)}\n`;
}

export const jsonReporter = (write: (json: string) => void): Reporter => recordRun((record) => write(renderJson(record)));
