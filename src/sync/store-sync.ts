/**
 * The sync service over a run store's primitives (style §21: shared run
 * state behind one interface). A store offers flat primitives, a counter
 * per state, a barrier on it and an ordered topic; this adds what
 * multi-machine jobs need on top, the same way on every store: names scoped
 * by group, timeouts that say what they waited for, and failure (the first
 * reason, kept as the first message of a topic of the group, ends every wait
 * at once, wherever the waiting instance's runner is). Unlike MemorySync,
 * signals and messages of a failed group are still taken: a store's
 * primitives cannot look without waiting; every wait fails all the same.
 *
 * With a shared queue (`-queue=redis://...`) the run's store is Redis, so
 * instances coordinate through it; MemorySync stays the embedded default,
 * without the polling a store may need.
 */
import { formatDuration } from '../project/duration.js';
import { plural, SyncError } from './sync.js';
import type { SyncService, WaitOptions } from './sync.js';

/** What a run store offers (src/store/store.ts `SyncPrimitives`): flat names, no groups. */
export interface StorePrimitives {
  signalEntry(state: string): Promise<number>;
  barrier(state: string, target: number, signal: AbortSignal): Promise<void>;
  publish(topic: string, payload: string): Promise<number>;
  subscribe(topic: string, signal: AbortSignal): AsyncIterable<string>;
}

const FAILED = 'failed';

export class StoreSync implements SyncService {
  private readonly closed = new AbortController();

  constructor(private readonly store: StorePrimitives) {}

  private name(group: string, kind: 's' | 't' | 'x', name: string): string {
    return `${group}/${kind}/${name}`;
  }

  /** The group's failure, once there is one: the first message of its failure topic. */
  private async failure(group: string, signal: AbortSignal): Promise<string | undefined> {
    for await (const reason of this.store.subscribe(this.name(group, 'x', FAILED), signal)) return reason;
    return undefined;
  }

  private open(): void {
    if (this.closed.signal.aborted) throw new SyncError('the sync service is closed (the run is ending)');
  }

  // Signals and messages of a failed group are still taken (a store cannot peek without waiting); its waits fail.
  async signal(group: string, state: string): Promise<number> {
    this.open();
    return this.store.signalEntry(this.name(group, 's', state));
  }

  barrier(group: string, state: string, target: number, o: WaitOptions): Promise<void> {
    return this.waitFor(group, o, (signal) => this.store.barrier(this.name(group, 's', state), target, signal),
      () => `timed out after ${formatDuration(o.timeoutMs)} waiting for ${plural(target, 'instance')} in state ${state}`);
  }

  async publish(group: string, topic: string, message: string): Promise<number> {
    this.open();
    return this.store.publish(this.name(group, 't', topic), message);
  }

  read(group: string, topic: string, count: number, o: WaitOptions): Promise<string[]> {
    let got = 0;
    return this.waitFor(group, o, async (signal) => {
      const messages: string[] = [];
      for await (const m of this.store.subscribe(this.name(group, 't', topic), signal)) {
        messages.push(m);
        got = messages.length;
        if (messages.length === count) return messages;
      }
      throw new SyncError('the wait was cancelled');
    }, () => `timed out after ${formatDuration(o.timeoutMs)} waiting for ${plural(count, 'message')} on topic ${topic} (${got} so far)`);
  }

  async fail(group: string, reason: string): Promise<void> {
    await this.store.publish(this.name(group, 'x', FAILED), reason);
  }

  async clear(): Promise<void> {
    // A store's keys live as long as its run (a shared run expires them).
  }

  async close(): Promise<void> {
    this.closed.abort();
  }

  /** Run `wait` until it resolves, the group fails, the timeout passes or the caller gives up. */
  private async waitFor<T>(group: string, o: WaitOptions, wait: (signal: AbortSignal) => Promise<T>, timedOut: () => string): Promise<T> {
    this.open();
    const stop = new AbortController();
    const signals = [stop.signal, this.closed.signal, ...(o.signal ? [o.signal] : [])];
    const signal = AbortSignal.any(signals);
    let timer: NodeJS.Timeout | undefined;
    const outcomes: Promise<T>[] = [
      wait(signal),
      this.failure(group, signal).then((reason) => { throw new SyncError(reason ?? 'the wait was cancelled'); }),
      new Promise<T>((_, reject) => {
        if (Number.isFinite(o.timeoutMs)) timer = setTimeout(() => reject(new SyncError(timedOut())), Math.min(o.timeoutMs, 2 ** 31 - 1));
        const onAbort = () => reject(new SyncError(this.closed.signal.aborted ? 'the sync service is closed (the run is ending)' : 'the wait was cancelled'));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }),
    ];
    try {
      return await Promise.race(outcomes);
    } catch (err) {
      if (err instanceof SyncError) throw err;
      throw new SyncError((err as Error).message);
    } finally {
      clearTimeout(timer);
      stop.abort();
      for (const p of outcomes) p.catch(() => {});
    }
  }
}
