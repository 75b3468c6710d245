/**
 * Which job a worker takes next (spec §5.2), as a pure function over the
 * shared pending list: the rest of a sampled task first (a worker goes on
 * with the next sample, so samples run in order; another worker whose walk
 * reaches the task may take one too, as in the original), then among this
 * system's jobs of the highest pending priority, walking the worker's own
 * seeded permutation: a job of the suite the worker is in, else the one
 * whose suite has the fewest workers in it.
 * A store (src/store/) applies it to a snapshot of the run's queue and
 * takes the returned slot atomically, so no two workers ever get the same
 * job and every store picks the same way.
 */
import seedrandom from 'seedrandom';
import type { Job, Suite } from '../project/types.js';
import { suiteKey } from '../store/store.js';

export { suiteKey };

export interface Picker {
  readonly backend: string;
  readonly system: string;
  /** The suite the worker is inside, if any. */
  readonly suite?: Suite;
  /** The worker's previous job. */
  readonly last?: Job;
  /** This worker's permutation of the pending indexes. */
  readonly order: readonly number[];
}

export function pickJob(pending: readonly (Job | undefined)[], w: Picker, suiteWorkers: ReadonlyMap<string, number>): number | undefined {
  if (w.last && w.last.task.samples > 1) {
    const next = minSample(pending, w.last);
    if (next !== undefined) return next;
  }
  const mine = (job: Job | undefined): job is Job => job !== undefined && job.backend.name === w.backend && job.system.name === w.system;
  let priority = -Infinity;
  for (const job of pending) if (mine(job) && job.priority > priority) priority = job.priority;

  let best: number | undefined;
  let bestWorkers = Infinity;
  for (const i of w.order) {
    const job = pending[i];
    if (!mine(job) || job.priority < priority) continue;
    if (job.suite === w.suite) {
      best = i;
      break;
    }
    const workers = suiteWorkers.get(suiteKey(job)) ?? 0;
    if (workers < bestWorkers) {
      best = i;
      bestWorkers = workers;
    }
  }
  if (best === undefined) return undefined;
  const job = pending[best]!;
  return job.task.samples > 1 ? minSample(pending, job) : best;
}

/** The pending job of the lowest sample for the same task on the same backend and system. */
function minSample(pending: readonly (Job | undefined)[], other: Job): number | undefined {
  let best: number | undefined;
  let bestSample = Infinity;
  pending.forEach((job, i) => {
    if (job && job.task === other.task && job.backend === other.backend && job.system === other.system && job.sample < bestSample) {
      best = i;
      bestSample = job.sample;
    }
  });
  return best;
}

/**
 * A permutation of 0..n-1 from a seed (Fisher-Yates over seedrandom), one per
 * worker (seed + worker index), so `-seed=N` reproduces a run's order here;
 * it cannot reproduce Go's math/rand orders.
 */
export function permutation(n: number, seed: number): number[] {
  const rng = seedrandom(String(seed));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
