/**
 * The in-process store: the default when no `-queue` is given, exactly the
 * original's shared slice of jobs. Workers are async loops in one thread, so
 * a claim is atomic as long as picking and taking stay in one synchronous
 * stretch (style §15): no lock, no lease.
 */
import type { Job } from '../project/types.js';
import type { Claim, Pick, RunStore, StoredEntry, SyncPrimitives } from './store.js';
import { suiteKey } from './store.js';

export class MemoryStore implements RunStore {
  readonly shared = false;
  readonly lost = new AbortController().signal;
  readonly sync: SyncPrimitives = memorySync();
  private readonly pending: (Job | undefined)[];
  private readonly suiteWorkers = new Map<string, number>();
  /** Entries of this run, kept for symmetry with shared stores (and their contract tests). */
  readonly entries: StoredEntry[] = [];

  constructor(jobs: readonly Job[]) {
    this.pending = [...jobs];
  }

  claim(pick: Pick): Promise<Claim | undefined> {
    const index = pick({ pending: this.pending, suiteWorkers: this.suiteWorkers });
    if (index === undefined) return Promise.resolve(undefined);
    const job = this.pending[index];
    if (!job) throw new Error(`picked job ${index} is not pending`);
    this.pending[index] = undefined;
    this.count(job, +1);
    return Promise.resolve({ job, index });
  }

  finish(claim: Claim, entries: readonly StoredEntry[]): Promise<boolean> {
    this.count(claim.job, -1);
    this.entries.push(...entries);
    return Promise.resolve(true);
  }

  release(claim: Claim): Promise<void> {
    this.count(claim.job, -1);
    this.pending[claim.index] = claim.job;
    return Promise.resolve();
  }

  record(entries: readonly StoredEntry[]): Promise<void> {
    this.entries.push(...entries);
    return Promise.resolve();
  }

  /** Only this process runs jobs: none comes back once taken. */
  awaitWork(backend: string, system: string): Promise<boolean> {
    return Promise.resolve(this.pending.some((j) => j !== undefined && j.backend.name === backend && j.system.name === system));
  }

  unclaimed(): Promise<readonly Job[]> {
    return Promise.resolve(this.pending.filter((j): j is Job => j !== undefined));
  }

  renew(): Promise<void> {
    return Promise.resolve();
  }

  leave(): Promise<void> {
    return Promise.resolve();
  }

  /** The history file is the runner's business; nothing is shared beyond it. */
  history(): Promise<ReadonlyMap<string, number>> {
    return Promise.resolve(new Map());
  }

  recordDuration(): Promise<void> {
    return Promise.resolve();
  }

  private count(job: Job, delta: number): void {
    const key = suiteKey(job);
    this.suiteWorkers.set(key, (this.suiteWorkers.get(key) ?? 0) + delta);
  }
}

/** The sync primitives within one process. */
function memorySync(): SyncPrimitives {
  const states = new Map<string, number>();
  const topics = new Map<string, string[]>();
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  const until = (ready: () => boolean, signal: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (signal.aborted) {
          waiters.delete(check);
          reject(signal.reason);
        } else if (ready()) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
      signal.addEventListener('abort', check, { once: true });
      check();
    });
  return {
    signalEntry: (state) => {
      const n = (states.get(state) ?? 0) + 1;
      states.set(state, n);
      wake();
      return Promise.resolve(n);
    },
    barrier: (state, target, signal) => until(() => (states.get(state) ?? 0) >= target, signal),
    publish: (topic, payload) => {
      const list = topics.get(topic) ?? [];
      topics.set(topic, list);
      list.push(payload);
      wake();
      return Promise.resolve(list.length);
    },
    subscribe: async function* (topic, signal) {
      for (let next = 0; ;) {
        try {
          await until(() => (topics.get(topic)?.length ?? 0) > next, signal);
        } catch {
          return;
        }
        yield topics.get(topic)![next++]!;
      }
    },
  };
}
