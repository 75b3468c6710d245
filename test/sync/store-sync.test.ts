/**
 * The sync service over a store's flat primitives (src/sync/store-sync.ts):
 * groups kept apart, timeouts that say what they waited for, and a failure
 * that ends every wait at once, here over primitives kept in memory the way
 * a store keeps them (a counter per state, a list per topic, polled).
 */
import assert from 'node:assert/strict';
import { setTimeout as wait } from 'node:timers/promises';
import { test } from 'node:test';
import { StoreSync } from '../../src/sync/store-sync.js';
import type { StorePrimitives } from '../../src/sync/store-sync.js';

/** Primitives as a store offers them: polled, like the Redis store. */
function polledPrimitives(): StorePrimitives & { keys(): string[] } {
  const states = new Map<string, number>();
  const topics = new Map<string, string[]>();
  const pause = (signal: AbortSignal) => wait(5, undefined, { signal });
  return {
    keys: () => [...states.keys(), ...topics.keys()],
    signalEntry: async (state) => {
      states.set(state, (states.get(state) ?? 0) + 1);
      return states.get(state)!;
    },
    barrier: async (state, target, signal) => {
      while ((states.get(state) ?? 0) < target) await pause(signal);
    },
    publish: async (topic, payload) => {
      const list = topics.get(topic) ?? [];
      list.push(payload);
      topics.set(topic, list);
      return list.length;
    },
    subscribe: async function* (topic, signal) {
      for (let next = 0; !signal.aborted;) {
        const items = (topics.get(topic) ?? []).slice(next);
        for (const item of items) yield item;
        next += items.length;
        if (items.length === 0) await pause(signal).catch(() => {});
      }
    },
  };
}

const FOREVER = { timeoutMs: Infinity };

test('over a store: sequence numbers, barriers and topics, each group apart', async () => {
  const store = polledPrimitives();
  const sync = new StoreSync(store);
  assert.equal(await sync.signal('g1', 'ready'), 1);
  assert.equal(await sync.signal('g2', 'ready'), 1);
  const barrier = sync.barrier('g1', 'ready', 2, FOREVER);
  const read = sync.read('g1', 'news', 2, FOREVER);
  assert.equal(await sync.publish('g1', 'news', 'a'), 1);
  assert.equal(await sync.signal('g1', 'ready'), 2);
  assert.equal(await sync.publish('g1', 'news', 'b c'), 2);
  await barrier;
  assert.deepEqual(await read, ['a', 'b c']);
  assert.ok(store.keys().every((k) => k.startsWith('g1/') || k.startsWith('g2/')), 'every name is scoped by its group');
  await sync.close();
});

test('over a store: timeouts say what they waited for; a failure ends the waits at once, even those started after it', async () => {
  const sync = new StoreSync(polledPrimitives());
  await sync.signal('g', 'ready');
  await assert.rejects(sync.barrier('g', 'ready', 3, { timeoutMs: 20 }), { name: 'SyncError', message: 'timed out after 20ms waiting for 3 instances in state ready' });
  await sync.publish('g', 'news', 'one');
  await assert.rejects(sync.read('g', 'news', 2, { timeoutMs: 20 }), { message: 'timed out after 20ms waiting for 2 messages on topic news (1 so far)' });
  const waits = [sync.barrier('g', 'x', 2, FOREVER), sync.read('g', 't', 1, FOREVER)];
  await sync.fail('g', 'instance 3 failed executing');
  await sync.fail('g', 'later reason');
  for (const w of waits) await assert.rejects(w, { message: 'instance 3 failed executing' });
  await assert.rejects(sync.barrier('g', 'y', 1, FOREVER), { message: 'instance 3 failed executing' });
  await sync.barrier('other', 'y', 0, FOREVER);
  const cancelled = new AbortController();
  const pending = sync.barrier('other', 'z', 1, { timeoutMs: Infinity, signal: cancelled.signal });
  cancelled.abort();
  await assert.rejects(pending, { message: 'the wait was cancelled' });
  const closing = sync.barrier('other', 'z', 1, FOREVER);
  await sync.close();
  await assert.rejects(closing, { message: /closed/ });
});
