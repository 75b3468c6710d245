/**
 * The Redis store on a real redis-server: the store contract with several
 * runners on one run, then what only a shared store has: leases that expire
 * and put a lost runner's jobs back once, results kept only from the
 * claim's holder, refusals that say what differs, shared history, the end
 * of a run as `-summary` sees it, and an unreachable server.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Job } from '../../src/project/types.js';
import { parseQueueUrl } from '../../src/store/queue-url.js';
import { connectRedisRun } from '../../src/store/redis.js';
import type { JoinRequest, RunStore, SharedRun } from '../../src/store/store.js';
import { RunMismatchError, StoreLostError } from '../../src/store/store.js';
import { freePort, makeTestTls, redisForFile, redisSkip, startRedis } from '../helpers/redis.js';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';
import { contractJobs, storeContract } from './contract.js';

const skip = redisSkip();
const redis = redisForFile();

const digest = { project: 'contract', content: 'c0ffee', options: '{}' };
const request = (jobs: readonly Job[], over: Partial<JoinRequest> = {}): JoinRequest => ({ jobs, digest, workers: 2, seed: 42, ...over });
const newRun = (query = '') => `${redis().url}/3/t-${randomBytes(4).toString('hex')}${query}`;
const open = (url: string): Promise<SharedRun> => connectRedisRun(parseQueueUrl(url));

storeContract('redis store', async (jobs, runners) => {
  const url = newRun();
  const runs = await Promise.all(Array.from({ length: runners }, () => open(url)));
  const stores: RunStore[] = [];
  for (const run of runs) stores.push((await run.join(request(jobs))).store);
  return { stores, done: async () => void (await Promise.all(stores.map((s) => s.leave()))) };
}, skip, true);

test('the first runner sets the seed; later ones join in order of arrival', { skip }, async () => {
  const jobs = await contractJobs();
  const url = newRun();
  const [a, b] = [await open(url), await open(url)];
  const first = await a.join(request(jobs, { seed: 7 }));
  const second = await b.join(request(jobs, { seed: 99 }));
  assert.deepEqual([first.created, first.runnerNo, first.seed], [true, 1, 7]);
  assert.deepEqual([second.created, second.runnerNo, second.seed], [false, 2, 7]);
  await Promise.all([first.store.leave(), second.store.leave()]);
});

test('a runner whose jobs, content or project differ is refused with one line saying what differs', { skip }, async () => {
  const jobs = await contractJobs();
  const url = newRun();
  const owner = await (await open(url)).join(request(jobs));
  const refused = async (r: JoinRequest): Promise<string> => {
    const run = await open(url);
    try {
      const err = await run.join(r).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof RunMismatchError, String(err));
      assert.doesNotMatch(err.message, /\n/);
      return err.message;
    } finally {
      await run.close();
    }
  };
  assert.match(await refused(request(jobs.slice(1))), /the jobs differ \(25 selected here, 26 in the run; local:sys-1:one\/t0 is in the run but not selected here\): use the same project and filters/);
  assert.match(await refused(request(jobs, { digest: { ...digest, content: 'beef' } })), /project content differs \(packed digest beef here, c0ffee in the run\)/);
  assert.match(await refused(request(jobs, { digest: { ...digest, project: 'other' } })), /it runs project "contract", this is "other"/);
  assert.match(await refused(request(jobs, { digest: { ...digest, options: '{"repeat":2}' } })), /the options differ/);
  await owner.store.leave();
});

test('a lost runner\'s job goes back to the queue once, marked; its late result is not kept; a second loss aborts it', { skip }, async () => {
  const jobs = await contractJobs();
  const url = newRun('?lease=1s');
  const lostRun = await open(url);
  const lost = await lostRun.join(request(jobs));
  const claim = (await lost.store.claim((s) => s.pending.findIndex((j) => j !== undefined)))!;
  // Cut off: the connection is gone, so the lease is not renewed.
  await lostRun.close();

  const other = await (await open(url)).join(request(jobs));
  const signal = new AbortController().signal;
  // Nothing of system a is pending but the lost claim: the runner waits for it to come back.
  const drained: number[] = [];
  for (;;) {
    const c = await other.store.claim((s) => {
      const i = s.pending.findIndex((j, k) => j !== undefined && k !== claim.index);
      return i < 0 ? undefined : i;
    });
    if (!c) break;
    drained.push(c.index);
    await other.store.finish(c, []);
  }
  assert.equal(drained.length, jobs.length - 1);
  assert.equal(await other.store.awaitWork(claim.job.backend.name, claim.job.system.name, signal), true, 'the lost job came back');
  const retry = (await other.store.claim((s) => (s.pending[claim.index] ? claim.index : undefined)))!;
  assert.equal(retry.lostRunner, lost.runner, 'marked with the runner that was lost');

  // The retry's runner is cut off too: no second retry, the job is aborted.
  const third = await (await open(url)).join(request(jobs));
  const thirdRun = await open(url);
  await (other.store as unknown as { run: SharedRun }).run.close();
  assert.equal(await third.store.awaitWork(claim.job.backend.name, claim.job.system.name, signal), false);
  await third.store.leave();
  const record = await thirdRun.waitForEnd(signal);
  assert.deepEqual(record.leftover, []);
  assert.deepEqual(record.entries.filter((e) => e.job === claim.index), [{ kind: 'result', job: claim.index, at: record.entries.at(-1)!.at, outcome: 'task-abort' }]);
  await thirdRun.close();
});

test('results are kept only while the claim is ours; -summary waits for every runner to leave', { skip }, async () => {
  const jobs = await contractJobs();
  const url = newRun('?lease=1s');
  const viewer = await open(url);
  const ended = viewer.waitForEnd(new AbortController().signal);
  const a = await (await open(url)).join(request(jobs));
  const claim = (await a.store.claim(() => 0))!;
  await a.store.finish(claim, [{ kind: 'end', job: 0, at: 1, machine: 'm', outcome: 'task-done', durationMs: 5 }]);
  assert.equal(await a.store.finish(claim, []), false, 'a claim is finished once');
  let endedYet = false;
  void ended.then(() => {
    endedYet = true;
  });
  await a.store.recordDuration(jobs[0]!, 1234);
  assert.equal(endedYet, false, 'the run has not ended while its runner is in it');
  await a.store.leave();
  const record = await ended;
  assert.deepEqual(record.entries, [{ kind: 'end', job: 0, at: 1, machine: 'm', outcome: 'task-done', durationMs: 5 }]);
  assert.equal(record.leftover.length, jobs.length - 1, 'jobs no runner took');
  assert.deepEqual([record.runners, record.workers, record.seed], [1, 2, 42]);
  // History outlives the run: a runner of another run of the project reads it.
  const later = await (await open(newRun())).join(request(jobs));
  assert.equal((await later.store.history()).get(jobs[0]!.name), 1234);
  await later.store.leave();
  await viewer.close();
});

test('a run expires after its last change (?expire=), its keys under one cluster hash tag', { skip }, async () => {
  const jobs = await contractJobs();
  const url = newRun('?expire=2m');
  const joined = await (await open(url)).join(request(jobs));
  const claim = (await joined.store.claim(() => 0))!;
  await joined.store.finish(claim, [{ kind: 'result', job: 0, at: 1, outcome: 'task-done' }]);
  const run = url.slice(url.lastIndexOf('/') + 1, url.indexOf('?'));
  const { Redis } = await import('ioredis');
  const client = new Redis({ port: redis().port, db: 3, lazyConnect: true });
  await client.connect();
  try {
    const keys = (await client.keys(`spread:{${run}}:*`)).sort();
    assert.deepEqual(keys.map((k) => k.slice(k.indexOf('}:') + 2)), ['lease:' + joined.runner, 'log', 'meta', 'names', 'pending', 'runners', 'suites'].sort());
    for (const key of keys) {
      const ttl = await client.pttl(key);
      assert.ok(ttl > 0 && ttl <= (key.includes(':lease:') ? 15_000 : 120_000), `${key} expires (${ttl} ms)`);
    }
  } finally {
    client.disconnect();
    await joined.store.leave();
  }
});

test('a password from the URL or SPREAD_QUEUE_PASSWORD; an unreachable server is one line', { skip }, async () => {
  const secure = await startRedis({ password: 's3cret' });
  try {
    const run = `${secure.url.replace('redis://', 'redis://:s3cret@')}/r1`;
    await (await connectRedisRun(parseQueueUrl(run))).close();
    await (await connectRedisRun(parseQueueUrl(`${secure.url}/r1`, { SPREAD_QUEUE_PASSWORD: 's3cret' }))).close();
    const denied = await connectRedisRun(parseQueueUrl(`${secure.url}/r1`)).then(() => undefined, (e: unknown) => e as Error);
    assert.ok(denied instanceof StoreLostError);
    assert.match(denied.message, /^cannot reach the queue at redis:\/\/127\.0\.0\.1:\d+\/r1: .*(NOAUTH|auth)/i);
  } finally {
    await secure.stop();
  }
  const port = await freePort();
  const err = await connectRedisRun(parseQueueUrl(`redis://127.0.0.1:${port}/r`)).then(() => undefined, (e: unknown) => e as Error);
  assert.ok(err instanceof StoreLostError);
  assert.equal(err.message, `cannot reach the queue at redis://127.0.0.1:${port}/r: connect ECONNREFUSED 127.0.0.1:${port}`);
});

const tlsSkip = skip || (!existsSync('/usr/bin/openssl') && process.env['CI'] !== 'true' ? 'the TLS test makes its certificates with /usr/bin/openssl' : false);

test('rediss://: TLS, the certificate checked (a private CA through NODE_EXTRA_CA_CERTS)', { skip: tlsSkip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spread-tls-'));
  const tls = makeTestTls(dir);
  const secure = await startRedis({ tls });
  const project = makeProject({
    'spread.yaml': 'project: tls\npath: /tls\nbackends:\n    local:\n        systems: [this-host]\nsuites:\n    tests/:\n        summary: t\n',
    'tests/one/task.yaml': 'summary: one\nexecute: "true"\n',
  });
  try {
    const untrusted = await connectRedisRun(parseQueueUrl(`${secure.url}/r`)).then(() => undefined, (e: unknown) => e as Error);
    assert.match(untrusted?.message ?? '', /^cannot reach the queue at rediss:\/\/127\.0\.0\.1:\d+\/r: .*(certificate|self.signed)/i);
    const queue = `-queue=${secure.url}/0/tls-run`;
    const run = await runSpread([queue], project, { NODE_EXTRA_CA_CERTS: tls.ca });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /Started the shared run rediss:\/\/127\.0\.0\.1:\d+\/0\/tls-run as runner 1/);
    const summary = await runSpread([queue, '-summary'], project, { NODE_EXTRA_CA_CERTS: tls.ca });
    assert.match(summary.stdout, /Successful tasks: 1\n/);
    assert.equal(summary.code, 0);
  } finally {
    removeProject(project);
    await secure.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
