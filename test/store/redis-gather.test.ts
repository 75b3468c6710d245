/**
 * Gathering multi-machine jobs across runners (store.ts GatherPrimitives)
 * on a real redis-server, several runners joined to one run: one gathering
 * per system, seats in order with the owner's first, a full gathering
 * running, calls-off when the run's workers cannot fill it, seats given up
 * by stopped runners and dropped with lost ones, meetings where the first
 * report wins and lost instances are named, followers' records handed to
 * the owner, and a requeue after a lost runner that happens once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Job } from '../../src/project/types.js';
import { parseQueueUrl } from '../../src/store/queue-url.js';
import { connectRedisRun } from '../../src/store/redis.js';
import type { GatherPrimitives, Joined, SharedRun } from '../../src/store/store.js';
import { redisForFile, redisSkip } from '../helpers/redis.js';
import { contractJobs } from './contract.js';

const skip = redisSkip();
const redis = redisForFile();

const SYS = 'local:sys-1';
const seat = (name: string) => ({ seat: name, host: `10.0.0.${name.length}`, label: `${name}-machine` });

/** `n` runners in one fresh run (a 1 s lease), each with `workers[i]` workers of SYS. */
async function runners(workers: readonly number[]): Promise<{ jobs: Job[]; all: (Joined & { g: GatherPrimitives; run: SharedRun })[]; done(): Promise<void> }> {
  const jobs = await contractJobs();
  const url = `${redis().url}/5/g-${randomBytes(4).toString('hex')}?lease=1s`;
  const all: (Joined & { g: GatherPrimitives; run: SharedRun })[] = [];
  for (const n of workers) {
    const run = await connectRedisRun(parseQueueUrl(url));
    const joined = await run.join({ jobs, digest: { project: 'contract', content: 'c', options: '{}' }, workers: n, seed: 1 });
    const g = joined.store.gathering!;
    if (n > 0) await g.workers(SYS, n);
    all.push({ ...joined, g, run });
  }
  return { jobs, all, done: async () => void (await Promise.all(all.map((r) => r.store.leave().catch(() => {})))) };
}

/** A claim of the first pending job of SYS. */
const claimSys1 = (r: Joined) => r.store.claim((s) => {
  const i = s.pending.findIndex((j) => j?.system.name === 'sys-1');
  return i < 0 ? undefined : i;
});

async function until<T>(look: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const v = await look();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('one gathering per system in the run; seats in order, the owner\'s first; full, it runs and the system is free again', { skip }, async () => {
  const { all: [a, b], done } = await runners([1, 2]);
  try {
    const claim = (await claimSys1(a!))!;
    assert.equal(await b!.g.isOpening([claim.index]), true, 'claimed, its gathering about to open');
    const opened = await a!.g.open(claim, SYS, 3, seat('a1'));
    assert.notEqual(opened, 'busy');
    assert.equal(await b!.g.isOpening([claim.index]), false);
    const { id } = opened as { id: string };
    const other = (await claimSys1(b!))!;
    assert.equal(await b!.g.open(other, SYS, 3, seat('b1')), 'busy', 'one gathering per system');
    assert.equal(await b!.g.isOpen(SYS), true);
    assert.equal(await b!.g.isOpen('local:sys-2'), false);

    assert.deepEqual(await b!.g.join(SYS, seat('b1')), { id, job: claim.index, count: 3, owner: a!.runner });
    const gathering = await a!.g.status(id);
    assert.equal(gathering.state, 'gathering');
    assert.deepEqual(gathering.state === 'gathering' && gathering.seats.map((s) => [s.seat, s.runner]), [['a1', a!.runner], ['b1', b!.runner]]);
    await b!.g.join(SYS, seat('b22'));
    assert.deepEqual(await a!.g.status(id), {
      state: 'running', lost: [],
      seats: [{ ...seat('a1'), runner: a!.runner }, { ...seat('b1'), runner: b!.runner }, { ...seat('b22'), runner: b!.runner }],
    });
    assert.equal(await b!.g.isOpen(SYS), false, 'a full gathering frees the system');
    assert.equal(await b!.g.join(SYS, seat('late')), undefined);
    assert.notEqual(await b!.g.open(other, SYS, 3, seat('b3')), 'busy', 'the next group may gather');
  } finally {
    await done();
  }
});

test('a gathering the run\'s workers cannot fill is called off: at once, or when workers end', { skip }, async () => {
  const { all: [a, b], done } = await runners([1, 1]);
  try {
    const { id } = (await a!.g.open((await claimSys1(a!))!, SYS, 3, seat('a1'))) as { id: string };
    assert.deepEqual(await a!.g.status(id), { state: 'off', reason: `only 2 workers of ${SYS} left in the shared run to run it` });
    assert.equal(await a!.g.isOpen(SYS), false);

    await b!.g.workers(SYS, 1);
    const { id: next } = (await a!.g.open((await claimSys1(a!))!, SYS, 3, seat('a2'))) as { id: string };
    assert.equal((await a!.g.status(next)).state, 'gathering');
    await b!.g.workers(SYS, -1);
    assert.deepEqual(await a!.g.status(next), { state: 'off', reason: `only 2 workers of ${SYS} left in the shared run to run it` });
  } finally {
    await done();
  }
});

test('a stopped follower gives up its seat, a stopped owner dissolves the gathering; a lost runner\'s seats drop out, a lost owner dissolves it', { skip }, async () => {
  const { all: [a, b, c], done } = await runners([1, 1, 3]);
  try {
    const { id } = (await a!.g.open((await claimSys1(a!))!, SYS, 4, seat('a1'))) as { id: string };
    await b!.g.join(SYS, seat('b1'));
    const left = await b!.g.leave(id, 'b1');
    assert.deepEqual(left.state === 'gathering' && left.seats.map((s) => s.seat), ['a1']);
    assert.deepEqual(await a!.g.leave(id, 'a1'), { state: 'dissolved', reason: 'the runner that took it stopped' });
    assert.equal(await b!.g.isOpen(SYS), false);

    const { id: next } = (await a!.g.open((await claimSys1(a!))!, SYS, 4, seat('a2'))) as { id: string };
    await c!.g.join(SYS, seat('c1'));
    await b!.g.join(SYS, seat('b2'));
    await b!.run.close(); // cut off: its lease is not renewed
    const without = await until(() => a!.g.status(next), (s) => s.state !== 'gathering' || s.seats.length < 3, 'runner b\'s seat to drop out');
    assert.deepEqual(without.state === 'gathering' && without.seats.map((s) => s.seat), ['a2', 'c1'], 'b\'s seat dropped; a and c still have 4 workers');
    await a!.run.close();
    assert.deepEqual(await until(() => c!.g.status(next), (s) => s.state !== 'gathering', 'the lost owner to dissolve it'),
      { state: 'dissolved', reason: 'the runner that took it was lost' });
  } finally {
    await done();
  }
});

test('meetings: the first report of each instance wins, lost instances are named; followers\' records go to the owner; a lost runner\'s job is requeued once', { skip }, async () => {
  const { all: [a, b], done } = await runners([1, 2]);
  try {
    const claim = (await claimSys1(a!))!;
    const { id } = (await a!.g.open(claim, SYS, 3, seat('a1'))) as { id: string };
    await b!.g.join(SYS, seat('b1'));
    await b!.g.join(SYS, seat('b2'));
    await a!.g.meet(id, '1/prepared', 1, '{"ok":true}');
    await a!.g.meet(id, '1/prepared', 1, '{"ok":false}');
    const met = await b!.g.meet(id, '1/prepared', 2, '{"ok":true,"b":1}');
    assert.deepEqual([...met.reports], [[1, '{"ok":true}'], [2, '{"ok":true,"b":1}']]);
    assert.deepEqual([...met.lost], []);

    const entry = { kind: 'failure', job: claim.index, at: 1, machine: 'b1-machine', level: 'task', verb: 'executing', context: 'x', durationMs: 1, output: { head: Buffer.from('out').toString('base64'), elided: 0, tail: '' } } as const;
    await b!.g.keep(id, [entry]);
    assert.deepEqual(await a!.g.take(id), [entry]);
    assert.deepEqual(await a!.g.take(id), [], 'taken once');

    await b!.run.close();
    const lost = await until(() => a!.g.meet(id, '1/executed'), (m) => m.lost.size > 0, 'runner b to be lost');
    assert.deepEqual([...lost.lost], [[2, b!.runner], [3, b!.runner]]);
    const running = await a!.g.status(id);
    assert.deepEqual(running.state === 'running' && running.lost, [b!.runner]);

    await a!.g.requeue(claim, b!.runner);
    const again = (await a!.store.claim((s) => (s.pending[claim.index] ? claim.index : undefined)))!;
    assert.equal(again.lostRunner, b!.runner, 'back in the queue once, marked with the lost runner');
    assert.equal(await a!.g.isOpening([claim.index]), true, 'its retry gathers afresh');
    await a!.g.requeue(again, b!.runner);
    assert.equal((await a!.store.unclaimed()).some((j) => j === claim.job), false, 'a second loss does not requeue it');
    await a!.store.leave();
    const record = await (await connectRedisRun(parseQueueUrl(`${redis().url}/5/${a!.run.run}`))).waitForEnd(new AbortController().signal);
    assert.deepEqual(record.entries.filter((e) => e.job === claim.index).map((e) => e.kind === 'result' && `${e.outcome}: ${e.why?.message}`),
      ['task-abort: not run: a runner of its group was lost, in its retry too']);
  } finally {
    await done();
  }
});
