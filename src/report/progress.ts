/**
 * Live progress: counts of jobs done, failed, aborted and running, kept up
 * from the event stream, and their one-line rendering for a terminal's
 * status line. Where the line goes is the command line's business.
 */
import type { Reporter } from '../events.js';
import type { Job } from '../project/types.js';
import { jobStatus, resultFor } from './job-results.js';
import type { JobResult } from './job-results.js';

export interface ProgressState {
  readonly total: number;
  readonly passed: number;
  readonly failed: number;
  readonly aborted: number;
  /** Jobs running now, oldest first. */
  readonly running: readonly Job[];
  readonly startedAt: number;
}

export function progressReporter(onChange: (state: ProgressState) => void, now: () => number = Date.now): Reporter {
  const results = new Map<Job, JobResult>();
  // Runs in progress per job: a flake hunt runs one job on several machines at once.
  const running = new Map<Job, number>();
  const ended = new Set<Job>();
  let total = 0;
  let startedAt = now();
  const state = (): ProgressState => {
    let passed = 0;
    let failed = 0;
    let aborted = 0;
    for (const r of results.values()) {
      // Done: it ran to its end, or it was aborted without running.
      if (ended.has(r.job) && !running.has(r.job)) {
        const s = jobStatus(r);
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++;
        else aborted++;
      } else if (!running.has(r.job) && r.outcomes.includes('task-abort')) {
        aborted++;
      }
    }
    return { total, passed, failed, aborted, running: [...running].flatMap(([job, n]) => Array<Job>(n).fill(job)), startedAt };
  };
  const resultOf = (job: Job): JobResult => resultFor(results, job);
  return {
    'run-start': (e) => {
      total = e.jobs.length;
      startedAt = e.at;
      onChange(state());
    },
    'job-start': (e) => {
      running.set(e.job, (running.get(e.job) ?? 0) + 1);
      resultOf(e.job);
      onChange(state());
    },
    'job-end': (e) => {
      const n = (running.get(e.job) ?? 1) - 1;
      if (n > 0) running.set(e.job, n);
      else running.delete(e.job);
      ended.add(e.job);
      onChange(state());
    },
    result: (e) => {
      resultOf(e.job).outcomes.push(e.outcome);
      onChange(state());
    },
  };
}

const clock = (ms: number): string => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

/** `spread: 12/60 done, 1 failed, 3 running (tests/foo +2), 1:42`, cut to `width`. */
export function formatProgress(p: ProgressState, now: number, width: number): string {
  const done = p.passed + p.failed + p.aborted;
  const parts = [`spread: ${done}/${p.total} done`];
  if (p.failed) parts.push(`${p.failed} failed`);
  if (p.aborted) parts.push(`${p.aborted} aborted`);
  if (p.running.length) {
    const first = p.running[0]!.task.name;
    parts.push(`${p.running.length} running (${first}${p.running.length > 1 ? ` +${p.running.length - 1}` : ''})`);
  }
  parts.push(clock(now - p.startedAt));
  const line = parts.join(', ');
  return line.length > width - 1 ? `${line.slice(0, Math.max(0, width - 2))}…` : line;
}
