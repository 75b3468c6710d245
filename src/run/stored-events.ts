/**
 * Events to the plain records a shared run keeps (src/store/), and back:
 * each runner stores what happened to its jobs, and `-summary` replays the
 * whole run's records as the same events, so the reporters that write a
 * runner's summary, JUnit and JSON write the merged ones unchanged.
 */
import type { RunEvent, Stamped } from '../events.js';
import type { Output } from '../output.js';
import type { Job } from '../project/types.js';
import type { StoredEntry } from '../store/store.js';

const toStored = (o: Output) => ({ head: o.head.toString('base64'), elided: o.elided, tail: o.tail.toString('base64') });
const fromStored = (o: { head: string; elided: number; tail: string }): Output =>
  ({ head: Buffer.from(o.head, 'base64'), elided: o.elided, tail: Buffer.from(o.tail, 'base64') });

/** The record of an event about a job, or undefined for events a summary does not need. */
export function toEntry(e: RunEvent, index: number, runner: string, at: number): StoredEntry | undefined {
  switch (e.type) {
    case 'job-start':
      return { kind: 'start', job: index, at, machine: e.machine, runner };
    case 'script-end':
      // Failures, and the task's own scripts (their output goes in the JUnit report).
      if (e.ok && e.level !== 'task') return undefined;
      return {
        kind: 'failure', job: index, at, machine: e.machine, level: e.level, verb: e.verb, context: e.context,
        durationMs: e.durationMs, output: toStored(e.output), ...(e.error !== undefined ? { error: e.error } : {}),
        ...(e.reason !== undefined ? { reason: e.reason } : {}), ...(e.ok ? { ok: true } : {}),
      };
    case 'result':
      return { kind: 'result', job: index, at, outcome: e.outcome, ...(e.why ? { why: e.why } : {}) };
    case 'job-end':
      return { kind: 'end', job: index, at, machine: e.machine, outcome: e.outcome, durationMs: e.durationMs };
    case 'job-retry':
      return { kind: 'retry', job: index, at, runner: e.lostRunner };
    case 'artifacts':
      return { kind: 'artifacts', job: index, at, dir: e.dir, ...(e.error !== undefined ? { error: e.error } : {}) };
    default:
      return undefined;
  }
}

/** The job an event is about, for the events toEntry keeps. */
export const jobOf = (e: RunEvent): Job | undefined => ('job' in e ? e.job : undefined);

/** The events a record stands for, stamped with the time it was made. */
export function toEvent(entry: StoredEntry, jobs: readonly Job[]): Stamped {
  const job = jobs[entry.job];
  if (!job) throw new Error(`the run refers to job ${entry.job}, but has only ${jobs.length}`);
  const at = entry.at;
  switch (entry.kind) {
    case 'start':
      return { type: 'job-start', job, machine: entry.machine, at };
    case 'failure':
      return {
        type: 'script-end', job, machine: entry.machine, level: entry.level, verb: entry.verb, context: entry.context,
        ok: entry.ok === true, durationMs: entry.durationMs, output: fromStored(entry.output), ...(entry.error !== undefined ? { error: entry.error } : {}),
        ...(entry.reason !== undefined ? { reason: entry.reason } : {}), at,
      };
    case 'result':
      return { type: 'result', job, outcome: entry.outcome, ...(entry.why ? { why: entry.why } : {}), at };
    case 'end':
      return { type: 'job-end', job, machine: entry.machine, outcome: entry.outcome, durationMs: entry.durationMs, at };
    case 'retry':
      return { type: 'job-retry', job, lostRunner: entry.runner, at };
    case 'artifacts':
      return { type: 'artifacts', job, dir: entry.dir, ...(entry.error !== undefined ? { error: entry.error } : {}), at };
  }
}
