/**
 * What every store must do (src/store/store.ts), run against each engine:
 * the same picking rules give the same first picks, concurrent claims take
 * every job exactly once, a released job comes back, finished jobs leave
 * their suite's count, and the sync primitives count and order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Job } from '../../src/project/types.js';
import { permutation, pickJob } from '../../src/run/pick-job.js';
import type { Picker } from '../../src/run/pick-job.js';
import type { RunStore } from '../../src/store/store.js';
import { matrixOf } from '../helpers/matrix.js';

/** `runners` stores sharing one run of `jobs` (one for an engine that cannot share). */
export type StoreMaker = (jobs: readonly Job[], runners: number) => Promise<{ stores: RunStore[]; done(): Promise<void> }>;

export const contractJobs = async (): Promise<Job[]> => (await matrixOf({
  'spread.yaml': `project: contract
path: /remote/contract
backends:
    local:
        systems: [sys-1, sys-2]
suites:
    one/: {summary: one}
    two/: {summary: two}
`,
  ...Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`one/t${i}/task.yaml`, 'summary: t\nexecute: "true"\n'])),
  ...Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`two/t${i}/task.yaml`, `summary: t\nexecute: "true"\n${i === 0 ? 'priority: 5\n' : ''}`])),
  'two/sampled/task.yaml': 'summary: s\nsamples: 3\nexecute: "true"\n',
})).jobs;

const picker = (jobs: readonly Job[], system: string, seed: number, last?: Job): Picker => ({
  backend: 'local', system, order: permutation(jobs.length, seed), ...(last ? { last, suite: last.suite } : {}),
});

export function storeContract(name: string, make: StoreMaker, skip: string | false, sharing: boolean): void {
  test(`${name}: claims follow the picking rules (priority first, then the worker's own order)`, { skip }, async () => {
    const jobs = await contractJobs();
    const { stores: [store], done } = await make(jobs, 1);
    try {
      const claim = await store!.claim((s) => pickJob(s.pending, picker(jobs, 'sys-1', 7), s.suiteWorkers));
      assert.equal(claim?.job.name, 'local:sys-1:two/t0', 'the priority job first');
      const next = await store!.claim((s) => pickJob(s.pending, picker(jobs, 'sys-1', 7, claim!.job), s.suiteWorkers));
      const expected = pickJob(jobs.map((j, i) => (i === claim!.index ? undefined : j)), picker(jobs, 'sys-1', 7, claim!.job), new Map([[`local\0sys-1\0two/`, 1]]));
      assert.equal(next?.index, expected, 'the same pick as over a plain list');
    } finally {
      await done();
    }
  });

  test(`${name}: concurrent workers${sharing ? ' of several runners' : ''} take every job exactly once`, { skip }, async () => {
    const jobs = await contractJobs();
    const { stores, done } = await make(jobs, sharing ? 3 : 1);
    try {
      const taken: string[] = [];
      const worker = async (store: RunStore, system: string, seed: number) => {
        let last: Job | undefined;
        for (;;) {
          const claim = await store.claim((s) => pickJob(s.pending, picker(jobs, system, seed, last), s.suiteWorkers));
          if (!claim) return;
          taken.push(claim.job.name);
          last = claim.job;
          assert.equal(await store.finish(claim, [{ kind: 'result', job: claim.index, at: Date.now(), outcome: 'task-done' }]), true);
        }
      };
      await Promise.all(stores.flatMap((store, r) => ['sys-1', 'sys-2'].flatMap((system) => [1, 2].map((w) => worker(store, system, r * 10 + w)))));
      assert.deepEqual([...taken].sort(), jobs.map((j) => j.name).sort());
      assert.deepEqual(await stores[0]!.unclaimed(), []);
      for (const store of stores) assert.equal(await store.awaitWork('local', 'sys-1', new AbortController().signal), false);
    } finally {
      await done();
    }
  });

  test(`${name}: a released job comes back; a finished one leaves its suite's count`, { skip }, async () => {
    const jobs = await contractJobs();
    const { stores: [store], done } = await make(jobs, 1);
    try {
      const first = (await store!.claim((s) => pickJob(s.pending, picker(jobs, 'sys-2', 1), s.suiteWorkers)))!;
      let counts = new Map<string, number>();
      await store!.claim((s) => {
        counts = new Map(s.suiteWorkers);
        return undefined;
      });
      assert.equal(counts.get(`local\0sys-2\0${first.job.suite.name}`), 1, 'the suite counts its worker');
      await store!.release(first);
      const again = await store!.claim((s) => (s.pending[first.index] ? first.index : undefined));
      assert.equal(again?.index, first.index, 'the released job is pending again');
      await store!.finish(again!, []);
      await store!.claim((s) => {
        counts = new Map(s.suiteWorkers);
        return undefined;
      });
      assert.equal(counts.get(`local\0sys-2\0${first.job.suite.name}`) ?? 0, 0);
      assert.equal((await store!.unclaimed()).length, jobs.length - 1);
      assert.equal(await store!.awaitWork('local', 'sys-2', new AbortController().signal), true);
    } finally {
      await done();
    }
  });

  test(`${name}: sync primitives: entry numbers, barriers, ordered topics`, { skip }, async () => {
    const jobs = await contractJobs();
    const { stores, done } = await make(jobs, sharing ? 2 : 1);
    try {
      const [a, b] = [stores[0]!.sync!, (stores[1] ?? stores[0]!).sync!];
      const signal = new AbortController();
      const ready = a.barrier('ready', 2, signal.signal);
      assert.equal(await a.signalEntry('ready'), 1);
      assert.equal(await b.signalEntry('ready'), 2);
      await ready;
      assert.equal(await a.publish('addr', 'one'), 1);
      assert.equal(await b.publish('addr', 'two'), 2);
      const seen: string[] = [];
      for await (const payload of b.subscribe('addr', signal.signal)) {
        seen.push(payload);
        if (seen.length === 2) break;
      }
      assert.deepEqual(seen, ['one', 'two']);
      const never = a.barrier('never', 1, signal.signal);
      signal.abort(new Error('stopped'));
      await assert.rejects(never);
    } finally {
      await done();
    }
  });
}
