/**
 * The embedded sync service: the runner's own, in memory. Every change
 * wakes the group's waiters, which look again at what they wait for; a
 * group has a handful of instances, so this costs nothing worth indexing.
 */
import { formatDuration } from '../project/duration.js';
import { plural, SyncError } from './sync.js';
import type { SyncService, WaitOptions } from './sync.js';

interface GroupState {
  readonly states: Map<string, number>;
  readonly topics: Map<string, string[]>;
  failed?: string;
  readonly waiters: Set<() => void>;
}

export class MemorySync implements SyncService {
  private readonly groups = new Map<string, GroupState>();
  private closed = false;

  private group(name: string): GroupState {
    if (this.closed) throw new SyncError('the sync service is closed (the run is ending)');
    let g = this.groups.get(name);
    if (!g) this.groups.set(name, (g = { states: new Map(), topics: new Map(), waiters: new Set() }));
    if (g.failed !== undefined) throw new SyncError(g.failed);
    return g;
  }

  private static wake(g: GroupState): void {
    for (const waiter of [...g.waiters]) waiter();
  }

  async signal(group: string, state: string): Promise<number> {
    const g = this.group(group);
    const n = (g.states.get(state) ?? 0) + 1;
    g.states.set(state, n);
    MemorySync.wake(g);
    return n;
  }

  barrier(group: string, state: string, target: number, o: WaitOptions): Promise<void> {
    return this.until(group, o, (g) => ((g.states.get(state) ?? 0) >= target ? true : undefined),
      (g) => `timed out after ${formatDuration(o.timeoutMs)} waiting for ${plural(target, 'instance')} in state ${state} (${g.states.get(state) ?? 0} so far)`)
      .then(() => undefined);
  }

  async publish(group: string, topic: string, message: string): Promise<number> {
    const g = this.group(group);
    let list = g.topics.get(topic);
    if (!list) g.topics.set(topic, (list = []));
    list.push(message);
    MemorySync.wake(g);
    return list.length;
  }

  read(group: string, topic: string, count: number, o: WaitOptions): Promise<string[]> {
    return this.until(group, o, (g) => {
      const list = g.topics.get(topic) ?? [];
      return list.length >= count ? list.slice(0, count) : undefined;
    }, (g) => `timed out after ${formatDuration(o.timeoutMs)} waiting for ${plural(count, 'message')} on topic ${topic} (${g.topics.get(topic)?.length ?? 0} so far)`);
  }

  async fail(group: string, reason: string): Promise<void> {
    let g = this.groups.get(group);
    if (!g) this.groups.set(group, (g = { states: new Map(), topics: new Map(), waiters: new Set() }));
    g.failed ??= reason;
    MemorySync.wake(g);
  }

  async clear(group: string): Promise<void> {
    const g = this.groups.get(group);
    if (!g) return;
    g.failed ??= 'the job ended';
    MemorySync.wake(g);
    this.groups.delete(group);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const g of this.groups.values()) {
      g.failed ??= 'the sync service is closed (the run is ending)';
      MemorySync.wake(g);
    }
    this.groups.clear();
  }

  /** Resolve with `check`'s value once it has one; reject on failure, timeout or abort. */
  private until<T>(group: string, o: WaitOptions, check: (g: GroupState) => T | undefined, timedOut: (g: GroupState) => string): Promise<T> {
    let g: GroupState;
    try {
      g = this.group(group);
    } catch (err) {
      return Promise.reject(err);
    }
    const now = check(g);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<T>((resolve, reject) => {
      const done = (err: Error | undefined, value?: T) => {
        g.waiters.delete(look);
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value as T);
      };
      const look = () => {
        if (g.failed !== undefined) return done(new SyncError(g.failed));
        const value = check(g);
        if (value !== undefined) done(undefined, value);
      };
      const onAbort = () => done(new SyncError('the wait was cancelled'));
      const timer = Number.isFinite(o.timeoutMs) ? setTimeout(() => done(new SyncError(timedOut(g))), Math.min(o.timeoutMs, 2 ** 31 - 1)) : undefined;
      g.waiters.add(look);
      if (o.signal?.aborted) onAbort();
      else o.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
