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
import type { AbortReason, Outcome, ScriptError, Verb } from '../events.js';
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
    /** The bounded output (output.ts) with head and tail in base64, so any bytes survive JSON. */
    readonly output: { readonly head: string; readonly elided: number; readonly tail: string };
    readonly error?: ScriptError;
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
  /** Gathering the machines of multi-machine jobs across runners; shared stores only. */
  readonly gathering?: GatherPrimitives;
}

/** One machine offered to a multi-machine job's gathering. */
export interface Seat {
  /** Unique in the run: the seat's own id. */
  readonly seat: string;
  /** The runner whose machine it is (set by the store). */
  readonly runner: string;
  /** What the other instances reach it at (`$SPREAD_INSTANCE_ADDRESSES`). */
  readonly host: string;
  /** The machine's label, for logs. */
  readonly label: string;
}

/**
 * A gathering as the store sees it. `off`: called off, the job is aborted
 * (its owner records that); `dissolved`: it ended without the job, whose
 * claim went (or goes) back to the queue.
 */
export type GatherState =
  | { readonly state: 'gathering'; readonly seats: readonly Seat[] }
  /** Seats in instance order; `lost`: runners of seats whose lease is gone. */
  | { readonly state: 'running'; readonly seats: readonly Seat[]; readonly lost: readonly string[] }
  | { readonly state: 'off' | 'dissolved'; readonly reason: string };

/**
 * What gathering across runners needs from a store (run/shared-group.ts):
 * at most one gathering per system in the whole run, seats taken and given
 * up atomically, the workers of each runner counted so that a gathering
 * that can no longer fill is called off, meetings of the instances between
 * the task's scripts, and the lease of every runner taking part checked at
 * each step (a lost runner's seats drop out while gathering; its instances
 * count as lost once running).
 */
export interface GatherPrimitives {
  /** This runner has `delta` more (or fewer) workers of `system` (`backend:system`). */
  workers(system: string, delta: number): Promise<void>;
  /** Opens the gathering of a claimed job with this machine in the first seat; 'busy' when `system` has one. */
  open(claim: Claim, system: string, count: number, seat: Omit<Seat, 'runner'>): Promise<{ readonly id: string } | 'busy'>;
  /** Takes a seat in the gathering open on `system`, if there is one. */
  join(system: string, seat: Omit<Seat, 'runner'>): Promise<{ readonly id: string; readonly job: number; readonly count: number; readonly owner: string } | undefined>;
  /** Whether a gathering is open on `system`. */
  isOpen(system: string): Promise<boolean>;
  /** Whether one of these (multi-machine) jobs is claimed by a live runner that is about to open its gathering. */
  isOpening(jobs: readonly number[]): Promise<boolean>;
  status(id: string): Promise<GatherState>;
  /** Gives up a seat before the group starts (an owner's leaving dissolves it); the state after. */
  leave(id: string, seat: string): Promise<GatherState>;
  /**
   * Reports `report` (JSON) for `instance` at a meeting `point`, unless one
   * is there already (the first report wins), and returns every report so
   * far with the instances of lost runners.
   */
  meet(id: string, point: string, instance?: number, report?: string): Promise<{ readonly reports: ReadonlyMap<number, string>; readonly lost: ReadonlyMap<number, string> }>;
  /** Keeps a follower's records of the job with the group, for its owner to record. */
  keep(id: string, entries: readonly StoredEntry[]): Promise<void>;
  /** The records kept with the group so far, taken. */
  take(id: string): Promise<StoredEntry[]>;
  /** A claim whose group lost a runner goes back to the queue, once (a job lost twice is aborted). */
  requeue(claim: Claim, lostRunner: string): Promise<void>;
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
