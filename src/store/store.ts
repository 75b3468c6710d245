/**
 * Shared run state behind one interface (style §21). The scheduler decides
 * *which* job a worker takes with a pure function over a snapshot of the
 * queue (run/pick-job.ts); a store only keeps that state and makes "take it
 * if it is still free" atomic. The in-process store (memory.ts) is the
 * default; redis.ts lets several runners share one run. Another engine fits
 * the same contract when it has leases that expire and atomic
 * compare-and-set (etcd's leases and transactions do).
 *
 * The store never sees events or reporters: the runner turns events into
 * plain StoredEntry records, and `-summary` turns them back into events.
 */
import type { AbortReason, Outcome, Verb } from '../events.js';
import type { Job, Level } from '../project/types.js';

/** The counter of workers inside a suite is kept per backend, system and suite. */
export const suiteKey = (job: Job): string => `${job.backend.name}\0${job.system.name}\0${job.suite.name}`;

/** What the picking rules read: the jobs still pending (taken slots undefined) and who is in which suite. */
export interface Snapshot {
  readonly pending: readonly (Job | undefined)[];
  readonly suiteWorkers: ReadonlyMap<string, number>;
}

/** Chooses a pending job's index from a snapshot (run/pick-job.ts), or none. */
export type Pick = (snapshot: Snapshot) => number | undefined;

/** A job taken by a worker of this runner. */
export interface Claim {
  readonly job: Job;
  /** The job's index in the run's (sorted) job list. */
  readonly index: number;
  /** When this is the retry of a job whose runner was lost: that runner. */
  readonly lostRunner?: string;
}

/**
 * What happened to a job, as kept in a run: the events a summary and the
 * reports need, with jobs as indexes into the run's job list.
 */
export type StoredEntry =
  | { readonly kind: 'start'; readonly job: number; readonly at: number; readonly machine: string; readonly runner: string }
  | {
    readonly kind: 'failure'; readonly job: number; readonly at: number; readonly machine: string;
    readonly level: Level; readonly verb: Verb; readonly context: string; readonly durationMs: number;
    readonly output: string; readonly error?: string;
    /** The failure in one line; `ok` for a task script that passed (kept for its output). */
    readonly reason?: string; readonly ok?: boolean;
  }
  | { readonly kind: 'result'; readonly job: number; readonly at: number; readonly outcome: Outcome; readonly why?: AbortReason }
  | { readonly kind: 'end'; readonly job: number; readonly at: number; readonly machine: string; readonly outcome: Outcome; readonly durationMs: number }
  /** The job went back to the queue because `runner` was lost while it ran it. */
  | { readonly kind: 'retry'; readonly job: number; readonly at: number; readonly runner: string }
  | { readonly kind: 'artifacts'; readonly job: number; readonly at: number; readonly dir: string; readonly error?: string };

/**
 * The primitives multi-machine tasks will need (testground's sync service):
 * a counter per state that returns the caller's sequence number, a barrier
 * that waits for a count, and topics with ordered payloads. Part of the
 * contract so that an engine is chosen with them in mind; optional until a
 * feature uses them.
 */
export interface SyncPrimitives {
  /** Enter `state`; resolves to how many have entered it so far, this one included. */
  signalEntry(state: string): Promise<number>;
  /** Resolves once `target` have entered `state`; rejects when `signal` aborts. */
  barrier(state: string, target: number, signal: AbortSignal): Promise<void>;
  /** Appends to `topic`; resolves to the payload's position, from 1. */
  publish(topic: string, payload: string): Promise<number>;
  /** Every payload of `topic` from the first, in order, then new ones as they come, until `signal` aborts. */
  subscribe(topic: string, signal: AbortSignal): AsyncIterable<string>;
}

/** One runner's view of a run. */
export interface RunStore {
  /** Other processes share this run: results go to the store and unstarted jobs are handed back. */
  readonly shared: boolean;
  /** Aborted, with the reason as an Error, once the store cannot be trusted (connection or lease lost). */
  readonly lost: AbortSignal;
  /**
   * Takes the job `pick` chooses, atomically: a job taken by someone else
   * between the snapshot and the take is picked again from a fresh snapshot.
   * Undefined when `pick` finds nothing.
   */
  claim(pick: Pick): Promise<Claim | undefined>;
  /**
   * The claimed job ended here: it leaves its suite's count, and `entries`
   * (what happened to it) are kept with the run. False when the claim was no
   * longer ours (our lease expired and the job was handed on): nothing kept.
   */
  finish(claim: Claim, entries: readonly StoredEntry[]): Promise<boolean>;
  /** Hands a claimed job that did not start back to the queue. */
  release(claim: Claim): Promise<void>;
  /** Keeps entries of jobs not claimed now (a suite restore after the job ended). */
  record(entries: readonly StoredEntry[]): Promise<void>;
  /**
   * Resolves true when a job of `backend:system` is pending, false when
   * none can come any more; waits while such jobs run on other runners
   * (their runner may be lost and the jobs come back).
   */
  awaitWork(backend: string, system: string, signal: AbortSignal): Promise<boolean>;
  /** Jobs never claimed, for this runner's own summary when nobody else can take them. */
  unclaimed(): Promise<readonly Job[]>;
  /** Renews this runner's lease on its claims; the store is lost when it cannot. */
  renew(): Promise<void>;
  /** This runner is done: what it still holds goes back to the queue, and it leaves the run. */
  leave(): Promise<void>;
  /** How long each job took when it last passed, from the runs before (shared history); empty if none. */
  history(): Promise<ReadonlyMap<string, number>>;
  /** Remembers how long a passing job took, for later runs. */
  recordDuration(job: Job, ms: number): Promise<void>;
  readonly sync?: SyncPrimitives;
}

/** Everything a run kept, for the merged summary and reports. */
export interface RunRecordStored {
  /** The run's job names, in its order. */
  readonly jobs: readonly string[];
  readonly seed: number;
  /** Workers of every runner that joined. */
  readonly workers: number;
  readonly runners: number;
  readonly entries: readonly StoredEntry[];
  /** Jobs that never got a result because no runner was left to take them. */
  readonly leftover: readonly number[];
}

/** A store error that means the shared state is gone or out of reach. */
export class StoreLostError extends Error {
  override readonly name = 'StoreLostError';
}

/** What decides a run: runners whose digests differ cannot share it. */
export interface RunDigest {
  /** The project's name (spread.yaml `project:`). */
  readonly project: string;
  /** Digest of the packed project content (file names, modes and contents). */
  readonly content: string;
  /** The options that change what a job does (-repeat, -restore...), as text. */
  readonly options: string;
}

export interface JoinRequest {
  /** The selected jobs, sorted: the matrix after filters. */
  readonly jobs: readonly Job[];
  readonly digest: RunDigest;
  /** This runner's workers. */
  readonly workers: number;
  /** The seed this runner would use; the first runner's becomes the run's. */
  readonly seed: number;
}

export interface Joined {
  readonly store: RunStore;
  /** The run's seed. */
  readonly seed: number;
  /** This runner's name in the run (host, pid and a random part). */
  readonly runner: string;
  /** Order of arrival, from 1. */
  readonly runnerNo: number;
  /** True for the runner that created the run. */
  readonly created: boolean;
}

/** A run several runners share (-queue), before this runner joins it. */
export interface SharedRun {
  /** The queue's address with any password hidden, for messages. */
  readonly label: string;
  /** The run's name (RUN in the URL). */
  readonly run: string;
  /** Joins, or refuses with a RunMismatchError saying what differs. */
  join(request: JoinRequest): Promise<Joined>;
  /** Reads the whole run once it has ended (`-summary`), waiting for its runners. */
  waitForEnd(signal: AbortSignal, onWait?: (message: string) => void): Promise<RunRecordStored>;
  /** Closes the connection; idempotent. */
  close(): Promise<void>;
}

/** A runner whose matrix or project differs from the run's. */
export class RunMismatchError extends Error {
  override readonly name = 'RunMismatchError';
}
