/**
 * The workers' side of a run's store: claims by the picking rules of
 * pick-job.ts, and, for a shared run, what happened to each claimed job,
 * kept with it when it ends (so a job handed on after its runner was lost
 * never has the lost attempt's results in the summary). A store that fails
 * is lost for the rest of the run: claims then find nothing, and the runner
 * says so once (see runner.ts).
 */
import type { RunEvent } from '../events.js';
import type { Job } from '../project/types.js';
import type { Claim, RunStore, StoredEntry } from '../store/store.js';
import type { Picker } from './pick-job.js';
import { pickJob } from './pick-job.js';
import { jobOf, toEntry } from './stored-events.js';

export class JobQueue {
  private readonly indexes: Map<Job, number>;
  /** What happened so far to each job claimed here, kept with it when it ends. */
  private readonly active = new Map<Job, StoredEntry[]>();
  /** Writes under way that nothing awaits (records of jobs that ended, durations). */
  private readonly writes = new Set<Promise<unknown>>();

  constructor(
    readonly store: RunStore,
    jobs: readonly Job[],
    /** Set on the first Ctrl-C (or when the store is lost): take no new job. */
    readonly stopping: AbortSignal,
    /** This runner's name in the store's records. */
    private readonly runner: string,
  ) {
    this.indexes = new Map(jobs.map((job, i) => [job, i]));
  }

  get shared(): boolean {
    return this.store.shared;
  }

  async claim(w: Picker): Promise<Claim | undefined> {
    if (this.stopping.aborted) return undefined;
    let claim: Claim | undefined;
    try {
      claim = await this.store.claim((s) => pickJob(s.pending, w, s.suiteWorkers));
    } catch {
      return undefined;
    }
    if (claim && this.shared) this.active.set(claim.job, []);
    return claim;
  }

  /** The claim's job ended (ran, or was aborted without running); false when its results could not be kept. */
  async finish(claim: Claim): Promise<boolean> {
    const entries = this.active.get(claim.job) ?? [];
    this.active.delete(claim.job);
    try {
      return await this.store.finish(claim, entries);
    } catch {
      return false;
    }
  }

  /** Hands a claimed job that has not started back to the queue. */
  async release(claim: Claim): Promise<void> {
    this.active.delete(claim.job);
    await this.store.release(claim).catch(() => {});
  }

  /** Whether the worker of `backend:system` has (or may get) more work; see RunStore.awaitWork. */
  awaitWork(backend: string, system: string): Promise<boolean> {
    return this.store.awaitWork(backend, system, this.stopping).catch(() => false);
  }

  /** Taps the event stream of a shared run: events about jobs become the run's records. */
  readonly tap = (e: RunEvent): void => {
    if (!this.shared) return;
    const job = jobOf(e);
    const index = job && this.indexes.get(job);
    if (index === undefined) return;
    const entry = toEntry(e, index, this.runner, Date.now());
    if (!entry) return;
    const kept = this.active.get(job!);
    if (kept) kept.push(entry);
    else this.track(this.store.record([entry]));
  };

  /** Lets a write go on in the background; flush() waits for it. */
  track(write: Promise<unknown>): void {
    const settled = write.catch(() => {}).finally(() => this.writes.delete(settled));
    this.writes.add(settled);
  }

  /** Waits for the background writes, before the runner leaves the run. */
  async flush(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes]);
  }
}
