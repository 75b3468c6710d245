/**
 * Scheduling from history: how long each job took last time, kept in
 * `.spread-history.json` next to spread.yaml, so the next run starts long
 * jobs first (the longest-processing-time rule, which keeps one slow task
 * from running alone at the end while the other workers sit idle).
 *
 * Jobs are ordered by duration *bucket* (doubling widths from 0.1 s), and
 * stay in their seeded random order within a bucket: spread's random order
 * is deliberate (it exposes tasks that depend on each other's side effects),
 * and bucketing keeps it among jobs of similar length.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Job } from '../project/types.js';
import { byCodeUnit } from '../project/env.js';

export const HISTORY_FILE = '.spread-history.json';
const VERSION = 1;

interface Stored {
  readonly version: number;
  /** Job name -> milliseconds its last run took. */
  readonly jobs: Record<string, number>;
}

export class History {
  private changed = false;

  private constructor(
    private readonly file: string,
    private readonly jobs: Map<string, number>,
  ) {}

  /** The history in `file`; empty when missing or unreadable (it is only a hint). */
  static load(file: string): History {
    let jobs = new Map<string, number>();
    try {
      const stored = JSON.parse(readFileSync(file, 'utf8')) as Stored;
      if (stored.version === VERSION) jobs = new Map(Object.entries(stored.jobs).filter(([, ms]) => typeof ms === 'number' && ms >= 0));
    } catch {
      // No history yet.
    }
    return new History(file, jobs);
  }

  get size(): number {
    return this.jobs.size;
  }

  expectedMs(job: Job): number | undefined {
    return this.jobs.get(job.name);
  }

  record(job: Job, ms: number): void {
    this.jobs.set(job.name, Math.round(ms));
    this.changed = true;
  }

  /** Write atomically, when something was recorded; jobs that did not run keep their old figure. */
  save(): void {
    if (!this.changed) return;
    const sorted = Object.fromEntries([...this.jobs].sort(([a], [b]) => byCodeUnit(a, b)));
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ version: VERSION, jobs: sorted } satisfies Stored, null, 1)}\n`);
    renameSync(tmp, this.file);
  }
}

/** 0 below 0.2 s, then one more per doubling: 0.2-0.4 s is 1, 0.4-0.8 s is 2... */
export const bucketOf = (ms: number): number => Math.max(0, Math.floor(Math.log2(Math.max(ms, 100) / 100)));

/**
 * A worker's walk over the pending jobs, longest bucket first, keeping the
 * seeded order within a bucket. Jobs without history count as the median
 * known bucket, so a new task neither jumps the queue nor waits for last.
 */
export function orderByHistory(order: readonly number[], jobs: readonly Job[], history: History): number[] {
  if (history.size === 0) return [...order];
  const known = jobs.map((j) => history.expectedMs(j)).filter((ms): ms is number => ms !== undefined).map(bucketOf).sort((a, b) => a - b);
  const median = known.length ? known[Math.floor(known.length / 2)]! : 0;
  const bucket = jobs.map((j) => {
    const ms = history.expectedMs(j);
    return ms === undefined ? median : bucketOf(ms);
  });
  const position = new Map(order.map((i, at) => [i, at]));
  return [...order].sort((a, b) => bucket[b]! - bucket[a]! || position.get(a)! - position.get(b)!);
}
