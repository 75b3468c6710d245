/**
 * The JSON report (`-json=FILE`): the run and every job, for scripts and
 * dashboards. Its shape is published as schemas/report.schema.json, where
 * every field is described; times are in milliseconds, instants in ISO 8601
 * UTC. Each script output is stored once: a job's own failure carries its
 * output, a project, backend or suite failure is one entry of `levels`.
 */
import type { Reporter } from '../events.js';
import { jobStatus, recordRun, statusReason } from './job-results.js';
import type { Failure, RunRecord } from './job-results.js';

export const JSON_REPORT_VERSION = 2;

export interface JsonOptions {
  /** The machine spread ran on. */
  readonly hostname: string;
  /** The -logs directory: each job names its file. */
  readonly logs?: string;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
const failure = (f: Failure) => ({ level: f.level, verb: f.verb, context: f.context, machine: f.machine, reason: f.reason, output: f.output });

export function renderJson(record: RunRecord, o: JsonOptions): string {
  const jobs = [...record.jobs.values()].map((r) => ({
    name: r.job.name,
    backend: r.job.backend.name,
    system: r.job.system.name,
    suite: r.job.suite.name,
    task: r.job.task.name,
    variant: r.job.variant,
    sample: r.job.sample,
    status: jobStatus(r),
    reason: statusReason(r) || null,
    outcomes: r.outcomes,
    machine: r.machine ?? null,
    startedAt: iso(r.startedAt),
    durationMs: r.durationMs,
    failure: r.failure && jobStatus(r) === 'failed' ? failure(r.failure) : null,
    ...(r.lostRunner !== undefined ? { retriedAfterLostRunner: r.lostRunner } : {}),
    ...(r.log !== undefined ? { log: r.log } : {}),
  }));
  const count = (status: string) => jobs.filter((j) => j.status === status).length;
  return `${JSON.stringify({
    version: JSON_REPORT_VERSION,
    startedAt: iso(record.startedAt),
    endedAt: iso(record.endedAt),
    durationMs: record.endedAt - record.startedAt,
    hostname: o.hostname,
    seed: record.seed,
    interrupted: record.interrupted,
    totals: { jobs: jobs.length, passed: count('passed'), failed: count('failed'), error: count('error'), skipped: count('skipped') },
    jobs,
    levels: record.levels.map((f) => ({ entry: f.entry, outcome: f.outcome, job: f.job.name, ...failure(f) })),
  }, null, 2)}\n`;
}

export const jsonReporter = (write: (json: string) => void | Promise<void>, o: JsonOptions): Reporter => recordRun((record) => write(renderJson(record, o)), Date.now, o.logs);
