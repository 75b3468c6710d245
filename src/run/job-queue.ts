/**
 * The workers' side of a run's store: claims by the picking rules of
 * pick-job.ts, and, for a shared run, what happened to each claimed job,
 * kept with it when it ends (so a job handed on after its runner was lost
 * never has the lost attempt's results in the summary). A store that fails
 * is lost for the rest of the run: claims then find nothing, and the runner
 * says so once (see runner.ts).
 *
 * A multi-machine job gathered across runners (shared-group.ts) is recorded
 * by the runner holding its claim: the other runners follow the job here
 * (keeping what happens to their instances) and hand their records to the
 * group, the claim's holder adopts them, and the group decides the claim's
 * fate (recorded, handed back, or requeued after a lost runner).
 */
import type { RunEvent } from '../events.js';
import type { Job } from '../project/types.js';
import type { Claim, RunStore, StoredEntry } from '../store/store.js';
import type { ClaimFate, GroupRecords } from './shared-group.js';
import type { Picker } from './pick-job.js';
import { pickJob } from './pick-job.js';
import { jobOf, toEntry } from './stored-events.js';

export class JobQueue implements GroupRecords {
  private readonly indexes: Map<Job, number>;
  /** What happened so far to each job claimed here, kept with it when it ends. */
  private readonly active = new Map<Job, StoredEntry[]>();
  /** Jobs this runner has instances of but no claim on (a group of another runner): their records so far. */
  private readonly followed = new Map<Job, StoredEntry[]>();
  /** What becomes of claims decided elsewhere (a multi-machine job's group). */
  private readonly fates = new Map<Job, Promise<ClaimFate>>();
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
    const fate = await (this.fates.get(claim.job) ?? 'finish');
    this.fates.delete(claim.job);
    const entries = this.active.get(claim.job) ?? [];
    this.active.delete(claim.job);
    try {
      if (fate === 'release') await this.store.release(claim);
      else if (fate !== 'finish') await this.store.gathering?.requeue(claim, fate.lostRunner);
      else return await this.store.finish(claim, entries);
      return true;
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
    const kept = this.active.get(job!) ?? this.followed.get(job!);
    if (kept) kept.push(entry);
    else this.track(this.store.record([entry]));
  };

  decide(job: Job, fate: Promise<ClaimFate>): void {
    this.fates.set(job, fate);
  }

  follow(job: Job): void {
    if (!this.followed.has(job)) this.followed.set(job, []);
  }

  takeFollowed(job: Job): StoredEntry[] {
    const kept = this.followed.get(job);
    if (!kept) return [];
    this.followed.set(job, []);
    return kept;
  }

  unfollow(job: Job): StoredEntry[] {
    const kept = this.followed.get(job) ?? [];
    this.followed.delete(job);
    return kept;
  }

  adopt(job: Job, entries: readonly StoredEntry[]): void {
    const kept = this.active.get(job);
    if (kept) kept.push(...entries);
    else this.track(this.store.record(entries));
  }

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
