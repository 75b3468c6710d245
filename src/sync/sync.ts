/**
 * The sync primitives that keep the instances of a multi-machine task in
 * step (docs/tasks.md), after testground's sync service: an instance
 * signals that it entered a state and gets a sequence number (1 for the
 * first to arrive); a barrier waits until a number of instances entered a
 * state; a topic is an ordered list of one-line messages that instances
 * publish to and read from the start. Every name lives in a group, one
 * attempt (round) of one multi-machine job, so repeats start afresh.
 *
 * A failed group answers every call, waiting or not, with its reason at
 * once: when one instance fails, the others never hang on a barrier.
 *
 * One interface, two implementations: memory.ts (the runner's own, the
 * default) and redis.ts (with a shared queue, for instances placed by
 * different runners). The scheduler and the wire protocol (wire.ts) only
 * see this interface.
 */

export interface WaitOptions {
  /** Give up after this long (Infinity: never). */
  readonly timeoutMs: number;
  /** Stop waiting (the caller hung up, the run is killed). */
  readonly signal?: AbortSignal;
}

export interface SyncService {
  /** Enter `state`; resolves to how many entered it so far, this one included. */
  signal(group: string, state: string): Promise<number>;
  /** Resolves once `target` instances entered `state`. */
  barrier(group: string, state: string, target: number, o: WaitOptions): Promise<void>;
  /** Append a one-line message to `topic`; resolves to its position, from 1. */
  publish(group: string, topic: string, message: string): Promise<number>;
  /** The first `count` messages of `topic`, once there are that many. */
  read(group: string, topic: string, count: number, o: WaitOptions): Promise<string[]>;
  /** The group failed: every call, current and future, rejects with `reason`. The first reason stays. */
  fail(group: string, reason: string): Promise<void>;
  /** Forget the group (its job ended). */
  clear(group: string): Promise<void>;
  /** Let go of connections; pending waits reject. */
  close(): Promise<void>;
}

/** Why a sync call failed, in words for the script's output: a timeout, a failed group, a closed service. */
export class SyncError extends Error {
  override readonly name = 'SyncError';
}

/** Names of states and topics: what a shell word can hold without quoting. */
export const SYNC_NAME = /^[A-Za-z0-9_.:@%+=,-]{1,200}$/;

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
