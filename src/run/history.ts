/**
 * What earlier runs saw, kept in `.spread-history.json` next to spread.yaml:
 * for each job, how long its last passing run took (so the next run starts
 * long jobs first: the longest-processing-time rule, which keeps one slow
 * task from running alone at the end while the other workers sit idle) and
 * its last outcomes (so reports can tell flaky jobs from broken ones).
 *
 * Jobs are ordered by duration *bucket* (doubling widths from 0.1 s), and
 * stay in their seeded random order within a bucket: spread's random order
 * is deliberate (it exposes tasks that depend on each other's side effects),
 * and bucketing keeps it among jobs of similar length.
 *
 * The file stays bounded (the last RECENT outcomes per job, at most MAX_JOBS
 * jobs, the least recently run dropped first) and two runs sharing it never
 * break it or lose each other's records: a save takes `<file>.lock`,
 * re-reads the file and lays this run's records over it, writes a
 * temporary file with a name of its own and renames it over the old one,
 * so readers (which take no lock) see the old file or the new one.
 */
import { readFileSync } from 'node:fs';
import type { Job } from '../project/types.js';
import { byCodeUnit } from '../project/env.js';
import { withFileLock } from './file-lock.js';
import { writeAtomically } from './write-atomically.js';

export const HISTORY_FILE = '.spread-history.json';
const VERSION = 2;
/** Outcomes kept per job. */
export const RECENT = 10;
/** Jobs kept in the file (snapd has some 60,000). */
export const MAX_JOBS = 100_000;

/** One job's record. */
export interface JobHistory {
  /** Milliseconds its last passing run took. */
  readonly ms?: number;
  /** Its last outcomes, oldest first, one per run: `P` passed, `F` failed. */
  readonly recent: string;
  /** When it last ran (epoch seconds). */
  readonly seen: number;
}

interface Stored {
  readonly version: number;
  readonly jobs: Record<string, JobHistory>;
}

export class History {
  /** This run's outcome per job: false once any of its runs failed. */
  private readonly outcomes = new Map<string, boolean>();
  private readonly durations = new Map<string, number>();

  /** As read from the file, for the merge when saving. */
  private readonly loaded: ReadonlyMap<string, JobHistory>;

  private constructor(
    private readonly file: string,
    private readonly jobs: Map<string, JobHistory>,
    private readonly now: () => number,
  ) {
    this.loaded = new Map(jobs);
  }

  /** The history in `file`; empty when missing or unreadable (it is only a hint). */
  static load(file: string, now: () => number = Date.now): History {
    return new History(file, readJobs(file), now);
  }

  get size(): number {
    return this.jobs.size;
  }

  expectedMs(job: Job): number | undefined {
    return this.jobs.get(job.name)?.ms;
  }

  /** The record of a job name as loaded (before this run). */
  past(name: string): JobHistory | undefined {
    return this.loaded.get(name);
  }

  /** How long a passing run of the job took (also what expectedMs says from now on). */
  record(job: Job, ms: number): void {
    this.durations.set(job.name, Math.round(ms));
    this.jobs.set(job.name, { recent: '', seen: 0, ...this.jobs.get(job.name), ms: Math.round(ms) });
  }

  /** One run of the job passed or failed; a job that failed in any run of this spread run counts as failed once. */
  recordOutcome(job: Job, passed: boolean): void {
    this.outcomes.set(job.name, (this.outcomes.get(job.name) ?? true) && passed);
  }

  /** Merge this run's records into the file as it is now, atomically; nothing to do when nothing was recorded. */
  save(): void {
    if (this.durations.size === 0 && this.outcomes.size === 0) return;
    withFileLock(this.file, () => this.merge());
  }

  private merge(): void {
    const merged = readJobs(this.file);
    for (const [name, old] of this.loaded) if (!merged.has(name)) merged.set(name, old);
    const seen = Math.floor(this.now() / 1000);
    for (const name of new Set([...this.durations.keys(), ...this.outcomes.keys()])) {
      const old = merged.get(name);
      const ms = this.durations.get(name) ?? old?.ms;
      const outcome = this.outcomes.get(name);
      const recent = `${old?.recent ?? ''}${outcome === undefined ? '' : outcome ? 'P' : 'F'}`.slice(-RECENT);
      merged.set(name, { ...(ms !== undefined ? { ms } : {}), recent, seen });
    }
    const kept = [...merged].sort(([a, x], [b, y]) => y.seen - x.seen || byCodeUnit(a, b)).slice(0, MAX_JOBS);
    const jobs = Object.fromEntries(kept.sort(([a], [b]) => byCodeUnit(a, b)));
    writeAtomically(this.file, `${JSON.stringify({ version: VERSION, jobs } satisfies Stored, null, 1)}\n`);
  }
}

function readJobs(file: string): Map<string, JobHistory> {
  let stored: { version?: unknown; jobs?: Record<string, unknown> };
  try {
    stored = JSON.parse(readFileSync(file, 'utf8')) as typeof stored;
  } catch {
    return new Map(); // No history yet, or not ours to read.
  }
  const jobs = new Map<string, JobHistory>();
  if (typeof stored.jobs !== 'object' || stored.jobs === null) return jobs;
  for (const [name, value] of Object.entries(stored.jobs)) {
    // Version 1 kept only the last duration.
    if (stored.version === 1 && isDuration(value)) jobs.set(name, { ms: value, recent: '', seen: 0 });
    if (stored.version !== VERSION || typeof value !== 'object' || value === null) continue;
    const v = value as Partial<JobHistory>;
    const recent = typeof v.recent === 'string' ? v.recent.replace(/[^PF]/g, '').slice(-RECENT) : '';
    jobs.set(name, { ...(isDuration(v.ms) ? { ms: v.ms } : {}), recent, seen: typeof v.seen === 'number' ? v.seen : 0 });
  }
  return jobs;
}

const isDuration = (ms: unknown): ms is number => typeof ms === 'number' && ms >= 0;

/** 0 below 0.2 s, then one more per doubling: 0.2-0.4 s is 1, 0.4-0.8 s is 2... */
export const bucketOf = (ms: number): number => Math.max(0, Math.floor(Math.log2(Math.max(ms, 100) / 100)));

/**
 * A worker's walk over the pending jobs, longest bucket first, keeping the
 * seeded order within a bucket. Jobs without history count as the median
 * known bucket, so a new task neither jumps the queue nor waits for last.
 */
export function orderByHistory(order: readonly number[], jobs: readonly Job[], history: History): number[] {
  const known = jobs.map((j) => history.expectedMs(j)).filter((ms): ms is number => ms !== undefined).map(bucketOf).sort((a, b) => a - b);
  if (known.length === 0) return [...order];
  const median = known[Math.floor(known.length / 2)]!;
  const bucket = jobs.map((j) => {
    const ms = history.expectedMs(j);
    return ms === undefined ? median : bucketOf(ms);
  });
  const position = new Map(order.map((i, at) => [i, at]));
  return [...order].sort((a, b) => bucket[b]! - bucket[a]! || position.get(a)! - position.get(b)!);
}
