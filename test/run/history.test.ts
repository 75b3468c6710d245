/** Scheduling from history: times recorded after a run, long jobs first in the next one. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { bucketOf, History, orderByHistory } from '../../src/run/history.js';
import type { Job } from '../../src/project/types.js';
import { makeProject, removeProject, runSpread } from '../helpers/fixture.js';

const job = (name: string): Job => ({ name } as Job);

test('buckets double from 0.1 s', () => {
  assert.deepEqual([0, 150, 199, 200, 399, 400, 1600, 60_000].map(bucketOf), [0, 0, 0, 1, 1, 2, 4, 9]);
});

test('long buckets first, the seeded order within a bucket, unknown jobs at the median', () => {
  const dir = makeProject({ 'h.json': JSON.stringify({ version: 1, jobs: { a: 100, b: 5000, c: 120, d: 4000, e: 900 } }) });
  try {
    const history = History.load(join(dir, 'h.json'));
    const jobs = ['a', 'b', 'c', 'd', 'e', 'new'].map(job);
    // b and d share a bucket; their seeded order (d before b) is kept; "new" counts as the median bucket (e's).
    assert.deepEqual(orderByHistory([0, 2, 3, 5, 1, 4], jobs, history).map((i) => jobs[i]!.name), ['d', 'b', 'new', 'e', 'a', 'c']);
    assert.deepEqual(orderByHistory([2, 1, 0], jobs, History.load(join(dir, 'missing.json'))), [2, 1, 0], 'no history: the seeded order');
  } finally {
    removeProject(dir);
  }
});

const PROJECT = {
  'spread.yaml': 'project: hist\npath: /hist\nbackends:\n    local:\n        systems:\n            - this-host:\n                workers: 2\nsuites:\n    tests/:\n        summary: tests\n',
  'tests/long/task.yaml': 'summary: long\nexecute: sleep 1\n',
  ...Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`tests/short${i}/task.yaml`, 'summary: short\nexecute: "true"\n'])),
};

test('a run records job times; the next one starts the long job first whatever the seed', async () => {
  const dir = makeProject(PROJECT);
  try {
    assert.equal((await runSpread(['-seed=1'], dir)).code, 0);
    const stored = JSON.parse(readFileSync(join(dir, '.spread-history.json'), 'utf8')) as { jobs: Record<string, number> };
    assert.ok(stored.jobs['local:this-host:tests/long']! >= 1000);
    assert.ok(stored.jobs['local:this-host:tests/short0']! < 1000);
    for (const seed of [2, 3, 4, 5]) {
      const r = await runSpread([`-seed=${seed}`], dir);
      const first = /Executing (\S+) /.exec(r.stdout)?.[1];
      assert.equal(first, 'local:this-host:tests/long', `seed ${seed}`);
    }
  } finally {
    removeProject(dir);
  }
});

test('-history=false keeps the plain random order and records nothing; -list never writes history', async () => {
  const dir = makeProject(PROJECT);
  try {
    await runSpread(['-list'], dir);
    assert.equal(existsSync(join(dir, '.spread-history.json')), false);
    await runSpread(['-history=false'], dir);
    assert.equal(existsSync(join(dir, '.spread-history.json')), false);
    writeFileSync(join(dir, '.spread-history.json'), JSON.stringify({ version: 1, jobs: { 'local:this-host:tests/long': 5000 } }));
    const firsts = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5, 6]) firsts.add(/Executing (\S+) /.exec((await runSpread([`-seed=${seed}`, '-history=false'], dir)).stdout)![1]!);
    assert.ok(firsts.size > 1, 'different seeds start different jobs');
  } finally {
    removeProject(dir);
  }
});
